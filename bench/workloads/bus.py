"""The bus at 4 nodes: what each node hears, sharded against one channel; 2/4-node rates.

Issue 21. `HomingCluster` with `--bus-nodes` nodes (4) on a fresh PostgreSQL database and a
private redis-server, agents and buyers spread over the nodes (agent i and buyer i on
node i % N, so a buyer on node i is served by an agent on any node). For each
`HOMING_BUS` of `--bus-modes` (`channel`: every node subscribes to the one channel;
`sharded`: a node subscribes to the topics of its own sockets) the cluster carries a
steady load of `--bus-rate` buyer messages a second, each answered by an agent, for
`--bus-seconds`. Every node's `/metrics` is read before and after:

- share = envelopes the node received from Redis (`homing_bus_received_total`, before
  topic filtering) / envelopes published by the whole cluster
  (sum of `homing_bus_published_total`); the single channel gives every node 100%, the
  issue's target for the sharded bus is <= 40% on every node with 4 nodes;
- handled share = the same for the envelopes the node handled: received minus its own
  copies back from Redis (`homing_bus_echoes_total`), which the sharded bus drops unread
  (its sockets had them at publish). Redis still sends those copies, so the received
  share keeps them: about 2/N with the sharded bus (the publisher's copy and the other
  side's), handled about 1/N. The channel bus drops nothing (handled = received, 100%);
  were it to drop its own copies too, a node would handle (N-1)/N;
- envelopes published per stored message, (S)PUBLISH commands per message and Redis's
  CPU per command (the private redis-server's `INFO commandstats` and /proc);
- the group commit's batch sizes (`homing_group_commit_batch_size`, summed over nodes),
  PostgreSQL's commits and inserted rows per message (`pg_stat_database` of the bench's
  database) and the CPU of its backends (/proc of the pids in `pg_stat_activity`).

Then the message-path rate search (`bench/workloads/message_path.py`, its `--mp-*`
options) on the cluster with each node count of `--bus-rate-nodes` (2,4), and the bytes a
message row takes in PostgreSQL with its indexes (`--bus-size-rows` rows of the real
schema, bodies from `bench/data/bot_questions.tsv` and the demo answers): the figures
`docs/scale.md` builds on. All nodes share this machine's server core: the rates measure
what scale-out costs (and that nothing is lost), not capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from bench.common import HOST, ROOT, Figure, Postgres, cpu_seconds, percentile, pg_url
from bench.systems import HomingCluster, System
from bench.workloads import message_path
from bench.workloads.bot import load_questions

NAME = "bus"
TITLE = "bus envelopes per node, sharded vs one channel (4 nodes); 2/4-node message path"

SHARE_TARGET = 0.40
MODES = ("channel", "sharded")
BATCH_METRIC = "homing_group_commit_batch_size"
CORES_NOTE = "all nodes, their Redis and PostgreSQL share this machine's 2 cores"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bus")
    g.add_argument("--bus-nodes", type=int, default=4, help="nodes for the share (default 4)")
    g.add_argument(
        "--bus-modes", default=",".join(MODES), help="HOMING_BUS values, comma-separated"
    )
    g.add_argument("--bus-buyers", type=int, help="buyers (default 400; --quick 100)")
    g.add_argument("--bus-agents", type=int, help="agents (default 40; --quick 12)")
    g.add_argument(
        "--bus-rate", type=float, default=200.0, help="buyer messages a second (default 200)"
    )
    g.add_argument("--bus-seconds", type=float, help="seconds of steady load (20; --quick 8)")
    g.add_argument(
        "--bus-idle-s",
        type=float,
        default=5.0,
        help="seconds the loaded cluster is first measured idle (its CPU is taken out; default 5)",
    )
    g.add_argument(
        "--bus-rate-nodes",
        default="2,4",
        help="node counts for the message-path rate search ('' for none; default 2,4)",
    )
    g.add_argument(
        "--bus-rate-bus",
        default="",
        help="HOMING_BUS for the rate search (default: the product default)",
    )
    g.add_argument(
        "--bus-pg",
        choices=("private", "shared"),
        default="private",
        help="PostgreSQL: a private server on a free port (default; four nodes keep up to 124 "
        "connections) or the shared one of HOMING_TEST_PG",
    )
    g.add_argument(
        "--bus-size-rows",
        type=int,
        help="message rows stored to measure bytes a row (default 200000; --quick 20000; 0: no)",
    )


# ---- reading a node ------------------------------------------------------------------
async def http_text(url: str, timeout: float = 10.0) -> str:
    import urllib.request

    assert url.startswith(f"http://{HOST}:"), url

    def call() -> str:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return str(resp.read().decode())

    return await asyncio.to_thread(call)


def parse_metrics(text: str) -> dict[str, float]:
    """Every sample of a Prometheus exposition as `name{k=v,...}` -> value."""
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = float(s.value)
    return out


async def scrape(system: HomingCluster) -> list[dict[str, float]]:
    return [parse_metrics(await http_text(f"http://{HOST}:{p}/metrics")) for p in system.ports]


def delta(a: dict[str, float], b: dict[str, float], key: str) -> float | None:
    if key not in b:
        return None
    return b[key] - a.get(key, 0.0)


def batch_histogram(
    before: list[dict[str, float]], after: list[dict[str, float]]
) -> dict[str, Any]:
    """The group commit's batch sizes over a window, summed over the nodes."""
    buckets: dict[str, float] = {}
    count = total = 0.0
    for a, b in zip(before, after, strict=True):
        count += delta(a, b, f"{BATCH_METRIC}_count") or 0.0
        total += delta(a, b, f"{BATCH_METRIC}_sum") or 0.0
        for key in b:
            if key.startswith(f"{BATCH_METRIC}_bucket{{"):
                le = key.split("le=", 1)[1].rstrip("}")
                buckets[le] = buckets.get(le, 0.0) + (delta(a, b, key) or 0.0)
    # Cumulative "<= le" counts to counts per range, for reading.
    ranges: dict[str, int] = {}
    prev_le, prev_n = "0", 0.0
    for le, n in sorted(buckets.items(), key=lambda kv: float(kv[0])):
        if n - prev_n > 0:
            label = f"{int(float(prev_le)) + 1}-{le}" if le != "+Inf" else f">{prev_le}"
            ranges[label.replace(".0", "")] = int(n - prev_n)
        prev_le, prev_n = le, n
    return {
        "batches": int(count),
        "messages": int(total),
        "mean": round(total / count, 2) if count else None,
        "ranges": ranges,
    }


