"""Webhooks end to end: endpoints over HTTP (admin only, secret shown once, SSRF refused),
events written in the transaction of their change, signed deliveries verified with the
README's example, retries with the same id, order per object, dead letters and resend,
and two dispatchers at once on one database."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import event, text

from app.clock import Clock, FrozenClock
from app.db import Database
from app.webhooks import outbox, rules
from app.webhooks.sender import Sender, sender_for
from tests.conftest import buyer, online_agent
from tests.support.factories import login, make_shop
from tests.support.webhooks import (
    SECRET,
    Receiver,
    add_endpoint,
    attempts_of,
    cancel_pending,
    dispatch_settings,
    pump,
    readme_verify,
    shop_deliveries,
    shop_events,
)
from tests.test_payouts_support import Desk, open_desk

# --- pure rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fc00::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_which_addresses_are_refused(address, refused):
    assert rules.refused_address(address) is refused


@pytest.mark.parametrize(
    ("attempts", "failed_after_s", "retry_after_s"),
    [
        (1, 0, 10),
        (2, 10, 20),
        (3, 30, 40),
        (5, 150, 160),
        (12, 20470, 20480),
        (13, 40950, 40960),  # the last retry, 22.75 h in
        (14, 81910, None),  # the 14th failure's retry would fall past 24 h: dead
    ],
)
def test_retries_double_from_the_base_for_24_hours(attempts, failed_after_s, retry_after_s):
    start = datetime(2026, 12, 1, tzinfo=UTC)
    failed_at = start + timedelta(seconds=failed_after_s)
    got = rules.next_attempt(start, attempts, failed_at, 10.0)
    if retry_after_s is None:
        assert got is None
    else:
        assert got == failed_at + timedelta(seconds=retry_after_s)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://shop.example.com/hooks", True),
        ("http://shop.example.com:8080/x?y=1", True),
        ("ftp://shop.example.com/", False),
        ("file:///etc/passwd", False),
        ("https:///nohost", False),
        ("shop.example.com/hooks", False),
        ("http://shop.example.com:99999/", False),
    ],
)
def test_urls_must_be_http_with_a_host(url, ok):
    if ok:
        assert rules.url_host(url) == "shop.example.com"
    else:
        with pytest.raises(Exception, match="URL"):
            rules.url_host(url)


def test_the_signature_is_hmac_sha256_over_t_dot_body_and_the_readme_verifies_it():
    body = rules.body_of("evt_1", "payout.paid", datetime(2026, 1, 1, tzinfo=UTC), "s", {"a": 1})
    header = rules.signature("k" * 16, 1767225600, body)
    # Computed independently: printf '1767225600.<body>' | openssl dgst -sha256 -hmac kkkk...
    import hashlib
    import hmac

    expected = hmac.new(b"k" * 16, b"1767225600." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1767225600,v1={expected}"
    verify = readme_verify()
    now = int(datetime.now(UTC).timestamp())
    fresh = rules.signature("k" * 16, now, body)
    assert verify("k" * 16, fresh, body)
    assert not verify("k" * 16, fresh, body + b" ")
    assert not verify("x" * 16, fresh, body)
    assert not verify("k" * 16, header, body)  # too old: replay refused


@pytest.mark.parametrize(
    ("event", "key"),
    [
        (outbox.Event("payout.paid", {"id": "p1"}, "payout:p1"), "payout:p1"),
        (outbox.Event("aftersale.decided", {"id": "a1", "status": "approved"}), "aftersale:a1"),
        (outbox.Event("aftersale.requested", {"id": 7}), "aftersale:7"),
        (outbox.Event("recall.opted_out", {"buyer_id": "b"}), "evt_x"),  # nothing to order by
    ],
)
def test_events_are_ordered_by_their_object(event, key):
    assert event.order_key("evt_x") == key


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as c:
        yield c


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def desk(server, connect, http) -> AsyncIterator[Desk]:
    d = await open_desk(server, connect, http)
    yield d
    await cancel_pending(server.ctx.db, d.kit.shop_id)


# --- endpoints over HTTP ----------------------------------------------------------------


async def test_admin_manages_endpoints_and_the_secret_is_shown_once(server, shop, http):
    admin = {"Authorization": f"Bearer {await login(server.http, shop, 'admin')}"}
    agent = {"Authorization": f"Bearer {await login(server.http, shop, 'agent1')}"}
    body = {"url": "https://93.184.216.34/hooks", "secret": SECRET, "events": ["payout.paid"]}
    r = await http.post("/api/v1/webhooks", json=body, headers=agent)
    assert r.status_code == 403
    r = await http.post("/api/v1/webhooks", json=body, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"] == SECRET and created["secret_hint"] == "…" + SECRET[-4:]
    generated = await http.post(
        "/api/v1/webhooks",
        json={"url": "https://93.184.216.34/b", "events": ["coupon.issued", "payout.paid"]},
        headers=admin,
    )
    assert generated.status_code == 201
    assert generated.json()["secret"].startswith("whsec_")
    assert generated.json()["events"] == ["payout.paid", "coupon.issued"]
    listed = (await http.get("/api/v1/webhooks", headers=admin)).json()
    assert [e["id"] for e in listed] == [created["id"], generated.json()["id"]]
    assert SECRET not in json.dumps(listed) and generated.json()["secret"] not in json.dumps(listed)
    assert (await http.get("/api/v1/webhooks", headers=agent)).status_code == 403

    # Another shop's admin sees none of it.
    other = await make_shop(server.ctx.db)
    other_admin = {"Authorization": f"Bearer {await login(server.http, other, 'admin')}"}
    assert (await http.get("/api/v1/webhooks", headers=other_admin)).json() == []
    for method, path in (
        ("GET", f"/api/v1/webhooks/{created['id']}/deliveries"),
        ("DELETE", f"/api/v1/webhooks/{created['id']}"),
    ):
        assert (await http.request(method, path, headers=other_admin)).status_code == 404

    r = await http.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=admin)
    assert r.status_code == 200 and r.json() == []
    assert (
        await http.delete(f"/api/v1/webhooks/{created['id']}", headers=admin)
    ).status_code == 204
    listed = (await http.get("/api/v1/webhooks", headers=admin)).json()
    assert [e["id"] for e in listed] == [generated.json()["id"]]

    bad = await http.post(
        "/api/v1/webhooks",
        json={"url": "https://93.184.216.34/", "events": ["order.shipped"]},
        headers=admin,
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_event"
    short = await http.post(
        "/api/v1/webhooks",
        json={"url": "https://93.184.216.34/", "secret": "short", "events": ["payout.paid"]},
        headers=admin,
    )
    assert short.status_code == 422 and short.json()["error"]["code"] == "bad_secret"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:8080/hooks", "private_address"),
        ("http://localhost/hooks", "private_address"),
        ("http://10.0.0.5/hooks", "private_address"),
        ("http://169.254.169.254/latest/meta-data", "private_address"),
        ("http://[::1]/hooks", "private_address"),
        ("http://[::ffff:192.168.0.1]/hooks", "private_address"),
        ("http://0x7f000001/hooks", "private_address"),  # 127.0.0.1 spelled as a number
        ("ftp://93.184.216.34/hooks", "bad_url"),
        ("gopher://93.184.216.34/", "bad_url"),
        ("http://no-such-host.invalid/hooks", "unresolvable_host"),
    ],
)
async def test_endpoints_on_private_addresses_are_refused(server, shop, http, url, code):
    admin = {"Authorization": f"Bearer {await login(server.http, shop, 'admin')}"}
    r = await http.post(
        "/api/v1/webhooks", json={"url": url, "events": ["payout.paid"]}, headers=admin
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert (await http.get("/api/v1/webhooks", headers=admin)).json() == []


async def test_the_guard_is_asked_again_at_send_time(server, desk, receiver):
    """An endpoint accepted while private addresses were allowed (or whose name has moved
    to one since) is not sent to once they are not: the attempt says why."""
    db = server.ctx.db
    await add_endpoint(db, desk.kit.shop_id, receiver.url, ["payout.paid"])
    await desk.order("o-ssrf", 10000)
    assert (await desk.pay(500, order_id="o-ssrf")).status_code == 201
    strict = dispatch_settings(server.settings, webhook_allow_private=False)
    sender = Sender()
    await sender.dispatch(db, Clock(), strict)
    (delivery,) = await shop_deliveries(db, desk.kit.shop_id)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.last_error is not None and delivery.last_error.startswith("private_address")
    assert receiver.received == []


# --- the outbox ---------------------------------------------------------------------------


async def test_a_paid_payout_is_delivered_signed_with_its_event_id(server, desk, receiver, http):
    db = server.ctx.db
    endpoint_id = await add_endpoint(
        db, desk.kit.shop_id, receiver.url, ["payout.paid", "payout.rejected"]
    )
    await desk.order("o-1", 10000)
    r = await desk.pay(1200, order_id="o-1")
    assert r.status_code == 201 and r.json()["status"] == "paid"
    payout_id = r.json()["id"]
    await desk.set_limits("agent1", per_payout=1000)
    pending = (await desk.pay(3000, order_id="o-1")).json()
    assert pending["status"] == "pending_approval"
    assert (await desk.decide(pending["id"], "reject")).status_code == 200

    await pump(db, dispatch_settings(server.settings), lambda: len(receiver.delivered()) == 2)
    paid, rejected = (r.event for r in receiver.delivered())
    assert all(r.verified for r in receiver.received)
    assert paid["type"] == "payout.paid" and rejected["type"] == "payout.rejected"
    assert paid["shop"] == desk.kit.slug and paid["id"].startswith("evt_")
    assert paid["data"]["id"] == payout_id and paid["data"]["amount_cents"] == 1200
    assert paid["data"]["order_id"] == "o-1" and paid["data"]["status"] == "paid"
    assert rejected["data"]["id"] == pending["id"] and rejected["data"]["status"] == "rejected"
    assert set(paid) == {"id", "type", "created_at", "shop", "data"}

    admin = desk.auth("admin")
    listed = (await http.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=admin)).json()
    assert [d["type"] for d in listed] == ["payout.rejected", "payout.paid"]  # newest first
    assert all(d["status"] == "delivered" and d["history"][0]["status_code"] == 200 for d in listed)


async def test_a_rolled_back_change_emits_nothing(server, desk, receiver):
    db: Database = server.ctx.db
    await add_endpoint(db, desk.kit.shop_id, receiver.url, list(rules.EVENT_TYPES))

    class Refused(Exception):
        pass

    async def change_then_fail(uow):
        await outbox.record(
            uow, desk.kit.shop_id, "payout.paid", {"x": 1}, now=Clock().now(), about="payout:x"
        )
        raise Refused

    with pytest.raises(Refused):
        await db.run(change_then_fail)
    # A real refusal too: the order cannot take this payout, so nothing is paid or told.
    await desk.order("o-small", 1000)
    r = await desk.pay(1500, order_id="o-small")
    assert r.status_code == 409
    assert await shop_events(db, desk.kit.shop_id) == []
    assert await shop_deliveries(db, desk.kit.shop_id) == []


async def test_a_receiver_failing_five_times_gets_the_same_event_once_more(server, desk, receiver):
    db = server.ctx.db
    receiver.script = [500] * 5
    await add_endpoint(db, desk.kit.shop_id, receiver.url, ["payout.paid"])
    await desk.order("o-2", 10000)
    assert (await desk.pay(800, order_id="o-2")).status_code == 201
    app_sender = sender_for(db)  # the app's own dispatcher: /metrics reports it
    before = dict(app_sender.tallies.attempts)
    await pump(
        db,
        dispatch_settings(server.settings),
        lambda: bool(receiver.delivered()),
        sender=app_sender,
    )
    assert [r.status for r in receiver.received] == [500] * 5 + [200]
    assert len({r.event["id"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1  # the very same bytes
    assert all(r.verified for r in receiver.received)
    (delivery,) = await shop_deliveries(db, desk.kit.shop_id)
    assert delivery.status == "delivered" and delivery.attempts == 6
    history = await attempts_of(db, delivery.id)
    assert [a.status_code for a in history] == [500] * 5 + [200]
    # Each retry waited at least twice as long as the one before (base 0.05 s).
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(history)]
    assert all(gap >= 0.05 * 2**i for i, gap in enumerate(gaps))
    after = app_sender.tallies.attempts
    assert after["delivered"] - before["delivered"] == 1
    assert after["failed"] - before["failed"] == 5
    async with httpx.AsyncClient(base_url=server.http) as c:
        exposition = (await c.get("/metrics")).text
    assert f'homing_webhook_attempts_total{{outcome="delivered"}} {after["delivered"]}' in (
        exposition.replace(".0\n", "\n")
    )


async def test_after_24_hours_of_failures_a_delivery_is_dead_and_an_admin_resends_it(
    server, desk, receiver, http
):
    db = server.ctx.db
    endpoint_id = await add_endpoint(db, desk.kit.shop_id, receiver.url, ["payout.paid"])
    await desk.order("o-3", 10000)
    assert (await desk.pay(700, order_id="o-3")).status_code == 201
    receiver.script = [503] * 5
    settings = dispatch_settings(server.settings, webhook_retry_base_s=3600)
    await pump(db, settings, lambda: len(receiver.received) == 1)

    class Later(Clock):
        def __init__(self, hours: float) -> None:
            self.shift = timedelta(hours=hours)

        def now(self) -> datetime:
            return datetime.now(UTC) + self.shift

    (delivery,) = await shop_deliveries(db, desk.kit.shop_id)
    # Hour after hour of failures (the receiver's clock is not ours: skip its check here).
    for hours in (1.01, 3.02, 7.03, 15.04):
        await Sender().dispatch(db, Later(hours), settings)
    (delivery,) = await shop_deliveries(db, desk.kit.shop_id)
    assert delivery.status == "dead", (delivery.status, delivery.attempts)
    assert delivery.attempts == 5  # at 0, 1 h, 3 h, 7 h, 15 h; the next would be at 31 h

    admin = desk.auth("admin")
    agent = desk.auth("agent1")
    path = f"/api/v1/webhooks/deliveries/{delivery.id}/resend"
    assert (await http.post(path, headers=agent)).status_code == 403
    r = await http.post(path, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    await pump(db, settings, lambda: bool(receiver.delivered()))
    ids = {r.event["id"] for r in receiver.received}
    assert len(ids) == 1 and receiver.delivered()[-1].verified
    listed = (await http.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=admin)).json()
    assert listed[0]["status"] == "delivered" and listed[0]["attempts"] == 6
    assert [a["status_code"] for a in listed[0]["history"]] == [503] * 5 + [200]
    # Another shop cannot resend it.
    other = await make_shop(db)
    other_admin = {"Authorization": f"Bearer {await login(server.http, other, 'admin')}"}
    assert (await http.post(path, headers=other_admin)).status_code == 404


async def test_deleting_an_endpoint_cancels_what_it_had_pending(server, desk, receiver, http):
    db = server.ctx.db
    endpoint_id = await add_endpoint(db, desk.kit.shop_id, receiver.url, ["payout.paid"])
    await desk.order("o-4", 10000)
    assert (await desk.pay(300, order_id="o-4")).status_code == 201
    r = await http.delete(f"/api/v1/webhooks/{endpoint_id}", headers=desk.auth("admin"))
    assert r.status_code == 204
    (delivery,) = await shop_deliveries(db, desk.kit.shop_id)
    assert delivery.status == "cancelled"
    assert await Sender().dispatch(db, Clock(), dispatch_settings(server.settings)) >= 0
    assert receiver.received == []


# --- events of the domains --------------------------------------------------------------


async def test_closing_and_rating_arrive_in_order_through_sockets(server, connect, receiver):
    """`conversation.closed` when the agent closes, again with the rating when the buyer
    rates: the second waits while the first is still being retried."""
    db = server.ctx.db
    kit = await make_shop(db)
    await add_endpoint(db, kit.shop_id, receiver.url, ["conversation.closed"])
    receiver.script = [500, 500]
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect, "b-rate")
    await b.send({"type": "message.send", "client_msg_id": "m1", "body": "在吗"})
    conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
    await agent.expect("conversation.assigned")
    await agent.send({"type": "conversation.close", "conversation_id": conv_id})
    await b.expect("conversation.closed")
    await b.send({"type": "csat.submit", "conversation_id": conv_id, "score": 4, "comment": "好"})
    await b.expect("csat.received")
    try:
        await pump(db, dispatch_settings(server.settings), lambda: len(receiver.delivered()) == 2)
    finally:
        await cancel_pending(db, kit.shop_id)
    statuses = [(r.event["data"]["rating"] is not None, r.status) for r in receiver.received]
    # The rated event was never sent before the close was delivered.
    assert statuses == [(False, 500), (False, 500), (False, 200), (True, 200)]
    closed, rated = (r.event for r in receiver.delivered())
    assert closed["data"]["conversation_id"] == conv_id == rated["data"]["conversation_id"]
    assert closed["data"]["reason"] == "agent" and closed["data"]["rating"] is None
    assert rated["data"]["rating"]["score"] == 4 and rated["data"]["rating"]["comment"] == "好"


async def test_two_dispatchers_never_send_one_delivery_twice_at_once(
    server, database_url, receiver
):
    """Two dispatchers, each with its own engine (on SQLite: its own connections to the
    file; on PostgreSQL: its own pool), claim from one backlog at the same time."""
    db = server.ctx.db
    kit = await make_shop(db)
    await add_endpoint(db, kit.shop_id, receiver.url, ["recall.opted_out"])
    receiver.delay_s = 0.05

    async def opt_outs(uow):
        now = Clock().now()
        for i in range(60):
            await outbox.record(
                uow, kit.shop_id, "recall.opted_out", {"buyer_id": f"b{i}"}, now=now, about=f"b{i}"
            )

    await db.run(opt_outs)
    settings = dispatch_settings(server.settings, webhook_concurrency=4)
    other = Database(settings.async_database_url)
    try:
        async with other.read() as s:  # connected before the race starts
            await s.execute(text("SELECT 1"))
        a, b = Sender(), Sender()
        done = lambda: len(receiver.delivered()) >= 60
        await asyncio.gather(
            pump(db, settings, done, sender=a), pump(other, settings, done, sender=b)
        )
    finally:
        await other.dispose()
        await cancel_pending(db, kit.shop_id)
    assert receiver.overlaps == 0
    assert Counter(receiver.ids().values()) == {1: 60}  # every event exactly once
    made = (a.tallies.attempts["delivered"], b.tallies.attempts["delivered"])
    assert sum(made) == 60 and min(made) > 0, made  # both really took part
    assert all(d.status == "delivered" for d in await shop_deliveries(db, kit.shop_id))


async def test_a_poll_with_nothing_due_takes_no_writers_turn(server, desk, receiver):
    """Every dispatcher polls each second, and almost always nothing is due: such a poll is
    one read, with no write transaction (SQLite's one writer's turn) and no row locks. A
    due delivery is still found and sent."""
    db = server.ctx.db
    await add_endpoint(db, desk.kit.shop_id, receiver.url, ["payout.paid"])
    await desk.order("o-quiet", 10000)
    assert (await desk.pay(700, order_id="o-quiet")).status_code == 201
    settings = dispatch_settings(server.settings)
    sender = Sender()
    seen: list[tuple[object, str]] = []

    def record(conn, _cursor, statement, *_args):
        if "webhook" in statement.lower():
            seen.append((conn.engine, statement))

    engines = {db.engine.sync_engine, db.write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        # Long before anything was due (the delivery's first attempt is due now).
        assert (
            await sender.dispatch(db, FrozenClock(datetime(2000, 1, 1, tzinfo=UTC)), settings) == 0
        )
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    assert len(seen) == 1, seen
    engine, statement = seen[0]
    assert engine is db.engine.sync_engine  # the readers' engine (SQLite: no BEGIN IMMEDIATE)
    assert statement.lstrip().upper().startswith("SELECT") and "FOR UPDATE" not in statement.upper()
    assert receiver.received == []
    await pump(db, settings, lambda: len(receiver.delivered()) == 1, sender=sender)


async def test_a_hanging_receiver_times_out_while_the_chat_goes_on(server, desk, receiver):
    """The dispatcher waits on a receiver that never answers; meanwhile the chat's messages
    are committed and acked as usual, and the attempt ends as a timeout, to be retried."""
    db = server.ctx.db
    await add_endpoint(db, desk.kit.shop_id, receiver.url, ["payout.paid"])
    await desk.order("o-hang", 10000)
    assert (await desk.pay(400, order_id="o-hang")).status_code == 201
    receiver.hold = asyncio.Event()
    settings = dispatch_settings(server.settings, webhook_timeout_s=4.0, webhook_retry_base_s=60)
    sending = asyncio.create_task(Sender().dispatch(db, Clock(), settings))
    try:
        async with asyncio.timeout(20):  # the dispatcher reaches the receiver
            while not receiver.arrived:
                await asyncio.sleep(0.01)
        for i in range(3):
            msg = await desk.buyer_says(body=f"还在吗 {i}")
            assert msg["seq"] >= 2
        assert not sending.done()  # the chat did not wait for the receiver
        assert await sending == 1
    finally:
        receiver.hold.set()
    (delivery,) = await shop_deliveries(db, desk.kit.shop_id)
    assert delivery.status == "pending" and delivery.last_error == "timeout"
    assert delivery.last_status_code is None and delivery.attempts == 1
