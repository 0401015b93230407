"""Names of the bus topics: who a frame is for. A connection listens to its own topics."""

from __future__ import annotations


def buyer_topic(shop_id: str, buyer_id: str) -> str:
    return f"b:{shop_id}:{buyer_id}"


def agent_topic(agent_id: str) -> str:
    return f"a:{agent_id}"


def shop_staff_topic(shop_id: str) -> str:
    """Supervisors and admins watching the whole shop (console)."""
    return f"s:{shop_id}"


def group_topic(group_id: str) -> str:
    """Every member socket of a fan group."""
    return f"g:{group_id}"


def group_offers_topic(group_id: str) -> str:
    """The member sockets of a fan group that may see its giveaways (not minors')."""
    return f"g:{group_id}:offers"


def conversation_sides(shop_id: str, buyer_id: str, agent_id: str | None) -> list[str]:
    """Who hears of a conversation's news: its buyer, and its agent if it has one."""
    topics = [buyer_topic(shop_id, buyer_id)]
    if agent_id:
        topics.append(agent_topic(agent_id))
    return topics


def compliance_topic() -> str:
    """Every node's rules cache: a shop's compliance rules changed (no socket listens)."""
    return "x:compliance"


# An agent's `conversation.assigned` may carry the conversation's messages so far under
# this key (routing.actions.announce_assignments): the agent's connection writes them as
# `message.new` frames right after the assignment and never puts the key on the wire.
HISTORY_KEY = "_history"