async def redis_info(system: HomingCluster) -> dict[str, float]:
    """(S)PUBLISH calls from the private Redis's commandstats, and its CPU seconds."""
    import redis.asyncio as aioredis

    assert system.redis is not None
    client = aioredis.Redis.from_url(system.redis.url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    out = {
        cmd: float(stats.get(f"cmdstat_{cmd}", {}).get("calls", 0))
        for cmd in ("publish", "spublish")
    }
    out["cpu_s"] = cpu_seconds(system.redis.proc.pid)
    return out


async def pg_info(system: HomingCluster) -> dict[str, float]:
    """The bench database's commits and inserted rows, and its backends' CPU seconds."""
    conn = await asyncpg.connect(
        pg_url(system.db_name, system.pg_admin_url).replace("postgresql://", "postgres://"),
        timeout=5,
    )
    try:
        row = await conn.fetchrow(
            "SELECT xact_commit, tup_inserted FROM pg_stat_database WHERE datname = $1",
            system.db_name,
        )
        pids = [
            r["pid"]
            for r in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                system.db_name,
            )
        ]
    finally:
        await conn.close()
    assert row is not None
    cpu = 0.0
    for pid in pids:
        try:
            cpu += cpu_seconds(pid)
        except (OSError, AssertionError):
            continue
    return {
        "commits": float(row["xact_commit"]),
        "inserted": float(row["tup_inserted"]),
        "backend_cpu_s": cpu,
        "backends": float(len(pids)),
    }


@dataclass
class Window:
    t: float
    nodes: list[dict[str, float]]
    redis: dict[str, float]
    pg: dict[str, float]
    node_cpu: list[float] = field(default_factory=list)


