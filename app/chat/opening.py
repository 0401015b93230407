"""The reads and writes of buyer sockets opening at once, shared (as the group commit shares
the writes of messages).

A buyer socket's opening needs its token checked against its shop's secret, its stored
record (elder mode; whether the token says something new), a write when it does, and,
once the socket is registered, the buyer's open conversation, its queue position and
their groups. Done one socket at a time that is three transactions and half a dozen
queries each; during a reconnect storm (a node restart, a promotion at 20:00) thousands
of sockets wait on the same pool. Here every socket that asks while a batch is in
flight joins the next one: one read (or one write) serves them all, each caller gets its
own answer, and an error in one (a bad token) reaches only that caller.

Nothing is cached across batches: each batch reads the record as it stands, so a revoked
or expired token, a changed profile or a conversation opened a moment ago is seen as if
each socket had read alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat import service
from app.chat.actions import buyers_own
from app.chat.models import Conversation
from app.clock import Clock
from app.db import Database
from app.errors import NotAuthenticated, NotFound
from app.groups.models import MEMBER_ACTIVE, GroupMember
from app.shops import actions as shop_actions
from app.shops import service as shop_service
from app.shops.identities import BuyerIdentity

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Res = TypeVar("Res")

MAX_BATCH = 500


class Coalescer(Generic[Req, Res]):
    """`await ask(req)`: requests made while a batch runs are answered by the next one.

    `answer(reqs)` returns, for each request in order, its result or the exception to
    raise to its caller alone; if `answer` itself raises, every caller of that batch gets
    the error. The first request after a quiet spell starts a batch at the next turn of
    the event loop (so a lone socket waits for nothing), taking everything asked by then.
    """

    def __init__(
        self,
        answer: Callable[[list[Req]], Awaitable[list[Res | BaseException]]],
        *,
        name: str,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._answer = answer
        self._name = name
        self._max = max_batch
        self._waiting: list[tuple[Req, asyncio.Future[Res]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches answered (tests and /metrics-style checks read it)

    async def ask(self, req: Req) -> Res:
        future: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
        self._waiting.append((req, future))
        if self._task is None or self._task.done():
            # Its own context: a batch serves many sockets, so its log lines name none.
            self._task = asyncio.create_task(
                self._run(), name=self._name, context=contextvars.Context()
            )
        return await future

    async def _run(self) -> None:
        await asyncio.sleep(0)  # let the sockets of this turn of the loop join
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max], self._waiting[self._max :]
            live = [(r, f) for r, f in batch if not f.done()]  # a caller gone (cancelled)
            if not live:
                continue
            try:
                results = await self._answer([r for r, _f in live])
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                results = [exc] * len(live)
            self.batches += 1
            for (_r, future), result in zip(live, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


@dataclass(frozen=True)
class Opened:
    """What a buyer socket's hello says, read after it was registered."""

    conversation: Conversation | None = None
    public: dict[str, Any] | None = None
    position: int | None = None
    group_ids: list[str] = field(default_factory=list)


