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