# PostgreSQL's backends flush their statistics at most once a second (PG 15).
PG_STATS_S = 1.2


async def window(system: HomingCluster) -> Window:
    await asyncio.sleep(PG_STATS_S)
    w = Window(time.perf_counter(), await scrape(system), await redis_info(system), {})
    w.pg = await pg_info(system)
    w.node_cpu = [cpu_seconds(pid) for pid in system.pids]
    return w


# ---- one mode --------------------------------------------------------------------------
async def share_run(
    ctx: Any, mode: str, n_nodes: int, sizes: dict[str, Any], admin: str | None
) -> dict[str, Any]:
    a = ctx.args
    system = HomingCluster(
        ctx.log_dir,
        nodes=n_nodes,
        bus=mode,
        pg_admin_url=admin,
        frames_per_second=a.frames_per_second,
    )
    d = message_path.Driver(system, sizes["buyers"], sizes["agents"])
    ctx.say(
        f"  [{system.name}] {sizes['buyers']} buyers, {sizes['agents']} agents over "
        f"{n_nodes} nodes; {sizes['rate']:g} buyer msg/s for {sizes['seconds']:g}s "
        f"({CORES_NOTE})"
    )
    try:
        await system.start()
        await d.setup(ctx.say)
        # What the idle cluster costs (heartbeats, jobs, the dispatcher), to take out below.
        i0 = await window(system)
        await asyncio.sleep(sizes["idle"])
        w0 = await window(system)
        idle = idle_rates(i0, w0)
        st = await d.step(sizes["rate"], sizes["seconds"], a.mp_p99_ms, grace=5.0)
        await d.drain(5.0)
        w1 = await window(system)
        res = measure(mode, system, st, w0, w1, idle)
        res["subscriptions"] = [n.get("homing_bus_subscriptions") for n in w1.nodes]
        return res
    finally:
        await d.close()
        system.stop()


def idle_rates(a: Window, b: Window) -> dict[str, float]:
    """CPU seconds a second of the nodes, PostgreSQL's backends and Redis, with no load."""
    secs = b.t - a.t
    return {
        "node_cpu": sum(y - x for x, y in zip(a.node_cpu, b.node_cpu, strict=True)) / secs,
        "pg_cpu": (b.pg["backend_cpu_s"] - a.pg["backend_cpu_s"]) / secs,
        "redis_cpu": (b.redis["cpu_s"] - a.redis["cpu_s"]) / secs,
        "pg_commits": (b.pg["commits"] - a.pg["commits"]) / secs,
    }


