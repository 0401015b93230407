"""Routing decisions as tables of cases (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.routing.rules import (
    AgentCandidate,
    BuyerFacts,
    choose_queue,
    inactive,
    overflow_due,
    overflow_sources,
    plan_assignments,
    presence_lost,
    rank_agents,
)

T0 = datetime(2026, 11, 11, 20, 0, tzinfo=UTC)
CATS = {"珠宝": "jewelry", "生鲜": "fresh", "家电": "appliances", "ghost": "deleted-queue"}
QUEUES = ("general", "elderly", "jewelry", "fresh", "appliances")


@pytest.mark.parametrize(
    ("buyer", "category", "expected"),
    [
        (BuyerFacts(age=72), None, "elderly"),
        (BuyerFacts(age=60), "珠宝", "elderly"),  # elder rule comes first
        (BuyerFacts(age=59), None, "general"),
        (BuyerFacts(elder_mode=True), "生鲜", "elderly"),
        (BuyerFacts(age=30), "珠宝", "jewelry"),
        (BuyerFacts(), "家电", "appliances"),
        (BuyerFacts(), "服装", "general"),  # unmapped category
        (BuyerFacts(), "ghost", "general"),  # mapped to a queue that no longer exists
        (BuyerFacts(age=None), None, "general"),
    ],
)
def test_choose_queue(buyer, category, expected):
    assert (
        choose_queue(buyer, category=category, category_queues=CATS, existing_queues=QUEUES)
        == expected
    )


def cand(id_, active, limit=5, idle_min=None):
    return AgentCandidate(
        id_, active, limit, T0 - timedelta(minutes=idle_min) if idle_min is not None else None
    )


@pytest.mark.parametrize(
    ("candidates", "preferred", "expected"),
    [
        ([cand("a", 3), cand("b", 1), cand("c", 2)], None, ["b", "c", "a"]),  # least loaded
        ([cand("a", 2, 10), cand("b", 1, 2)], None, ["a", "b"]),  # load is active/limit
        ([cand("a", 1, idle_min=5), cand("b", 1, idle_min=30)], None, ["b", "a"]),  # idle longest
        (
            [cand("a", 1, idle_min=5), cand("b", 1)],
            None,
            ["b", "a"],
        ),  # never assigned = idle longest
        ([cand("a", 4), cand("b", 0)], "a", ["a", "b"]),  # regular first when they have room
        ([cand("a", 5), cand("b", 0)], "a", ["b"]),  # ... but not when full
        ([cand("a", 5), cand("b", 5)], None, []),
    ],
)
def test_rank_agents(candidates, preferred, expected):
    assert [c.id for c in rank_agents(candidates, preferred_agent_id=preferred)] == expected


@pytest.mark.parametrize(("waited", "due"), [(119, False), (120, True), (500, True)])
def test_overflow_due(waited, due):
    assert overflow_due(T0, T0 + timedelta(seconds=waited), 120) is due


def test_overflow_goes_from_elderly_to_general_only():
    assert overflow_sources("general") == ["elderly"]
    assert overflow_sources("elderly") == []
    assert overflow_sources("jewelry") == []


@pytest.mark.parametrize(("seen_ago", "lost"), [(None, True), (30, False), (31, True), (5, False)])
def test_presence_lost(seen_ago, lost):
    seen = None if seen_ago is None else T0 - timedelta(seconds=seen_ago)
    assert presence_lost(seen, T0, 30) is lost


@pytest.mark.parametrize(("quiet_min", "closes"), [(29, False), (30, True), (45, True)])
def test_inactive(quiet_min, closes):
    assert inactive(T0 - timedelta(minutes=quiet_min), T0, 1800) is closes


def test_waited_seconds_are_whole_and_never_negative():
    from datetime import UTC, datetime, timedelta

    from app.routing.rules import waited_s

    now = datetime(2026, 11, 11, 20, 0, tzinfo=UTC)
    assert waited_s(None, now) == 0
    assert waited_s(now - timedelta(seconds=95.9), now) == 95
    assert waited_s(now + timedelta(seconds=3), now) == 0  # another node's clock a little ahead


def _one_at_a_time(waiting, candidates, preferred, now):
    """What dispatch did before batches: rank for each conversation, take the first, repeat."""
    agents = {c.id: c for c in candidates}
    plan = []
    for conv in waiting:
        ranked = rank_agents(list(agents.values()), preferred_agent_id=preferred.get(conv))
        if not ranked:
            break
        a = ranked[0]
        agents[a.id] = AgentCandidate(a.id, a.active_count + 1, a.max_concurrent, now)
        plan.append((conv, a.id))
    return plan


@pytest.mark.parametrize("seed", range(20))
def test_plan_assignments_is_one_at_a_time_in_one_pass(seed):
    import random

    rnd = random.Random(seed)
    candidates = [
        AgentCandidate(
            f"a{i}",
            rnd.randint(0, 4),
            rnd.randint(1, 5),
            None if rnd.random() < 0.3 else T0 - timedelta(seconds=rnd.randint(0, 600)),
        )
        for i in range(rnd.randint(0, 8))
    ]
    waiting = [f"c{i}" for i in range(rnd.randint(0, 30))]
    preferred = {c: f"a{rnd.randint(0, 9)}" for c in waiting if rnd.random() < 0.3}
    plan = plan_assignments(waiting, candidates, preferred=preferred, now=T0)
    assert plan == _one_at_a_time(waiting, candidates, preferred, T0)
    room = sum(max(0, c.max_concurrent - c.active_count) for c in candidates)
    assert len(plan) == min(room, len(waiting)), "stops only when nobody has room"
    taken = {c.id: 0 for c in candidates}
    for _conv, agent in plan:
        taken[agent] += 1
    for c in candidates:
        assert c.active_count + taken[c.id] <= max(c.max_concurrent, c.active_count)


def test_plan_assignments_gives_a_regular_their_agent_while_they_have_room():
    agents = [AgentCandidate("a1", 0, 1), AgentCandidate("a2", 0, 5)]
    plan = plan_assignments(["c1", "c2", "c3"], agents, preferred={"c2": "a1", "c3": "a1"})
    # c1 goes to the least loaded (a1, idle longest by id), so c2's regular agent is full.
    assert plan == [("c1", "a1"), ("c2", "a2"), ("c3", "a2")]
    plan = plan_assignments(["c1", "c2"], agents, preferred={"c1": "a2"})
    assert plan == [("c1", "a2"), ("c2", "a1")]
    assert plan_assignments(["c1"], [AgentCandidate("a1", 3, 3)]) == []
