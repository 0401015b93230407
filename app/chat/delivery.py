"""What the real-time layer reads from the chat record: missed messages and current state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlmodel import col

from app.chat import service
from app.chat.models import Conversation
from app.chat.opening import Coalescer
from app.chat.schemas import message_public
from app.chat.visibility import for_buyer
from app.clock import Clock
from app.db import Database
from app.realtime.connection import Connection
from app.realtime.sessions import ENDED, ROLE_CHANGED
from app.shops import service as shop_service


class ChatLoader:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        # The sockets of a reconnect storm each sync (and fill gaps) at once: one read
        # answers all that ask while the one before it runs (as buyer openings do).
        self._after = Coalescer(self._messages_after_each, name="messages-after")

    async def messages_after(self, conversation_id: str, after_seq: int) -> list[dict[str, Any]]:
        return await self._after.ask((conversation_id, after_seq))

    async def _messages_after_each(
        self, asks: list[tuple[str, int]]
    ) -> list[list[dict[str, Any]] | BaseException]:
        async with self.db.read() as session:
            pages = await service.messages_after_each(session, asks)
        return [[message_public(m) for m in page] for page in pages]

    async def current_conversations(self, conn: Connection) -> list[dict[str, Any]]:
        """The connection's tracked conversations plus the open ones it should know of."""
        tracked = list(conn.tracks)
        ident = conn.identity
        if conn.kind == "agent":
            mine = (col(Conversation.agent_id) == ident.id) & (
                col(Conversation.status) == "assigned"
            )
        else:
            mine = (
                (col(Conversation.shop_id) == ident.shop_id)
                & (col(Conversation.buyer_id) == ident.buyer_id)
                & (col(Conversation.status) != "closed")
            )
        cond = or_(mine, col(Conversation.id).in_(tracked)) if tracked else mine
        async with self.db.read() as session:
            convs = list((await session.execute(select(Conversation).where(cond))).scalars())
            return await service.public_conversations(
                session, convs, for_buyer=conn.kind != "agent"
            )

    async def session_ended(self, conn: Connection) -> str | None:
        """Why an agent socket's session no longer stands (ended, or the role changed), or None."""
        if conn.session_key is None:
            return None
        async with self.db.read() as session:
            found = await shop_service.session_of(session, conn.session_key, self.clock.now())
        if found is None:
            return ENDED
        return ROLE_CHANGED if found.agent.role != conn.identity.role else None


class BuyerLoader:
    """The record as a buyer's socket may read it: a staff note is a hidden stub (its `seq`
    only), which the connection counts as passed and never writes (`app.chat.visibility`).

    Reads go through the chat loader at each call (a test may replace its methods)."""

    def __init__(self, loader: ChatLoader) -> None:
        self.loader = loader

    async def messages_after(self, conversation_id: str, after_seq: int) -> list[dict[str, Any]]:
        return [for_buyer(m) for m in await self.loader.messages_after(conversation_id, after_seq)]

    async def current_conversations(self, conn: Connection) -> list[dict[str, Any]]:
        return await self.loader.current_conversations(conn)

    async def session_ended(self, conn: Connection) -> str | None:
        return await self.loader.session_ended(conn)