def measure(
    mode: str,
    system: HomingCluster,
    st: Any,
    w0: Window,
    w1: Window,
    idle: dict[str, float] | None = None,
) -> dict[str, Any]:
    secs = w1.t - w0.t
    published = [delta(a, b, "homing_bus_published_total") for a, b in zip(w0.nodes, w1.nodes)]
    received = [delta(a, b, "homing_bus_received_total") for a, b in zip(w0.nodes, w1.nodes)]
    # A build without the counter drops no copies of its own: none to take out.
    echoes = [delta(a, b, "homing_bus_echoes_total") or 0.0 for a, b in zip(w0.nodes, w1.nodes)]
    handled = [r - e if r is not None else None for r, e in zip(received, echoes, strict=True)]
    total_pub = sum(p for p in published if p is not None) if None not in published else None

    def share_of(counts: list[float | None]) -> list[float] | None:
        if not total_pub or None in counts:
            return None
        return [c / total_pub for c in counts if c is not None]

    shares, handled_shares = share_of(received), share_of(handled)
    stored = 2 * st.sent  # each buyer message and its agent's reply
    pubs = {k: w1.redis[k] - w0.redis[k] for k in ("publish", "spublish")}
    redis_cmds = pubs["publish"] + pubs["spublish"]
    redis_cpu = w1.redis["cpu_s"] - w0.redis["cpu_s"]
    node_cpu = sum(b - a for a, b in zip(w0.node_cpu, w1.node_cpu, strict=True))
    idle = idle or {"node_cpu": 0.0, "pg_cpu": 0.0, "redis_cpu": 0.0, "pg_commits": 0.0}
    pg_cpu = w1.pg["backend_cpu_s"] - w0.pg["backend_cpu_s"]
    pg_commits = w1.pg["commits"] - w0.pg["commits"]
    p50, p99 = percentile(st.lat, 50), percentile(st.lat, 99)
    return {
        "mode": mode,
        "nodes": system.n_nodes,
        "seconds": round(secs, 2),
        "buyer_messages": st.sent,
        "stored_messages": stored,
        "lost": st.lost,
        "errors": st.errors,
        "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
        "p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
        "published": published,
        "received": received,
        "received_per_s": [round(r / secs, 1) if r is not None else None for r in received],
        "published_total": total_pub,
        "shares": [round(s, 4) for s in shares] if shares is not None else None,
        "echoes": echoes,
        "handled": handled,
        "handled_shares": (
            [round(s, 4) for s in handled_shares] if handled_shares is not None else None
        ),
        "envelopes_per_message": round(total_pub / stored, 3) if total_pub else None,
        "redis_publish": pubs,
        "redis_commands_per_message": round(redis_cmds / stored, 3),
        "redis_cpu_us_per_command": round(redis_cpu / redis_cmds * 1e6, 2) if redis_cmds else None,
        "redis_cpu_us_per_message": round(redis_cpu / stored * 1e6, 2),
        "node_cpu_ms_per_message": round(node_cpu / stored * 1000, 4),
        "idle_per_s": {k: round(v, 4) for k, v in idle.items()},
        "node_cpu_ms_per_message_net": round(
            (node_cpu - idle["node_cpu"] * secs) / stored * 1000, 4
        ),
        "pg_backend_cpu_us_per_message_net": round(
            (pg_cpu - idle["pg_cpu"] * secs) / stored * 1e6, 1
        ),
        "pg_commits_per_message_net": round((pg_commits - idle["pg_commits"] * secs) / stored, 3),
        "batches": batch_histogram(w0.nodes, w1.nodes),
        "pg_commits_per_message": round((w1.pg["commits"] - w0.pg["commits"]) / stored, 3),
        "pg_rows_per_message": round((w1.pg["inserted"] - w0.pg["inserted"]) / stored, 3),
        "pg_backend_cpu_us_per_message": round(
            (w1.pg["backend_cpu_s"] - w0.pg["backend_cpu_s"]) / stored * 1e6, 1
        ),
    }