class BuyerOpenings:
    """The shared reads and writes of buyer sockets opening on this node."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.identify = Coalescer(self._identify, name="buyer-identify")
        self.touch = Coalescer(self._touch, name="buyer-touch")
        self.state = Coalescer(self._state, name="buyer-opened")
        self.conversations = Coalescer(self._conversations, name="buyer-conversation")

    async def buyer(self, token: str | None) -> BuyerIdentity:
        """The buyer this token signs in, their record written first if it says something
        new (or was not seen lately); raises NotAuthenticated."""
        buyer, current = await self.identify.ask(token)
        if not current:
            await self.touch.ask(buyer)
        return buyer

    async def opened(self, buyer: BuyerIdentity) -> Opened:
        """The buyer's open conversation (its position if queued) and their groups, read now."""
        return await self.state.ask(buyer)

    async def conversation(self, buyer: BuyerIdentity, conversation_id: str) -> Conversation:
        """The conversation a buyer's frame names, if it is theirs (else NotFound): what
        each socket's `sync` after a reconnect asks first, read for all at once."""
        return await self.conversations.ask((buyer, conversation_id))

    # ---- the batches -------------------------------------------------------------
    async def _conversations(
        self, asks: list[tuple[BuyerIdentity, str]]
    ) -> list[Conversation | BaseException]:
        async with self.db.read() as s:
            rows = await s.execute(
                select(Conversation).where(
                    col(Conversation.id).in_(sorted({cid for _b, cid in asks}))
                )
            )
            found = {c.id: c for c in rows.scalars()}
        out: list[Conversation | BaseException] = []
        for buyer, cid in asks:
            try:
                out.append(buyers_own(buyer, found.get(cid)))
            except NotFound as exc:
                out.append(exc)
        return out

    async def _identify(
        self, tokens: list[str | None]
    ) -> list[tuple[BuyerIdentity, bool] | BaseException]:
        now = self.clock.now()
        slugs: list[str | BaseException] = []
        for token in tokens:
            try:
                slugs.append(shop_service.buyer_token_shop(token))
            except NotAuthenticated as exc:
                slugs.append(exc)
        async with self.db.read() as s:
            keys = await shop_service.buyer_keys(s, (x for x in slugs if isinstance(x, str)))
            buyers: list[BuyerIdentity | BaseException] = []
            for token, slug in zip(tokens, slugs, strict=True):
                if isinstance(slug, BaseException):
                    buyers.append(slug)
                    continue
                try:
                    assert token is not None
                    buyers.append(shop_service.verified_buyer(token, keys.get(slug), now))
                except NotAuthenticated as exc:
                    buyers.append(exc)
            records = await _records(s, [b for b in buyers if isinstance(b, BuyerIdentity)])
        out: list[tuple[BuyerIdentity, bool] | BaseException] = []
        for b in buyers:
            if isinstance(b, BaseException):
                out.append(b)
                continue
            record = records.get((b.shop_id, b.buyer_id))
            current = shop_service.record_is_current(record, b, now)
            if record is not None and record.elder_mode:
                b = BuyerIdentity(**{**b.__dict__, "elder_mode": True})
            out.append((b, current))
        return out

    async def _touch(self, buyers: list[BuyerIdentity]) -> list[None | BaseException]:
        await self.db.run(shop_actions.touch_buyers, buyers, self.clock.now())
        return [None] * len(buyers)

    async def _state(self, buyers: list[BuyerIdentity]) -> list[Opened | BaseException]:
        by_shop: dict[str, set[str]] = {}
        for b in buyers:
            by_shop.setdefault(b.shop_id, set()).add(b.buyer_id)
        async with self.db.read() as s:
            convs: dict[tuple[str, str], Conversation] = {}
            groups: dict[tuple[str, str], list[str]] = {}
            for shop_id, ids in by_shop.items():
                for conv in await _open_conversations(s, shop_id, ids):
                    convs.setdefault((shop_id, conv.buyer_id), conv)
                for gid, bid in await _active_groups(s, shop_id, ids):
                    groups.setdefault((shop_id, bid), []).append(gid)
            found = list(convs.values())
            public = dict(
                zip(
                    (c.id for c in found),
                    await service.public_conversations(s, found, for_buyer=True),
                    strict=True,
                )
            )
            positions = await service.queue_positions(s, [c for c in found if c.status == "queued"])
        out: list[Opened | BaseException] = []
        for b in buyers:
            key = (b.shop_id, b.buyer_id)
            mine = convs.get(key)
            out.append(
                Opened(
                    conversation=mine,
                    public=public[mine.id] if mine else None,
                    position=positions.get(mine.id) if mine else None,
                    group_ids=list(groups.get(key, [])),
                )
            )
        return out


async def _records(
    s: AsyncSession, buyers: list[BuyerIdentity]
) -> dict[tuple[str, str], shop_service.BuyerRecord]:
    by_shop: dict[str, set[str]] = {}
    for b in buyers:
        by_shop.setdefault(b.shop_id, set()).add(b.buyer_id)
    found: dict[tuple[str, str], shop_service.BuyerRecord] = {}
    for shop_id, ids in by_shop.items():
        for bid, record in (await shop_service.buyer_records(s, shop_id, ids)).items():
            found[(shop_id, bid)] = record
    return found


async def _open_conversations(s: AsyncSession, shop_id: str, ids: set[str]) -> list[Conversation]:
    rows = await s.execute(
        select(Conversation).where(
            col(Conversation.shop_id) == shop_id,
            col(Conversation.buyer_id).in_(sorted(ids)),
            col(Conversation.status) != "closed",
        )
    )
    return list(rows.scalars())


async def _active_groups(s: AsyncSession, shop_id: str, ids: set[str]) -> list[tuple[str, str]]:
    rows = await s.execute(
        select(col(GroupMember.group_id), col(GroupMember.buyer_id)).where(
            col(GroupMember.shop_id) == shop_id,
            col(GroupMember.buyer_id).in_(sorted(ids)),
            col(GroupMember.status) == MEMBER_ACTIVE,
        )
    )
    return [(gid, bid) for gid, bid in rows.all()]
