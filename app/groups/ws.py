"""Group frames on the chat sockets (`group.send`, `group.sync`) and the group topics a
buyer socket listens to. Parse → one action → reply; the rules live in actions."""

from __future__ import annotations

from typing import Any

from app.chat.protocol import get_int, get_str, parse_outgoing
from app.context import AppContext
from app.errors import BadInput
from app.groups import actions, service
from app.realtime.connection import Connection
from app.shops.identities import BuyerIdentity


async def subscribe_buyer_groups(
    ctx: AppContext, conn: Connection, buyer: BuyerIdentity, ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """Listen to the buyer's groups (their offers too, unless a minor), then read them:
    anything after the `last_seq` read here arrives live, anything up to it the client
    syncs (`group.sync`). `ids`: the groups they are in, if read already (after `conn`
    was registered); most buyers are in none, and then nothing more is read."""
    if ids is None:
        async with ctx.db.read() as s:
            ids = await service.active_group_ids(s, buyer.shop_id, buyer.buyer_id)
    if not ids:
        return []
    for gid in ids:
        for topic in actions.member_topics(gid, buyer):
            ctx.hub.subscribe(conn, topic)
    await ctx.hub.ready(conn)  # a sharded bus hears the new topics before we read them
    async with ctx.db.read() as s:
        return await service.groups_by_ids(s, ids, buyer.buyer_id)


async def on_group_send(session: Any, caller: service.Caller, frame: dict[str, Any]) -> None:
    group_id = get_str(frame, "group_id")
    out = parse_outgoing(frame, max_chars=session.ctx.settings.max_body_chars)
    if out.kind != "text":
        raise BadInput(f"Group messages are text, but got kind {out.kind!r}.")
    sent = await session.run(
        actions.send_to_group, caller, group_id, out.client_msg_id, out.body, session.now()
    )
    session.ack(out.client_msg_id, service.message_public(sent.message))


async def on_group_sync(session: Any, caller: service.Caller, frame: dict[str, Any]) -> None:
    """Resend every group message after `after_seq` as `group.message`, in order."""
    group_id = get_str(frame, "group_id")
    after_seq = get_int(frame, "after_seq")
    if isinstance(caller, BuyerIdentity):
        await _listen_before_reading(session, caller, group_id)
    while True:
        async with session.ctx.db.read() as s:
            batch = await service.history(s, caller, group_id, after_seq)
        for msg in batch:
            session.conn.push({"type": "group.message", "message": msg})
        if len(batch) < service.PAGE:
            return
        after_seq = batch[-1]["seq"]


async def _listen_before_reading(session: Any, buyer: BuyerIdentity, group_id: str) -> None:
    """A member syncing a group hears it live from before the read: the join's
    `group.joined` (which subscribes the buyer's sockets) may not have reached this node
    yet, or was lost with the bus, and a sharded bus subscribes on demand."""
    conn = session.conn
    topics = actions.member_topics(group_id, buyer)
    if any(t not in conn.topics for t in topics):
        async with session.ctx.db.read() as s:
            await service.readable_group(s, buyer, group_id)  # a non-member is refused here
        for topic in topics:
            session.ctx.hub.subscribe(conn, topic)
    await session.ctx.hub.ready(conn)