def share_figures(r: dict[str, Any], title: str) -> list[Figure]:
    mode, n = r["mode"], r["nodes"]
    out: list[Figure] = []
    shares = r["shares"]
    if shares is None:
        out.append(
            Figure(
                NAME,
                title,
                f"bus envelopes received per node / published ({n} nodes)",
                None,
                "%",
                target=f"<= {SHARE_TARGET:.0%}" if mode == "sharded" else "",
                met=False if mode == "sharded" else None,
                note="this build exports no homing_bus_received_total / "
                "homing_bus_published_total on /metrics",
            )
        )
    else:
        worst = max(shares)
        out.append(
            Figure(
                NAME,
                title,
                f"bus envelopes received by the busiest node / published ({n} nodes)",
                round(worst * 100, 1),
                "%",
                target=f"<= {SHARE_TARGET:.0%}" if mode == "sharded" else "",
                met=(worst <= SHARE_TARGET) if mode == "sharded" else None,
                note="per node: "
                + ", ".join(f"{s:.1%}" for s in shares)
                + "; received/s per node: "
                + ", ".join(str(x) for x in r["received_per_s"])
                + (
                    "; includes the node's own copies back from Redis (see the handled share)"
                    if mode == "sharded"
                    else ""
                ),
            )
        )
        out.append(
            Figure(
                NAME,
                title,
                "mean share per node",
                round(sum(shares) / len(shares) * 100, 1),
                "%",
            )
        )
        handled = r["handled_shares"]
        busiest = max(handled)
        out.append(
            Figure(
                NAME,
                title,
                f"bus envelopes handled by the busiest node / published ({n} nodes): received "
                "minus its own copies back from Redis",
                round(busiest * 100, 1),
                "%",
                target=f"<= {SHARE_TARGET:.0%}" if mode == "sharded" else "",
                met=(busiest <= SHARE_TARGET) if mode == "sharded" else None,
                note="per node: "
                + ", ".join(f"{s:.1%}" for s in handled)
                + "; "
                + (
                    "own copies dropped unread (homing_bus_echoes_total), still sent by Redis "
                    "and counted in the received share"
                    if mode == "sharded"
                    else "the channel bus drops none of its own copies (handled = received); "
                    f"dropping them would leave (N-1)/N = {(n - 1) / n:.0%} a node"
                ),
            )
        )
    out += [
        Figure(
            NAME,
            title,
            "round trip p50 / p99 under the steady load",
            f"{r['p50_ms']} / {r['p99_ms']}",
            "ms",
            note=f"{r['buyer_messages']} buyer messages, lost {r['lost']}, errors {r['errors']}",
        ),
        Figure(
            NAME,
            title,
            "loss under the steady load",
            r["lost"] + r["errors"],
            "msgs",
            target="0",
            met=r["lost"] + r["errors"] == 0,
        ),
        Figure(NAME, title, "envelopes published per stored message", r["envelopes_per_message"]),
        Figure(
            NAME,
            title,
            "Redis (S)PUBLISH commands per stored message",
            r["redis_commands_per_message"],
            note=f"commandstats: {r['redis_publish']}",
        ),
        Figure(NAME, title, "Redis CPU per (S)PUBLISH", r["redis_cpu_us_per_command"], "us"),
        Figure(NAME, title, "Redis CPU per stored message", r["redis_cpu_us_per_message"], "us"),
        Figure(
            NAME,
            title,
            "node CPU per stored message (all nodes)",
            r["node_cpu_ms_per_message"],
            "ms",
        ),
        Figure(
            NAME,
            title,
            "group commit batch size, mean (messages a transaction)",
            r["batches"]["mean"],
            note=f"{r['batches']['batches']} batches by size: {r['batches']['ranges']}",
        ),
        Figure(NAME, title, "PostgreSQL commits per stored message", r["pg_commits_per_message"]),
        Figure(
            NAME, title, "PostgreSQL rows inserted per stored message", r["pg_rows_per_message"]
        ),
        Figure(
            NAME,
            title,
            "PostgreSQL backend CPU per stored message",
            r["pg_backend_cpu_us_per_message"],
            "us",
            note=f"net of the idle cluster's {r['idle_per_s']['pg_cpu']:.3f} CPU s/s: "
            f"{r['pg_backend_cpu_us_per_message_net']} us; commits per message net of idle "
            f"{r['pg_commits_per_message_net']}",
        ),
    ]
    return out


# ---- bytes a message row takes --------------------------------------------------------
def sample_bodies() -> tuple[list[str], list[str]]:
    """Real buyer questions (bench/data/bot_questions.tsv) and the demo's answers."""
    questions = [q for _e, _k, q in load_questions()]
    faqs = json.loads((ROOT / "app" / "bot" / "demo_faqs.json").read_text())
    return questions, [str(f["answer"]) for f in faqs]


SIZE_FILL = """
INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind, body,
                      payload, client_msg_id, created_at)
SELECT lpad(to_hex(floor(extract(epoch FROM t) * 1000)::bigint), 12, '0')
           || substr(md5(g::text || 'm'), 1, 20),
       $1, c.id, s, CASE WHEN s % 2 = 1 THEN 'buyer' ELSE 'agent' END,
       CASE WHEN s % 2 = 1 THEN c.buyer_id ELSE 'agent-size' END, 'text',
       CASE WHEN s % 2 = 1 THEN ($2::text[])[1 + g % array_length($2::text[], 1)]
            ELSE ($3::text[])[1 + g % array_length($3::text[], 1)] END,
       '{}'::json, 'c' || substr(md5(g::text || 'c'), 1, 20), t
  FROM (SELECT id, buyer_id, row_number() OVER (ORDER BY id) AS n FROM conversations
         WHERE id LIKE 'sz%') c,
       generate_series(1, $4::int) s,
       LATERAL (SELECT c.n * $4::int + s AS g,
                       now() - interval '30 days' + (c.n * $4::int + s) * interval '1 second' AS t) x
"""


