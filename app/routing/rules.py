"""Pure routing decisions over plain values: which queue, and which agent first.

No I/O here. The actions module loads the facts, asks these functions, and then makes
the decision stick with conditional updates (an agent may fill up in the meantime).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

ELDER_AGE = 60
GENERAL = "general"
ELDERLY = "elderly"


@dataclass(frozen=True)
class BuyerFacts:
    age: int | None = None
    elder_mode: bool = False

    @property
    def is_elder(self) -> bool:
        return self.elder_mode or (self.age is not None and self.age >= ELDER_AGE)


@dataclass(frozen=True)
class AgentCandidate:
    id: str
    active_count: int
    max_concurrent: int
    last_assigned_at: datetime | None = None

    @property
    def has_room(self) -> bool:
        return self.active_count < self.max_concurrent

    @property
    def load(self) -> float:
        return self.active_count / self.max_concurrent if self.max_concurrent else 1.0


def choose_queue(
    buyer: BuyerFacts,
    *,
    category: str | None = None,
    category_queues: Mapping[str, str] | None = None,
    existing_queues: Iterable[str] = (GENERAL, ELDERLY),
) -> str:
    """First rule that matches: elder → `elderly`; mapped category → its queue; else `general`."""
    if buyer.is_elder:
        return ELDERLY
    if category and category_queues:
        queue = category_queues.get(category)
        if queue and queue in set(existing_queues):
            return queue
    return GENERAL


def rank_agents(
    candidates: Sequence[AgentCandidate], *, preferred_agent_id: str | None = None
) -> list[AgentCandidate]:
    """Agents with room, best first: the buyer's recent agent, then least loaded, then idle longest."""
    with_room = [c for c in candidates if c.has_room]

    def idle_key(c: AgentCandidate) -> float:
        # Never assigned counts as idle since forever.
        return c.last_assigned_at.timestamp() if c.last_assigned_at else float("-inf")

    ranked = sorted(with_room, key=lambda c: (c.load, idle_key(c), c.id))
    if preferred_agent_id:
        preferred = [c for c in ranked if c.id == preferred_agent_id]
        ranked = preferred + [c for c in ranked if c.id != preferred_agent_id]
    return ranked


def plan_assignments(
    waiting: Sequence[str],
    candidates: Sequence[AgentCandidate],
    *,
    preferred: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> list[tuple[str, str]]:
    """Who takes each of `waiting` (conversation ids, oldest first): (conversation, agent) pairs.

    The same choices as ranking the agents for each conversation in turn (`rank_agents`,
    with `preferred[conversation]` its buyer's recent agent) and giving it to the first,
    each choice counting against that agent before the next is made; stops at the first
    conversation nobody has room for, so nobody is passed over for a later waiter.
    """
    agents = {c.id: c for c in candidates}
    plan: list[tuple[str, str]] = []
    for conv_id in waiting:
        ranked = rank_agents(
            list(agents.values()), preferred_agent_id=(preferred or {}).get(conv_id)
        )
        if not ranked:
            break
        best = ranked[0]
        agents[best.id] = AgentCandidate(
            best.id,
            best.active_count + 1,
            best.max_concurrent,
            now if now is not None else best.last_assigned_at,
        )
        plan.append((conv_id, best.id))
    return plan


# Conversations waiting in the key queue may go to agents of the value queue once they
# have waited the queue's overflow time (elder-care first, then any general agent).
OVERFLOW_TO: dict[str, str] = {ELDERLY: GENERAL}


def overflow_sources(queue: str) -> list[str]:
    """Queues whose overdue waiters agents serving `queue` may also take."""
    return [src for src, dst in OVERFLOW_TO.items() if dst == queue]


def overflow_due(queued_at: datetime, now: datetime, overflow_after_s: int) -> bool:
    return (now - queued_at).total_seconds() >= overflow_after_s


def presence_lost(last_seen_at: datetime | None, now: datetime, grace_s: float) -> bool:
    """No socket of the agent has been seen on any node for longer than the grace period."""
    return last_seen_at is None or (now - last_seen_at).total_seconds() > grace_s


def inactive(last_buyer_activity: datetime, now: datetime, after_s: float) -> bool:
    return (now - last_buyer_activity).total_seconds() >= after_s


CSAT_SCORES = range(1, 6)


def waited_s(since: datetime | None, now: datetime) -> int:
    """Whole seconds waited since `since` (0 when nobody waits)."""
    if since is None:
        return 0
    return max(0, int((now - since).total_seconds()))
