"""The bus workload's arithmetic (bench/workloads/bus.py), on /metrics texts made here.

The bench itself needs servers and is run by hand; what it computes from the scrapes (each
node's share of the cluster's envelopes, the group commit's batch sizes) is checked here.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.workloads.bus import Window, batch_histogram, measure, parse_metrics, share_figures


def exposition(
    published: int,
    received: int,
    batches: dict[str, int],
    n: int,
    total: int,
    echoes: int | None = None,
) -> str:
    lines = [
        "# TYPE homing_bus_published counter",
        f"homing_bus_published_total {published}",
        "# TYPE homing_bus_received counter",
        f"homing_bus_received_total {received}",
    ]
    if echoes is not None:
        lines += ["# TYPE homing_bus_echoes counter", f"homing_bus_echoes_total {echoes}"]
    lines.append("# TYPE homing_group_commit_batch_size histogram")
    for le, count in batches.items():
        lines.append(f'homing_group_commit_batch_size_bucket{{le="{le}"}} {count}')
    lines += [
        f"homing_group_commit_batch_size_count {n}",
        f"homing_group_commit_batch_size_sum {total}",
    ]
    return "\n".join(lines) + "\n"


EMPTY = {"1.0": 0, "2.0": 0, "5.0": 0, "+Inf": 0}


def test_parse_metrics_reads_counters_and_buckets() -> None:
    m = parse_metrics(exposition(7, 30, {"1.0": 2, "2.0": 3, "5.0": 4, "+Inf": 4}, 4, 9))
    assert m["homing_bus_published_total"] == 7
    assert m["homing_bus_received_total"] == 30
    assert m["homing_group_commit_batch_size_bucket{le=2.0}"] == 3
    assert m["homing_group_commit_batch_size_count"] == 4


def test_batch_histogram_sums_nodes_over_the_window() -> None:
    before = [parse_metrics(exposition(0, 0, EMPTY, 0, 0)) for _ in range(2)]
    after = [
        # node 0: batches of 1, 1, 2, 4; node 1: one batch of 2
        parse_metrics(exposition(0, 0, {"1.0": 2, "2.0": 3, "5.0": 4, "+Inf": 4}, 4, 8)),
        parse_metrics(exposition(0, 0, {"1.0": 0, "2.0": 1, "5.0": 1, "+Inf": 1}, 1, 2)),
    ]
    h = batch_histogram(before, after)
    assert h["batches"] == 5
    assert h["messages"] == 10
    assert h["mean"] == 2.0
    assert h["ranges"] == {"1-1": 2, "2-2": 2, "3-5": 1}


def window(
    t: float, nodes: list[tuple[int, int]], publish: float, echoes: list[int] | None = None
) -> Window:
    scraped = [
        parse_metrics(exposition(p, r, EMPTY, 0, 0, echoes[i] if echoes else None))
        for i, (p, r) in enumerate(nodes)
    ]
    return Window(
        t,
        scraped,
        {"publish": publish, "spublish": 0.0, "cpu_s": 0.0},
        {"commits": 0.0, "inserted": 0.0, "backend_cpu_s": 0.0, "backends": 1.0},
        [0.0 for _ in nodes],
    )


def test_share_is_received_over_everything_the_cluster_published() -> None:
    system: Any = SimpleNamespace(n_nodes=4)
    step: Any = SimpleNamespace(sent=50, lat=[0.01, 0.02], lost=0, errors=0)
    w0 = window(0.0, [(0, 0)] * 4, 0)
    # 100 envelopes published in all (25 a node). One channel: every node hears all 100.
    channel = measure("channel", system, step, w0, window(10.0, [(25, 100)] * 4, 100))
    assert channel["shares"] == [1.0, 1.0, 1.0, 1.0]
    assert channel["envelopes_per_message"] == 1.0  # 100 envelopes for 2 x 50 messages
    # Sharded: nodes hear only their sockets' topics.
    sharded = measure(
        "sharded",
        system,
        step,
        w0,
        window(10.0, [(25, 30), (25, 40), (25, 20), (25, 35)], 100),
    )
    assert sharded["shares"] == [0.3, 0.4, 0.2, 0.35]
    assert sharded["received_per_s"] == [3.0, 4.0, 2.0, 3.5]
    # The busiest node is judged against the 40%: met at 40%, missed above it.
    assert share_figures(sharded, "s")[0].met is True
    assert share_figures(channel, "c")[0].met is None  # the single channel has no target
    busier = measure(
        "sharded", system, step, w0, window(10.0, [(25, 41), (25, 10), (25, 10), (25, 10)], 100)
    )
    assert share_figures(busier, "s")[0].met is False


def test_handled_share_takes_out_the_copies_a_node_dropped_as_its_own() -> None:
    system: Any = SimpleNamespace(n_nodes=4)
    step: Any = SimpleNamespace(sent=50, lat=[0.01], lost=0, errors=0)
    w0 = window(0.0, [(0, 0)] * 4, 0, [0] * 4)
    # 100 envelopes; each reaches its publisher back and one other node: 50 received a node,
    # 25 of them the node's own copies.
    w1 = window(10.0, [(25, 50), (25, 50), (25, 55), (25, 45)], 100, [25, 25, 25, 25])
    sharded = measure("sharded", system, step, w0, w1)
    assert sharded["shares"] == [0.5, 0.5, 0.55, 0.45]
    assert sharded["echoes"] == [25, 25, 25, 25]
    assert sharded["handled_shares"] == [0.25, 0.25, 0.3, 0.2]
    figures = share_figures(sharded, "s")
    assert figures[0].met is False, "what crossed the wire still misses the target"
    handled = next(f for f in figures if "handled" in f.metric)
    assert handled.value == 30.0 and handled.met is True
    assert "still sent by Redis" in handled.note
    # The channel bus drops nothing: handled = received, and the note says so.
    channel = measure("channel", system, step, w0, window(10.0, [(25, 100)] * 4, 100, [0] * 4))
    assert channel["handled_shares"] == [1.0] * 4
    handled = next(f for f in share_figures(channel, "c") if "handled" in f.metric)
    assert handled.met is None and "drops none" in handled.note and "75%" in handled.note
    # A build without the echo counter dropped no copies: handled = received.
    older = measure(
        "sharded", system, step, window(0.0, [(0, 0)] * 4, 0), window(10.0, [(25, 50)] * 4, 100)
    )
    assert older["handled_shares"] == older["shares"] == [0.5] * 4


def test_no_share_without_the_bus_counters() -> None:
    system: Any = SimpleNamespace(n_nodes=2)
    step: Any = SimpleNamespace(sent=10, lat=[], lost=0, errors=0)
    bare = Window(
        0.0,
        [{}, {}],
        {"publish": 0.0, "spublish": 0.0, "cpu_s": 0.0},
        {"commits": 0.0, "inserted": 0.0, "backend_cpu_s": 0.0, "backends": 0.0},
        [0.0, 0.0],
    )
    later = Window(
        1.0,
        [{}, {}],
        {"publish": 20.0, "spublish": 0.0, "cpu_s": 0.0},
        {"commits": 0.0, "inserted": 0.0, "backend_cpu_s": 0.0, "backends": 0.0},
        [0.0, 0.0],
    )
    r = measure("channel", system, step, bare, later)
    assert r["shares"] is None
    assert r["redis_commands_per_message"] == 1.0