async def size_run(ctx: Any, rows: int, admin: str | None) -> dict[str, Any]:
    """A fresh database at the current schema; `rows` messages in conversations of 20; bytes
    per row of the table, its TOAST and each index (pg_*_size / rows, after VACUUM)."""
    from app.migrate import upgrade
    from bench.common import pg_admin

    system = HomingCluster(ctx.log_dir, nodes=1)
    db_name = system.db_name + "_size"
    await pg_admin(f'CREATE DATABASE "{db_name}"', admin)
    url = pg_url(db_name, admin)
    try:
        await asyncio.to_thread(upgrade, url)
        questions, answers = sample_bodies()
        per = 20
        convs = max(1, rows // per)
        system.database_url = url
        slug, _secret, _agents = await system.make_shop(0, 50)
        conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"), timeout=10)
        try:
            shop = await conn.fetchval("SELECT id FROM shops WHERE slug = $1", slug)
            await conn.execute(
                "INSERT INTO conversations (id, shop_id, buyer_id, queue, status, elder, "
                "last_seq, buyer_read_seq, agent_read_seq, opened_at, handled_by) "
                "SELECT 'sz' || lpad(g::text, 9, '0'), $1, 'buyer-' || g, 'general', 'closed', "
                "false, $2, 0, 0, now(), 'human' FROM generate_series(1, $3::int) g",
                shop,
                per,
                convs,
            )
            t0 = time.perf_counter()
            await conn.execute(SIZE_FILL, shop, questions, answers, per)
            fill_s = time.perf_counter() - t0
            await conn.execute("VACUUM ANALYZE messages")
            n = await conn.fetchval("SELECT count(*) FROM messages")
            body = await conn.fetchval("SELECT avg(octet_length(body)) FROM messages")
            sizes = await conn.fetchrow(
                "SELECT pg_total_relation_size('messages') AS total, "
                "pg_relation_size('messages') AS heap, "
                "pg_table_size('messages') - pg_relation_size('messages') AS toast_fsm_vm, "
                "pg_indexes_size('messages') AS indexes"
            )
            assert sizes is not None
            indexes = {
                r["name"]: int(r["size"])
                for r in await conn.fetch(
                    "SELECT indexrelid::regclass::text AS name, "
                    "pg_relation_size(indexrelid) AS size FROM pg_index "
                    "WHERE indrelid = 'messages'::regclass ORDER BY 1"
                )
            }
        finally:
            await conn.close()
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)', admin)
    per_row = {k: round(int(v) / n, 1) for k, v in dict(sizes).items()}
    return {
        "rows": int(n),
        "fill_s": round(fill_s, 1),
        "avg_body_bytes": round(float(body), 1),
        "bytes_per_row": per_row,
        "index_bytes_per_row": {k: round(v / n, 1) for k, v in indexes.items()},
    }


# ---- the workload ----------------------------------------------------------------------
async def run(ctx: Any) -> list[Figure]:
    a = ctx.args
    if a.bus_pg == "shared":
        return await run_on(ctx, None)
    pg = Postgres(ctx.log_dir)
    try:
        await pg.start()
        ctx.say(f"  private PostgreSQL on 127.0.0.1:{pg.port} (defaults; max_connections 400)")
        return await run_on(ctx, pg.admin_url)
    finally:
        pg.stop()


