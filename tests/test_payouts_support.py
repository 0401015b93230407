"""Helpers for the orders and payouts tests (no tests here): a shop with a chat in progress,
orders from the storefront, payout requests over HTTP."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import httpx
from argon2 import PasswordHasher
from sqlalchemy import func, select, update

from app.orders.models import Order
from app.payouts import service as payout_service
from app.payouts.models import PayoutDailyTotal, PayoutFund, PayoutLedgerEntry
from app.shops.models import Agent, AgentSession
from app.shops.security import new_token, token_hash
from tests.conftest import buyer, online_agent
from tests.support.client import WSClient
from tests.support.factories import ShopKit, make_shop

# Supervisors without queues, so buyers (elders too) are routed to agent1 only.
DESK_AGENTS = (
    ("agent1", "agent", ("general", "elderly")),
    ("sup", "supervisor", ()),
    ("sup2", "supervisor", ()),
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# Argon2 with the cheapest parameters: these tests are about money, not password strength,
# and the default cost (a third of a second a hash here) would dominate their run time.
# Verification reads the parameters from the hash, so logins work unchanged.
_cheap_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash


async def make_desk_shop(db: Any) -> ShopKit:
    with mock.patch("app.shops.actions.hash_password", _cheap_hash):
        return await make_shop(db, agents=DESK_AGENTS)


@dataclass
class Desk:
    """A shop whose agent1 is serving one buyer's conversation."""

    kit: ShopKit
    http: httpx.AsyncClient
    buyer_id: str
    buyer_token: str
    conversation_id: str
    buyer_ws: WSClient
    agent_ws: WSClient
    tokens: dict[str, str] = field(default_factory=dict)  # username -> agent token
    db: Any = None

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    @property
    def api_key(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.kit.api_key}"}

    async def order(
        self,
        order_id: str,
        amount_cents: int,
        *,
        buyer_id: str | None = None,
        status: str = "paid",
        ship_by: datetime | None = None,
    ) -> httpx.Response:
        return await post_order(
            self.http,
            self.kit,
            order_id,
            buyer_id or self.buyer_id,
            amount_cents,
            status=status,
            ship_by=ship_by,
        )

    async def pay(
        self,
        amount_cents: int,
        *,
        order_id: str | None,
        reason: str = "goodwill",
        username: str = "agent1",
        key: str | None = None,
        conversation_id: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "conversation_id": conversation_id or self.conversation_id,
            "amount_cents": amount_cents,
            "reason": reason,
            **extra,
        }
        if order_id is not None:
            body["order_id"] = order_id
        headers = {**self.auth(username), "Idempotency-Key": key or secrets.token_hex(8)}
        return await self.http.post("/api/v1/payouts", json=body, headers=headers)

    async def decide(
        self, payout_id: str, verb: str, username: str = "sup", **body: Any
    ) -> httpx.Response:
        return await self.http.post(
            f"/api/v1/payouts/{payout_id}/{verb}", json=body or None, headers=self.auth(username)
        )

    async def topup(self, amount_cents: int, username: str = "admin") -> httpx.Response:
        return await self.http.post(
            "/api/v1/payouts/fund/topup",
            json={"amount_cents": amount_cents},
            headers=self.auth(username),
        )

    async def fund(self) -> int:
        r = await self.http.get("/api/v1/payouts/fund", headers=self.auth("agent1"))
        r.raise_for_status()
        return int(r.json()["balance_cents"])

    async def payouts(self, username: str = "sup", **params: str) -> list[dict[str, Any]]:
        r = await self.http.get("/api/v1/payouts", params=params, headers=self.auth(username))
        r.raise_for_status()
        return list(r.json())

    async def ledger(self, **params: str) -> list[dict[str, Any]]:
        r = await self.http.get("/api/v1/payouts/ledger", params=params, headers=self.auth("admin"))
        r.raise_for_status()
        return list(r.json())

    async def panel(self, buyer_id: str | None = None, **params: str) -> list[dict[str, Any]]:
        r = await self.http.get(
            f"/api/v1/buyers/{buyer_id or self.buyer_id}/orders",
            params=params,
            headers=self.auth("agent1"),
        )
        r.raise_for_status()
        return list(r.json())

    async def buyer_says(
        self, kind: str = "text", body: str = "", payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "message.send",
            "client_msg_id": secrets.token_hex(6),
            "body": body,
            "kind": kind,
        }
        if payload is not None:
            frame["payload"] = payload
        await self.buyer_ws.send(frame)
        ack = await self.buyer_ws.expect(
            "message.ack", lambda f: f["client_msg_id"] == frame["client_msg_id"]
        )
        return dict(ack["message"])

    async def buyer_sends_photo(self) -> dict[str, Any]:
        r = await self.http.post(
            "/api/v1/uploads",
            files={"file": ("broken.png", PNG, "image/png")},
            headers={"Authorization": f"Bearer {self.buyer_token}"},
        )
        assert r.status_code == 201, r.text
        return await self.buyer_says("image", "碎了", {"upload_id": r.json()["upload_id"]})

    async def set_limits(
        self, username: str, *, per_payout: int | None = None, daily: int | None = None
    ) -> None:
        values = {
            k: v
            for k, v in (("payout_limit_cents", per_payout), ("payout_daily_cents", daily))
            if v is not None
        }

        async def change(uow: Any) -> None:
            await uow.session.execute(
                update(Agent).where(Agent.id == self.kit.agents[username]).values(**values)
            )

        await self.db.run(change)


