"""One table of append cases, run through every path that stores a message, on both databases.

The paths (`app.chat.append_rules`): `orm` (the full path, `actions.send_from_*`) and the
group commit, which is `sqlite_sql` (`appender._plan`) under `--db sqlite` and
`pg_function` (`homing_append_messages`) under `--db postgres`. The group commit is driven
as the sockets drive it (`ws.send_and_ack`): what it hands back takes the full path.

Each case is checked against the table (what each send came to, and which sends the group
commit stored itself), and the group commit's run against the `orm` run of the same case
in a shop of its own: the conversations and messages stored, the row counts of every other
table of the shop, the events published and the routing signals, with ids replaced by
names. A failing test names its case and path.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import SQLModel, col

from app.chat import actions
from app.chat.appender import Append, MessageAppender
from app.chat.models import Conversation, Message
from app.chat.schemas import message_public
from app.db import Database, new_id
from app.errors import DomainError
from app.shops.models import Agent
from tests.support.factories import ShopKit, make_shop

AGENTS = (("agent1", "agent", ("general",)), ("agent2", "agent", ("general",)))
BUYERS: dict[str, dict[str, Any]] = {
    "b1": {"name": "一号", "vip": None},
    "b2": {"name": "二号", "vip": 2},
    "e1": {"name": "长辈", "vip": None, "elder_mode": True},  # opens in the elderly queue
}
CARD = {"product_id": "p-1", "title": "保温杯", "category": "cups"}


@dataclass(frozen=True)
class Send:
    """`who` sends `cmid`. A buyer's socket follows its conversation once it has one
    (`new_tab`: a socket that follows none yet); `into` names the buyer whose current
    conversation the socket follows (an agent's always, a buyer's to point it elsewhere)."""

    who: str
    cmid: str
    into: str | None = None
    kind: str = "text"
    payload: dict[str, Any] | None = None
    new_tab: bool = False


@dataclass(frozen=True)
class Batch:
    """Sends that arrive together: one group-commit batch (the full path takes them in order)."""

    sends: tuple[Send, ...]


@dataclass(frozen=True)
class Assign:
    buyer: str
    agent: str


@dataclass(frozen=True)
class Close:
    buyer: str


Step = Send | Batch | Assign | Close


@dataclass(frozen=True)
class Case:
    name: str
    steps: tuple[Step, ...]
    # Per send, in order: "b1#2:3" stored as seq 3 of b1's second conversation,
    # "dup b1#1:1" a resend answered with that message, "refused <code>".
    outcomes: tuple[str, ...]
    # Per send: "F" stored by the group commit itself, "-" handed back to the full path.
    fast: str


def b1(cmid: str, **kw: Any) -> Send:
    return Send("b1", cmid, **kw)


def agent(cmid: str, who: str = "agent1", into: str = "b1") -> Send:
    return Send(who, cmid, into=into)


CASES = (
    Case("first message opens a conversation", (b1("m1"),), ("b1#1:1",), "F"),
    Case("next seq", (b1("m1"), b1("m2"), b1("m3")), ("b1#1:1", "b1#1:2", "b1#1:3"), "FFF"),
    Case(
        "resend returns the original and stores nothing",
        (b1("m1"), b1("m2"), b1("m1")),
        ("b1#1:1", "b1#1:2", "dup b1#1:1"),
        "FF-",
    ),
    Case(
        "resend of the first message from a new tab",
        (b1("m1"), b1("m1", new_tab=True)),
        ("b1#1:1", "dup b1#1:1"),
        "F-",
    ),
    Case(
        "a new tab's first message joins the open conversation",
        (b1("m1"), b1("m2", new_tab=True)),
        ("b1#1:1", "b1#1:2"),
        "F-",
    ),
    Case("an elder opens in the elderly queue", (Send("e1", "m1"),), ("e1#1:1",), "F"),
    Case(
        "a card opens by the full path",
        (b1("m1", kind="product_card", payload=CARD),),
        ("b1#1:1",),
        "-",
    ),
    Case(
        "a card into an open conversation",
        (b1("m1"), b1("m2", kind="product_card", payload=CARD)),
        ("b1#1:1", "b1#1:2"),
        "FF",
    ),
    Case(
        "the serving agent replies; only the buyer's words move the buyer's clock",
        (b1("m1"), Assign("b1", "agent1"), agent("a1"), b1("m2"), agent("a2")),
        ("b1#1:1", "b1#1:2", "b1#1:3", "b1#1:4"),
        "FFFF",
    ),
    Case(
        "another agent is refused",
        (b1("m1"), Assign("b1", "agent1"), agent("x1", who="agent2")),
        ("b1#1:1", "refused forbidden"),
        "F-",
    ),
    Case(
        "an agent cannot write into a waiting conversation",
        (b1("m1"), agent("x1")),
        ("b1#1:1", "refused forbidden"),
        "F-",
    ),
    Case(
        "a message to a closed conversation is refused",
        (b1("m1"), Assign("b1", "agent1"), Close("b1"), agent("a1")),
        ("b1#1:1", "refused conversation_closed"),
        "F-",
    ),
    Case(
        "a buyer writing after the close opens a new conversation",
        (b1("m1"), Close("b1"), b1("m2")),
        ("b1#1:1", "b1#2:1"),
        "F-",
    ),
    Case(
        "a resend after the close returns the original",
        (b1("m1"), Close("b1"), b1("m1"), b1("m1", new_tab=True)),
        ("b1#1:1", "dup b1#1:1", "dup b1#1:1"),
        "F--",
    ),
    Case(
        "an agent's resend",
        (b1("m1"), Assign("b1", "agent1"), agent("a1"), agent("a1")),
        ("b1#1:1", "b1#1:2", "dup b1#1:2"),
        "FF-",
    ),
    Case(
        "a buyer's socket pointed at another's conversation",
        (b1("m1"), Send("b2", "w1", into="b1")),
        ("b1#1:1", "b2#1:1"),
        "F-",
    ),
    Case(
        "concurrent sends in one conversation, one batch",
        (b1("m1"), Assign("b1", "agent1"), Batch((b1("m2"), agent("a1"), b1("m3"), agent("a2")))),
        ("b1#1:1", "b1#1:2", "b1#1:3", "b1#1:4", "b1#1:5"),
        "FFFFF",
    ),
    Case(
        "different buyers open in one batch",
        (Batch((b1("m1"), Send("b2", "m1"), Send("e1", "m1"))),),
        ("b1#1:1", "b2#1:1", "e1#1:1"),
        "FFF",
    ),
    Case(
        "a batch with a duplicate inside it",
        (b1("m1"), Batch((b1("m2"), b1("m2"), b1("m3")))),
        ("b1#1:1", "b1#1:2", "dup b1#1:2", "b1#1:3"),
        "FF-F",
    ),
    Case(
        "two tabs open at once",
        (Batch((b1("m1"), b1("m2", new_tab=True))),),
        ("b1#1:1", "b1#1:2"),
        "F-",
    ),
    Case(
        "one batch: stored, refused and handed back side by side",
        (
            b1("m1"),
            Assign("b1", "agent1"),
            Send("b2", "n1"),
            Batch(
                (
                    agent("x1", who="agent2"),
                    b1("m2"),
                    Send("b2", "n2"),
                    b1("m1"),
                    agent("a1"),
                )
            ),
        ),
        ("b1#1:1", "b2#1:1", "refused forbidden", "b1#1:2", "b2#1:2", "dup b1#1:1", "b1#1:3"),
        "FF-FF-F",
    ),
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "path" in metafunc.fixturenames:
        fast = "pg_function" if metafunc.config.getoption("--db") == "postgres" else "sqlite_sql"
        metafunc.parametrize("path", ["orm", fast])
    if "case" in metafunc.fixturenames:
        metafunc.parametrize(
            "case", CASES, ids=[re.sub(r"[^a-z0-9]+", "_", c.name).strip("_") for c in CASES]
        )


@dataclass
class Run:
    """One case through one path, in a shop of its own, on a `Database` of its own (so the
    events and signals it publishes are caught here)."""

    db: Database
    kit: ShopKit
    fast: bool
    t0: datetime  # step i happens at t0 + i minutes, the j-th send of a batch j ms later
    # buyer -> the conversation its socket follows (as `BuyerSocket.conversation_id`)
    follows: dict[str, str] = field(default_factory=dict)
    outcomes: list[tuple[Any, ...]] = field(default_factory=list)
    handled: list[str] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    signals: list[tuple[str, Any]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)  # group-commit batches per send step

    async def go(self, steps: tuple[Step, ...]) -> None:
        self.db.publisher = self._publish
        self.db.on_signal = lambda name, arg: self.signals.append((name, arg))
        appender = MessageAppender(self.db)
        try:
            for i, step in enumerate(steps):
                now = self.t0 + timedelta(minutes=i)
                if isinstance(step, Assign):
                    conv_id = await self.current(step.buyer)
                    await self.db.run(self._assign, conv_id, self.kit.agents[step.agent], now)
                elif isinstance(step, Close):
                    await self.db.run(self._close, await self.current(step.buyer), now)
                else:
                    sends = step.sends if isinstance(step, Batch) else (step,)
                    before = appender.batches
                    await self._sends(appender, sends, now)
                    self.batches.append(appender.batches - before)
        finally:
            await appender.close()

    async def _publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        self.events.extend(events)

    @staticmethod
    async def _assign(uow: Any, conv_id: str, agent_id: str, now: datetime) -> None:
        """Set-up: the conversation is served by the agent (as `routing.dispatch` leaves it)."""
        await uow.session.execute(
            update(Conversation)
            .where(col(Conversation.id) == conv_id)
            .values(status="assigned", agent_id=agent_id, assigned_at=now)
        )

    @staticmethod
    async def _close(uow: Any, conv_id: str, now: datetime) -> None:
        conv = await uow.session.get(Conversation, conv_id)
        await actions.close_conversation(uow, conv, reason="agent", now=now)
        uow.events.clear()  # set-up, not under test
        uow.signals.clear()

    async def current(self, buyer: str) -> str:
        """The buyer's latest conversation."""
        async with self.db.read() as s:
            row = await s.execute(
                select(Conversation.id)
                .where(
                    col(Conversation.shop_id) == self.kit.shop_id,
                    col(Conversation.buyer_id) == buyer,
                )
                .order_by(col(Conversation.opened_at).desc())
                .limit(1)
            )
            return str(row.scalar_one())

    async def _sends(
        self, appender: MessageAppender, sends: tuple[Send, ...], now: datetime
    ) -> None:
        times = [now + timedelta(milliseconds=j) for j in range(len(sends))]
        results: list[dict[str, Any] | None] = [None] * len(sends)
        if self.fast:
            items = [await self._append(s, t) for s, t in zip(sends, times, strict=True)]
            tried = [i for i, item in enumerate(items) if item is not None]
            got = await asyncio.gather(*(appender.append(items[i]) for i in tried))  # type: ignore[arg-type]
            for i, message in zip(tried, got, strict=True):
                results[i] = message
        for s, t, message in zip(sends, times, results, strict=True):
            self.handled.append("-" if message is None else "F")
            if message is not None:
                outcome: tuple[Any, ...] = ("ok", message["conversation_id"], message["seq"], False)
                wire = message
            else:
                outcome, wire = await self._full(s, t)
            self.outcomes.append((*outcome, wire))
            if outcome[0] == "ok" and s.who in BUYERS:
                self.follows[s.who] = outcome[1]

    async def _append(self, s: Send, now: datetime) -> Append | None:
        """What the socket hands the group commit (`ws.send_and_ack`), or None."""
        out = self._outgoing(s)
        opens = None
        if s.who in BUYERS:
            followed = await self.current(s.into) if s.into else self.follows.get(s.who)
            if s.new_tab:
                followed = None
            if followed is None:
                opens = actions.plain_opening(self._buyer(s.who), out)
        else:
            followed = await self.current(s.into or "")
        if not (followed or opens) or out.kind == "image":
            return None
        return Append(
            shop_id=self.kit.shop_id,
            conversation_id=followed or new_id(),
            sender="buyer" if s.who in BUYERS else "agent",
            sender_id=s.who if s.who in BUYERS else self.kit.agents[s.who],
            kind=out.kind,
            body=out.body,
            payload=out.payload or {},
            client_msg_id=out.client_msg_id,
            now=now,
            opens=opens,
        )

    async def _full(self, s: Send, now: datetime) -> tuple[tuple[Any, ...], Any]:
        out = self._outgoing(s)
        try:
            if s.who in BUYERS:
                sent = await self.db.run(actions.send_from_buyer, self._buyer(s.who), out, now)
            else:
                async with self.db.read() as session:
                    me = await session.get(Agent, self.kit.agents[s.who])
                conv_id = await self.current(s.into or "")
                sent = await self.db.run(actions.send_from_agent, me, conv_id, out, now)
        except DomainError as exc:
            return ("refused", exc.code), None
        wire = message_public(sent.message)
        return ("ok", sent.conversation.id, sent.message.seq, sent.duplicate), wire

    def _outgoing(self, s: Send) -> actions.Outgoing:
        body = "" if s.kind != "text" else f"{s.who} says {s.cmid}"
        return actions.Outgoing(client_msg_id=s.cmid, body=body, kind=s.kind, payload=s.payload)

    def _buyer(self, who: str) -> actions.BuyerIdentity:
        facts = BUYERS[who]
        return actions.BuyerIdentity(
            shop_id=self.kit.shop_id,
            shop_slug=self.kit.slug,
            buyer_id=who,
            name=facts["name"],
            vip=facts["vip"],
            elder_mode=facts.get("elder_mode", False),
        )

    # ---- what the run left -----------------------------------------------------------
    async def stored(self) -> dict[str, Any]:
        """Everything the run wrote and told, with ids replaced by names."""
        async with self.db.read() as s:
            convs = list(
                (
                    await s.execute(
                        select(Conversation)
                        .where(col(Conversation.shop_id) == self.kit.shop_id)
                        .order_by(col(Conversation.buyer_id), col(Conversation.opened_at))
                    )
                ).scalars()
            )
            msgs = list(
                (
                    await s.execute(select(Message).where(col(Message.shop_id) == self.kit.shop_id))
                ).scalars()
            )
            counts = {}
            for table in SQLModel.metadata.sorted_tables:
                if "shop_id" in table.c:
                    counts[table.name] = (
                        await s.execute(
                            select(func.count())
                            .select_from(table)
                            .where(table.c.shop_id == self.kit.shop_id)
                        )
                    ).scalar_one()
        names: dict[str, str] = {self.kit.shop_id: "<shop>", self.kit.slug: "<slug>"}
        names.update({agent_id: f"<{name}>" for name, agent_id in self.kit.agents.items()})
        mine: dict[str, int] = {}
        for c in convs:
            mine[c.buyer_id] = mine.get(c.buyer_id, 0) + 1
            names[c.id] = f"{c.buyer_id}#{mine[c.buyer_id]}"
        for m in msgs:
            names[m.id] = f"<{names[m.conversation_id]}:{m.seq}>"

        def named(value: Any) -> Any:
            text = json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
            for raw, name in names.items():
                text = text.replace(raw, name)
            return json.loads(text)

        conversations = [named(c.model_dump(exclude={"shop_id"})) for c in convs]
        messages = sorted(
            (named(m.model_dump(exclude={"shop_id"})) for m in msgs),
            key=lambda m: (m["conversation_id"], m["seq"]),
        )
        return {
            "conversations": conversations,
            "messages": messages,
            "counts": counts,
            "outcomes": [named(list(o)) for o in self.outcomes],
            # Concurrent sends may be told in any order: compare what was told, as a multiset.
            "events": sorted(json.dumps(named(e), sort_keys=True) for e in self.events),
            "signals": sorted(json.dumps(named(s), sort_keys=True) for s in self.signals),
        }