async def run_on(ctx: Any, admin: str | None) -> list[Figure]:
    a = ctx.args
    sizes = {
        "buyers": a.bus_buyers or (100 if ctx.quick else 400),
        "agents": a.bus_agents or (12 if ctx.quick else 40),
        "rate": a.bus_rate,
        "seconds": a.bus_seconds or (8.0 if ctx.quick else 20.0),
        "idle": a.bus_idle_s,
    }
    ctx.say(f"  {CORES_NOTE}: the figures are the cost of scale-out, not capacity")
    figures: list[Figure] = []
    shares: dict[str, dict[str, Any]] = {}
    for mode in [m.strip() for m in a.bus_modes.split(",") if m.strip()]:
        title = HomingCluster.title_for(a.bus_nodes, mode)
        try:
            r = await share_run(ctx, mode, a.bus_nodes, sizes, admin)
        except Exception as exc:  # noqa: BLE001 - report and go on to the next mode
            ctx.say(f"    {title} failed: {type(exc).__name__}: {exc}")
            figures.append(Figure(NAME, title, "run", None, note=f"error: {exc}"))
            continue
        shares[mode] = r
        ctx.say(f"    {json.dumps(r, default=str)}")
        figures += share_figures(r, title)
        figures[-1].extra = r

    # The message path with 2 and 4 nodes, the same search as message_path's homing-pg.
    n_buyers = a.mp_buyers or (100 if ctx.quick else 400)
    n_agents = a.mp_agents or (12 if ctx.quick else 40)
    step_s = a.mp_step_s or (2.0 if ctx.quick else 3.0)
    rates: dict[int, dict[str, Any]] = {}
    bus = a.bus_rate_bus or None
    for n in [int(x) for x in a.bus_rate_nodes.split(",") if x.strip()]:

        def make(n: int = n) -> System:
            return HomingCluster(
                ctx.log_dir,
                nodes=n,
                bus=bus,
                pg_admin_url=admin,
                frames_per_second=a.frames_per_second,
            )

        async def inspect(system: System, d: message_path.Driver) -> dict[str, Any]:
            assert isinstance(system, HomingCluster)
            return {
                "batches_over_search": batch_histogram(
                    [{} for _ in system.ports], await scrape(system)
                )
            }

        name, res = await message_path.measure_system(
            ctx, make, n_buyers, n_agents, step_s, inspect=inspect
        )
        rates[n] = res
        figs = message_path.system_figures(name, res, n_buyers, n_agents, step_s, workload=NAME)
        figs[0].note += f"; {CORES_NOTE} (scale-out cost, not capacity)"
        batches = (res.get("inspect") or {}).get("batches_over_search")
        if batches:
            figs.append(
                Figure(
                    NAME,
                    name,
                    "group commit batch size over the search, mean",
                    batches["mean"],
                    note=f"{batches['batches']} batches (warm-up and every step) by size: "
                    f"{batches['ranges']}",
                )
            )
        figures += figs
    if len(rates) >= 2:
        lo, hi = min(rates), max(rates)
        rl, rh = rates[lo]["best"], rates[hi]["best"]
        if rl and rh:
            figures.append(
                Figure(
                    NAME,
                    HomingCluster.title_for(hi, bus),
                    f"rate vs {lo} nodes",
                    round(rh.rate / rl.rate, 3),
                    "x",
                    note=f"{CORES_NOTE}: more nodes on the same core add no capacity here",
                )
            )
        cl, ch = rates[lo].get("cpu_ms"), rates[hi].get("cpu_ms")
        if cl and ch:
            figures.append(
                Figure(
                    NAME,
                    HomingCluster.title_for(hi, bus),
                    f"server CPU per round trip vs {lo} nodes",
                    round(ch / cl, 3),
                    "x",
                    note="the cost of spreading the same load over more nodes",
                )
            )

    rows = a.bus_size_rows if a.bus_size_rows is not None else (20000 if ctx.quick else 200000)
    if rows > 0:
        ctx.say(f"  [messages table] {rows} rows at the current schema, bytes a row")
        try:
            sz = await size_run(ctx, rows, admin)
        except Exception as exc:  # noqa: BLE001
            ctx.say(f"    size failed: {type(exc).__name__}: {exc}")
            figures.append(Figure(NAME, "PostgreSQL", "bytes per message row", None, note=str(exc)))
        else:
            ctx.say(f"    {json.dumps(sz)}")
            figures.append(
                Figure(
                    NAME,
                    "PostgreSQL",
                    "bytes per message row, table + TOAST + indexes",
                    sz["bytes_per_row"]["total"],
                    "B",
                    note=f"{sz['rows']} rows, mean body {sz['avg_body_bytes']} B; heap "
                    f"{sz['bytes_per_row']['heap']} B, indexes {sz['bytes_per_row']['indexes']} B: "
                    + ", ".join(f"{k} {v}" for k, v in sz["index_bytes_per_row"].items()),
                    extra=sz,
                )
            )
    return figures
