"""The bot's pure rules and its matcher, by tables of cases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.bot import matcher
from app.bot.actions import demo_entries, parse_import
from app.bot.matcher import Entry, Index, normalise
from app.bot.rules import (
    DEFAULT_THRESHOLD,
    BotSettingsFacts,
    OrderFacts,
    bot_holds_new,
    handoff_reason,
    human_first_covers,
    is_elder_conversation,
    is_resolved_by_bot,
    order_answer,
    order_intent,
)

ON = BotSettingsFacts(mode="bot_first")
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("settings", "queue", "elder", "holds"),
    [
        (ON, "general", False, True),
        (ON, "general", True, False),  # elder buyer: never the bot's
        (ON, "elderly", False, False),  # the elderly queue: never the bot's
        (
            BotSettingsFacts(mode="bot_first", queue_modes={"elderly": "bot_first"}),
            "elderly",
            False,
            False,
        ),
        (BotSettingsFacts(mode="human_first"), "general", False, False),
        (BotSettingsFacts(mode="assist"), "general", False, False),
        (BotSettingsFacts(), "general", False, False),
        (BotSettingsFacts(queue_modes={"jewelry": "bot_first"}), "jewelry", False, True),
        (
            BotSettingsFacts(mode="bot_first", queue_modes={"jewelry": "off"}),
            "jewelry",
            False,
            False,
        ),
    ],
)
def test_bot_holds_new(settings, queue, elder, holds):
    assert bot_holds_new(settings, queue=queue, elder=elder) is holds


@pytest.mark.parametrize(
    ("elder", "queue", "buyer_elder", "expected"),
    [
        (False, "general", False, False),
        (True, "general", False, True),
        (False, "elderly", False, True),
        (False, "general", True, True),
    ],
)
def test_elder_conversation(elder, queue, buyer_elder, expected):
    assert is_elder_conversation(elder=elder, queue=queue, buyer_elder=buyer_elder) is expected


@pytest.mark.parametrize(
    ("waiting", "online", "is_open", "covers"),
    [
        (True, 0, True, True),
        (True, 2, True, False),
        (True, 2, False, True),  # the shop is closed (service hours): the bot covers
        (False, 0, True, False),
    ],
)
def test_human_first_covers(waiting, online, is_open, covers):
    assert human_first_covers(waiting=waiting, agents_online=online, is_open=is_open) is covers


@pytest.mark.parametrize(
    ("text", "low_streak", "confident", "reason"),
    [
        ("转人工", 0, True, "asked"),
        ("我要找客服", 0, False, "asked"),
        ("我要投诉", 0, True, "complaint"),
        ("东西碎了", 0, True, "order_action"),
        ("少发了一个杯子", 0, True, "order_action"),
        ("申请退款", 0, True, "order_action"),
        ("这是什么", 0, False, None),  # first miss: a fallback, not yet a hand-off
        ("这是什么", 1, False, "low_confidence"),
        ("包邮吗", 1, True, None),
    ],
)
def test_handoff_reason(text, low_streak, confident, reason):
    assert handoff_reason(text, ON, low_streak=low_streak, confident=confident) == reason


def test_shop_words_replace_the_defaults():
    custom = BotSettingsFacts(mode="bot_first", handoff_words=("真人",), anger_words=("坑",))
    assert handoff_reason("转人工", custom, low_streak=0, confident=True) is None
    assert handoff_reason("要真人", custom, low_streak=0, confident=True) == "asked"
    assert handoff_reason("好坑", custom, low_streak=0, confident=True) == "complaint"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("我的快递到哪了", "status"),
        ("什么时候发货", "status"),
        ("发货了吗", "status"),
        ("杯子坏了", "action"),
        ("包邮吗", None),
    ],
)
def test_order_intent(text, intent):
    assert order_intent(text) == intent


@pytest.mark.parametrize(
    ("orders", "answer"),
    [
        ([], None),
        ([OrderFacts("A", "shipped", T0)], ("bot_order_shipped", {"order_id": "A"})),
        (
            [OrderFacts("A", "paid", T0, T0.replace(day=3))],
            ("bot_order_ship_by", {"order_id": "A", "ship_by": "2026-12-03"}),
        ),
        (
            [OrderFacts("A", "shipped", T0), OrderFacts("B", "paid", T0.replace(day=2))],
            ("bot_order_paid", {"order_id": "B"}),
        ),
        ([OrderFacts("A", "refunded", T0)], ("bot_order_refunded", {"order_id": "A"})),
    ],
)
def test_order_answer(orders, answer):
    assert order_answer(orders) == answer


@pytest.mark.parametrize(
    ("handled_by", "status", "rating", "resolved"),
    [
        ("bot", "closed", None, True),
        ("bot", "closed", 2, False),
        ("bot", "closed", 3, True),
        ("human", "closed", 5, False),
        ("bot", "bot", None, False),
    ],
)
def test_resolved_by_bot(handled_by, status, rating, resolved):
    assert is_resolved_by_bot(handled_by=handled_by, status=status, rating=rating) is resolved


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("什麼時候發貨?", "什么时候发货"),
        ("ＡＢＣ１２３", "abc123"),
        ("啥时候发货😊", "什么时候发货"),
        ("包邮不🙏", "包邮吗"),
    ],
)
def test_normalise(raw, plain):
    assert normalise(raw) == plain


def test_matcher_ranks_paraphrases_typos_and_traditional_characters():
    index = Index([Entry(f"e{i}", e.question, e.similar) for i, e in enumerate(demo_entries())])
    by_question = {e.question: f"e{i}" for i, e in enumerate(demo_entries())}
    for asked, expected in [
        ("啥时候能发货啊", "什么时候发货"),
        ("保邮吗", "包邮吗"),
        ("紫砂壺是原礦的嗎", "紫砂壶是原矿的吗"),
        ("优惠卷怎么用", "优惠券怎么用"),
    ]:
        top = index.match(asked)[0]
        assert top.faq_id == by_question[expected], (asked, top)
        assert top.score >= DEFAULT_THRESHOLD
    several = index.match("紫砂壶怎么用", limit=3)
    assert len(several) == 3 and len({m.faq_id for m in several}) == 3
    assert [m.score for m in several] == sorted((m.score for m in several), reverse=True)
    assert index.match("") == []
    assert Index([]).match("包邮吗") == []


def test_libraries_load_once_lazily():
    matcher.warm_up()
    loaded = matcher.libs()
    assert matcher.libs() is loaded and loaded.jieba.dt.initialized


def test_parse_import_reads_csv_with_bom_and_json():
    csv_text = (
        "\ufeffquestion,similar,answer,category,enabled\n包邮吗,运费多少|邮费,满99包邮,物流,false\n"
    )
    (e,) = parse_import(csv_text.encode())
    assert (e.question, e.similar, e.answer, e.category, e.enabled) == (
        "包邮吗",
        ("运费多少", "邮费"),
        "满99包邮",
        "物流",
        False,
    )
    (j,) = parse_import(b'[{"question": "q", "answer": "a", "similar": ["s"]}]')
    assert j.similar == ("s",) and j.enabled
    with pytest.raises(Exception, match="question and an answer"):
        parse_import(b'[{"question": "q"}]')