def start_of(server: Any) -> datetime:
    """Now on the server's clock, in whole seconds (the runs compared start at the same time)."""
    return server.clock.now().replace(microsecond=0)


def outcome_of(row: list[Any]) -> str:
    """The table's notation for one send's outcome."""
    if row[0] == "refused":
        return f"refused {row[1]}"
    label = f"{row[1]}:{row[2]}"
    return f"dup {label}" if row[3] else label


async def run_case(
    server: Any, case: Case, *, fast: bool, t0: datetime | None = None
) -> tuple[Run, dict[str, Any]]:
    db = Database(server.ctx.db.url)
    try:
        kit = await make_shop(db, agents=AGENTS)
        run = Run(db, kit, fast, t0 or start_of(server))
        await run.go(case.steps)
        return run, await run.stored()
    finally:
        await db.dispose()


async def test_every_path_follows_the_append_rules(server, case: Case, path: str) -> None:
    t0 = start_of(server)
    run, got = await run_case(server, case, fast=path != "orm", t0=t0)
    assert [outcome_of(o) for o in got["outcomes"]] == list(case.outcomes), path
    # Each conversation's messages are numbered 1..last_seq without gaps (R1).
    for conv in got["conversations"]:
        seqs = [m["seq"] for m in got["messages"] if m["conversation_id"] == conv["id"]]
        assert seqs == list(range(1, conv["last_seq"] + 1)), (path, conv["id"])
    if path == "orm":
        return
    assert "".join(run.handled) == case.fast, f"{path} stored other sends than the table says"
    assert all(n <= 1 for n in run.batches), f"{path}: a step took {run.batches} batches"
    _, reference = await run_case(server, case, fast=False, t0=t0)
    for part in ("conversations", "messages", "counts", "outcomes", "events", "signals"):
        assert got[part] == reference[part], f"{path} and orm differ in {part}"


async def test_the_buyers_clock_moves_only_with_the_buyers_words(server, path: str) -> None:
    """R7, spelt out on one case (the comparison above checks it on every case)."""
    case = next(c for c in CASES if c.name.startswith("the serving agent replies"))
    t0 = start_of(server)
    _, got = await run_case(server, case, fast=path != "orm", t0=t0)
    (conv,) = got["conversations"]
    # b1's m2 was sent at step 3 (minutes from t0); the agent's a2 after it changed nothing.
    assert conv["last_buyer_message_at"] == str(t0 + timedelta(minutes=3))
    assert (conv["status"], conv["queue"], conv["last_seq"]) == ("assigned", "general", 4)