async def sessions_for(db: Any, kit: ShopKit) -> dict[str, str]:
    """A session token for every agent of the shop, as a login would make (one login over
    HTTP is enough to prove logins work; the rest would only cost time)."""
    now = datetime.now(UTC)

    async def create(uow: Any) -> dict[str, str]:
        rows = await uow.session.execute(
            select(Agent.id, Agent.username).where(Agent.shop_id == kit.shop_id)
        )
        tokens = {}
        for agent_id, username in rows:
            kit.agents[username] = agent_id
            tokens[username] = new_token()
            uow.session.add(
                AgentSession(
                    token_hash=token_hash(tokens[username]),
                    agent_id=agent_id,
                    created_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
        return tokens

    return await db.run(create)  # type: ignore[no-any-return]


async def post_order(
    http: httpx.AsyncClient,
    kit: ShopKit,
    order_id: str,
    buyer_id: str,
    amount_cents: int,
    *,
    status: str = "paid",
    ship_by: datetime | None = None,
    created_at: datetime | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {
        "order_id": order_id,
        "buyer_id": buyer_id,
        "amount_cents": amount_cents,
        "status": status,
        "category": "家居",
        "created_at": (created_at or datetime.now(UTC)).isoformat(),
    }
    if ship_by is not None:
        body["ship_by"] = ship_by.isoformat()
    return await http.post(
        "/api/v1/orders", json=body, headers={"Authorization": f"Bearer {kit.api_key}"}
    )


async def open_desk(
    server: Any,
    connect: Any,
    http: httpx.AsyncClient,
    *,
    fund_cents: int = 1_000_000,
    **buyer_claims: Any,
) -> Desk:
    """A fresh shop; agent1 online and serving a new buyer's conversation; the fund topped up."""
    kit = await make_desk_shop(server.ctx.db)
    tokens = await sessions_for(server.ctx.db, kit)
    agent_ws = await online_agent(server, kit, "agent1", connect)
    buyer_id = f"buyer-{secrets.token_hex(4)}"
    buyer_token = kit.buyer_token(buyer_id, **buyer_claims)
    buyer_ws = await buyer(server, kit, connect, buyer_id, **buyer_claims)
    await buyer_ws.send(
        {"type": "message.send", "client_msg_id": "hello", "body": "快递盒子压坏了"}
    )
    ack = await buyer_ws.expect("message.ack")
    conv_id = ack["message"]["conversation_id"]
    await agent_ws.expect("conversation.assigned", lambda f: f["conversation"]["id"] == conv_id)
    desk = Desk(
        kit, http, buyer_id, buyer_token, conv_id, buyer_ws, agent_ws, tokens, db=server.ctx.db
    )
    if fund_cents:
        r = await desk.topup(fund_cents)
        assert r.status_code == 200, r.text
    return desk


def paid_total(payouts: list[dict[str, Any]]) -> int:
    return sum(p["amount_cents"] for p in payouts if p["status"] == "paid")


async def assert_ledger_reconciles(desk: Desk) -> dict[str, int]:
    """Every total the shop reports agrees with the ledger's `paid` lines; returns paid per agent.

    Per requesting agent: the ledger, GET /payouts and the metrics. Per order: the ledger, the
    payouts and the order's own counter. Per authorising agent: the daily counters. And
    the fund: top-ups less payouts is the balance. A payout the platform paid without an
    agent (automatic 价保) is under the agent None and counts against no daily total.
    """
    paid_lines = await desk.ledger(entry="paid")
    by_agent: dict[str, int] = {}
    by_order: dict[str, int] = {}
    by_authoriser: dict[str, int] = {}
    for e in paid_lines:
        by_agent[e["agent_id"]] = by_agent.get(e["agent_id"], 0) + e["amount_cents"]
        by_order[e["order_id"]] = by_order.get(e["order_id"], 0) + e["amount_cents"]
        if e["actor_kind"] == "agent":
            by_authoriser[e["actor_id"]] = by_authoriser.get(e["actor_id"], 0) + e["amount_cents"]
        else:
            assert (e["actor_kind"], e["actor_id"], e["agent_id"]) == ("platform", None, None)
    payouts = [p for p in await desk.payouts("admin", status="paid")]
    assert len(payouts) == len(paid_lines) == len({e["payout_id"] for e in paid_lines})
    assert {p["id"] for p in payouts} == {e["payout_id"] for e in paid_lines}
    for agent_id, total in by_agent.items():
        if agent_id is None:
            continue  # GET /payouts filters by an agent only
        assert paid_total(await desk.payouts("admin", agent_id=agent_id)) == total
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    async with desk.db.read() as s:
        assert await payout_service.paid_cents_by_agent(s, desk.kit.shop_id, start, end) == by_agent
        orders = dict(
            (
                await s.execute(
                    select(Order.order_id, Order.paid_out_cents).where(
                        Order.shop_id == desk.kit.shop_id
                    )
                )
            ).all()
        )
        daily = await s.execute(
            select(PayoutDailyTotal.agent_id, PayoutDailyTotal.paid_cents).where(
                PayoutDailyTotal.shop_id == desk.kit.shop_id
            )
        )
        by_day_counter: dict[str, int] = {}
        for agent_id, cents in daily:
            by_day_counter[agent_id] = by_day_counter.get(agent_id, 0) + cents
        balance = await s.scalar(
            select(PayoutFund.balance_cents).where(PayoutFund.shop_id == desk.kit.shop_id)
        )
        topups = await s.scalar(
            select(func.coalesce(func.sum(PayoutLedgerEntry.amount_cents), 0)).where(
                PayoutLedgerEntry.shop_id == desk.kit.shop_id,
                PayoutLedgerEntry.entry == "fund_topup",
            )
        )
    assert {o: c for o, c in orders.items() if c} == by_order
    for order_id, total in by_order.items():
        assert paid_total(await desk.payouts("admin", order_id=order_id)) == total
    assert {a: c for a, c in by_day_counter.items() if c} == by_authoriser
    assert balance == topups - sum(by_agent.values())
    return by_agent
