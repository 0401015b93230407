"""The compliance check an agent's message takes before it is stored: one shop's 1,000
own words beside the platform's rules, on a mix of ordinary and rule-breaking replies.

In-process (no server): the check is pure CPU on the socket's event loop, and what is
measured is exactly what `AgentSocket.on_send` adds for a cached shop, the hot path
(`RulesCache.check` → `Matcher.check`). The target: < 1 ms p99 per message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from typing import Any

from app.compliance import rules
from app.compliance.cache import RulesCache, _Entry
from bench.common import Figure, percentile

NAME = "compliance"
TITLE = "compliance check of an agent's message, 1,000 shop rules"

CJK = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"

BODIES = [
    "亲,您好,请问有什么可以帮您?",
    "您的订单 20241113800138000 已经发货了,预计明天送达,请注意查收哦。",
    "这款羊毛围巾是 100% 澳洲美利奴羊毛,长 180cm 宽 30cm,手洗或干洗都可以,不建议机洗。",
    "不好意思让您久等了,仓库那边确认库存还有 3 件,现在下单今天就能发出。",
    "可以加 微 信 详聊吗,我发您更多图片",
    "有问题打我电话 138-0013-8000",
    "好评返现 5 元,截图发我就行",
    "详情见 www.othershop.com/item/123",
    "非常抱歉给您带来不便,我们会为您申请补发,运费由我们承担。" * 3,
    "Hello, your parcel has shipped; the tracking number is SF1234567890.",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("compliance")
    g.add_argument("--cp-rules", type=int, help="the shop's own words (default 1000)")
    g.add_argument("--cp-messages", type=int, help="messages checked (default 20000; --quick 5000)")


def shop_words(n: int, seed: int = 7) -> list[rules.Rule]:
    rnd = random.Random(seed)
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rnd.choice(CJK) for _ in range(rnd.randint(2, 5))))
    actions = (rules.BLOCK, rules.FLAG)
    return [rules.Rule("shop", "custom", actions[i % 2], w) for i, w in enumerate(sorted(words))]


class _NoDatabase:
    """The cache's database is never asked: the shop's matcher is cached and fresh."""

    def read(self) -> Any:
        raise AssertionError("the hot path read the database")


async def run(ctx: Any) -> list[Figure]:
    a = ctx.args
    n_rules = a.cp_rules or 1000
    n_msgs = a.cp_messages or (5000 if ctx.quick else 20000)
    started = time.perf_counter()
    matcher = rules.Matcher(shop_words(n_rules))
    compile_ms = (time.perf_counter() - started) * 1000
    cache = RulesCache(_NoDatabase(), recheck_s=1e9)  # type: ignore[arg-type]
    cache._entries["shop"] = _Entry(1, matcher, time.monotonic())
    rnd = random.Random(1)
    # Each message made different (a random tail), so nothing is cached but the rules.
    bodies = [f"{rnd.choice(BODIES)} {rnd.randint(0, 10**6)}" for _ in range(n_msgs)]
    for body in bodies[:500]:  # warm up
        await cache.check("shop", body)
    timings: list[float] = []  # wall clock
    cpu: list[float] = []  # this thread's CPU time: what the check itself costs
    decided = {"pass": 0, "flag": 0, "block": 0}
    for body in bodies:
        c0, t0 = time.thread_time(), time.perf_counter()
        verdict = await cache.check("shop", body)
        timings.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        first = verdict.first
        decided["pass" if first is None else first.action] += 1
        if len(timings) % 2000 == 0:
            await asyncio.sleep(0)
    p50, p99 = percentile(timings, 50), percentile(timings, 99)
    cpu50, cpu99 = percentile(cpu, 50), percentile(cpu, 99)
    assert p50 is not None and p99 is not None and cpu50 is not None and cpu99 is not None
    us = 1e6
    load = os.getloadavg()[0]
    note = (
        f"{n_msgs} messages: {decided['pass']} pass, {decided['flag']} flag, "
        f"{decided['block']} block; CPU time of this thread, so a busy machine's preemption "
        f"(load average {load:.1f} on {os.cpu_count()} cores) is not counted"
    )
    return [
        Figure(NAME, "homing", f"compile {n_rules} shop rules", round(compile_ms, 2), "ms"),
        Figure(NAME, "homing", "check per message p50 (CPU)", round(cpu50 * us, 1), "µs"),
        Figure(
            NAME,
            "homing",
            f"check per message p99 (CPU, {n_rules} shop rules)",
            round(cpu99 * us, 1),
            "µs",
            target="< 1000 µs",
            met=cpu99 < 0.001,
            note=note,
        ),
        Figure(NAME, "homing", "check per message p50 (wall clock)", round(p50 * us, 1), "µs"),
        Figure(
            NAME,
            "homing",
            "check per message p99 (wall clock)",
            round(p99 * us, 1),
            "µs",
            note=f"includes preemption: load average {load:.1f} on {os.cpu_count()} cores",
        ),
    ]
