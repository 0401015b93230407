"""Service metrics: the rules by tables of cases, then the API over stored and live conversations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.chat.models import Conversation, Message, Rating
from app.errors import BadInput
from app.metrics.rules import (
    ConversationScore,
    Metrics,
    Said,
    Tally,
    resolve_period,
    score_conversation,
    summarize,
)
from app.orders.models import Order
from app.payouts.models import Payout
from tests.conftest import buyer, online_agent
from tests.support.factories import login, make_shop
from tests.support.passwords import cheap_password_hashing  # noqa: F401  (fixture)

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, the shops' default zone
DAY_START = -10 * 3600  # 2026-03-02 00:00 in Shanghai, in seconds from T0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def said(*pairs: tuple[str, float]) -> list[Said]:
    return [Said(sender, at(s)) for sender, s in pairs]


B, A = "buyer", "agent"

# (case, assigned_at seconds or None, messages in seq order, (judged, answered, first response s))
SCORE_CASES = [
    ("never assigned", None, [(B, 0)], (0, 0, None)),
    ("no messages", 0, [], (0, 0, None)),
    ("answered at exactly 180 s", 0, [(B, 0), (A, 180)], (1, 1, 180.0)),
    ("answered at 181 s is too late", 0, [(B, 0), (A, 181)], (1, 0, 181.0)),
    ("never answered", 0, [(B, 0)], (1, 0, None)),
    ("a later question left unanswered", 0, [(B, 0), (A, 10), (B, 20)], (2, 1, 10.0)),
    (
        "each of several questions is judged by the one reply",
        0,
        [(B, 0), (B, 60), (B, 100), (A, 200)],
        (3, 2, 200.0),
    ),
    ("the next reply judges, not a later one", 0, [(B, 0), (A, 200), (A, 210)], (1, 0, 200.0)),
    (
        "questions asked in the queue are judged from the assignment, as is the first response",
        50,
        [(B, 0), (B, 10), (A, 80)],
        (2, 2, 30.0),
    ),
    ("a single question answered 0.2 s after assignment", 50, [(B, 0), (A, 50.2)], (1, 1, 0.2)),
    ("asked in the queue, answered 181 s after assignment", 50, [(B, 0), (A, 231)], (1, 0, 181.0)),
    ("asked in the queue and never answered", 50, [(B, 0)], (1, 0, None)),
    ("a question at the moment of assignment is judged", 0, [(B, 0), (A, 30)], (1, 1, 30.0)),
    (
        "first response counts from the buyer's first words after assignment",
        0,
        [(B, 20), (A, 50)],
        (1, 1, 30.0),
    ),
    (
        "a greeting before the buyer speaks is a 0 s first response",
        0,
        [(A, 5), (B, 10), (A, 20)],
        (1, 1, 0.0),
    ),
    (
        "system notices are neither questions nor replies",
        0,
        [(B, 0), ("system", 10), (A, 100)],
        (1, 1, 100.0),
    ),
    (
        "a previous agent's words before the assignment are not this agent's",
        100,
        [(B, 0), (A, 50), (B, 120), (A, 200)],
        (1, 1, 100.0),
    ),
    ("fractions of a second are kept", 0, [(B, 0), (A, 0.5)], (1, 1, 0.5)),
]


@pytest.mark.parametrize(
    ("assigned", "messages", "expected"),
    [c[1:] for c in SCORE_CASES],
    ids=[c[0] for c in SCORE_CASES],
)
def test_score_conversation(assigned, messages, expected):
    assigned_at = None if assigned is None else at(assigned)
    assert score_conversation(assigned_at, said(*messages)) == ConversationScore(*expected)


# (case, [(score, rating)], payouts, expected Metrics)
SUMMARY_CASES = [
    ("nothing handled", [], 0, Metrics(None, None, None, None, 0, 0)),
    (
        "handled but nothing to judge or rate",
        [((0, 0, None), None)],
        700,
        Metrics(None, None, None, None, 1, 700),
    ),
    (
        "rates round to 4 decimals, seconds to 1",
        [((3, 2, 10.0), 5), ((0, 0, 20.0), 3), ((0, 0, 25.0), 1)],
        0,
        Metrics(0.6667, 18.3, 0.3333, 0.3333, 3, 0),
    ),
    (
        "4 and 5 satisfy, 1 and 2 dissatisfy, 3 is neither",
        [((1, 1, 1.0), s) for s in (5, 4, 3, 2, 1)],
        0,
        Metrics(1.0, 1.0, 0.4, 0.4, 5, 0),
    ),
    (
        "conversations without a reply are left out of the average",
        [((1, 0, None), None), ((1, 1, 40.0), None)],
        0,
        Metrics(0.5, 40.0, None, None, 2, 0),
    ),
]


@pytest.mark.parametrize(
    ("rows", "payouts", "expected"),
    [c[1:] for c in SUMMARY_CASES],
    ids=[c[0] for c in SUMMARY_CASES],
)
def test_summarize(rows, payouts, expected):
    tally = Tally()
    for score, rating in rows:
        tally.add(ConversationScore(*score), rating)
    assert summarize(tally, payouts) == expected


SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


PERIOD_CASES = [
    ("default: the last 7 days", None, None, (NOW - timedelta(days=7), NOW)),
    (
        "a date is its whole day in the shop's zone",
        "2026-05-01",
        "2026-05-01",
        (utc("2026-04-30T16:00:00Z"), utc("2026-05-01T16:00:00Z")),
    ),
    (
        "datetimes with offsets as given, `to` exclusive",
        "2026-05-01T08:00:00+00:00",
        "2026-05-02T00:00:00Z",
        (utc("2026-05-01T08:00:00Z"), utc("2026-05-02T00:00:00Z")),
    ),
    (
        "a datetime without offset is in the shop's zone; no `to` is now",
        "2026-05-01T08:00:00",
        "",
        (utc("2026-05-01T00:00:00Z"), NOW),
    ),
    (
        "only `to`: the 7 days before it",
        None,
        "2026-05-03",
        (utc("2026-04-26T16:00:00Z"), utc("2026-05-03T16:00:00Z")),
    ),
]


@pytest.mark.parametrize(
    ("start", "end", "expected"), [c[1:] for c in PERIOD_CASES], ids=[c[0] for c in PERIOD_CASES]
)
def test_resolve_period(start, end, expected):
    assert resolve_period(start, end, now=NOW, tz=SHANGHAI) == expected


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("yesterday", None),
        ("2026-13-01", None),
        (None, "2026-05-01T25:00"),
        ("2026-05-02", "2026-05-01"),
        ("2026-05-01T10:00Z", "2026-05-01T10:00Z"),
        ("2025-01-01", "2026-05-01"),
        ("2026-05-11", None),
    ],
)
def test_bad_periods_are_refused(start, end):
    with pytest.raises(BadInput) as err:
        resolve_period(start, end, now=NOW, tz=SHANGHAI)
    assert err.value.code == "bad_period" and err.value.status == 422


# ---- end to end -----------------------------------------------------------------------------

STAFF = (
    ("a1", "agent", ("general",)),
    ("a2", "agent", ("general",)),
    ("sup", "supervisor", ("general",)),
)


async def store_history(db, kit, rival) -> None:
    """Conversations, messages, ratings and payouts with explicit times around 2026-03-02 (Shanghai)."""
    a1, a2, sup = (kit.agents[u] for u in ("a1", "a2", "sup"))

    async def build(uow):
        s = uow.session

        def conv(shop_id, agent_id, opened, assigned, messages, score=None):
            # Closed, with the counters the chat keeps, so no job of the shared server
            # (auto-close, requeue, dispatch) touches them while the test reads.
            c = Conversation(
                shop_id=shop_id,
                buyer_id=f"b-{opened}",
                agent_id=agent_id,
                status="closed",
                opened_at=at(opened),
                queued_at=at(opened),
                assigned_at=None if assigned is None else at(assigned),
                closed_at=at(max(t for _, t in messages) + 1),
                close_reason="agent",
                last_seq=len(messages),
                last_buyer_message_at=at(max(t for who, t in messages if who == B)),
            )
            s.add(c)
            for seq, (sender, t) in enumerate(messages, start=1):
                s.add(
                    Message(
                        shop_id=shop_id,
                        conversation_id=c.id,
                        seq=seq,
                        sender=sender,
                        sender_id=agent_id if sender == A else c.buyer_id,
                        body="…",
                        created_at=at(t),
                    )
                )
            if score is not None:
                s.add(
                    Rating(
                        conversation_id=c.id,
                        shop_id=shop_id,
                        buyer_id=c.buyer_id,
                        agent_id=agent_id,
                        score=score,
                        created_at=at(opened + 900),
                    )
                )
            return c

        c1 = conv(
            kit.shop_id,
            a1,
            0,
            10,
            [(B, 0), (A, 40), (B, 100), (A, 280), (B, 300), (A, 481)],
            score=5,
        )
        conv(
            kit.shop_id,
            a1,
            1000,
            1000,
            [(B, 1000), (B, 1010), (A, 1100), ("system", 1200)],
            score=2,
        )
        conv(kit.shop_id, a2, 2000, 2005, [(B, 2000), (B, 2010)])
        conv(kit.shop_id, sup, 3000, 3000, [(B, 3000), (A, 3060)], score=4)
        # Not counted: opened the day before (Shanghai), left before anyone took it, another shop's.
        conv(
            kit.shop_id, a1, DAY_START - 1, DAY_START, [(B, DAY_START), (A, DAY_START + 5)], score=1
        )
        conv(kit.shop_id, None, 4000, None, [(B, 4000)])
        conv(rival.shop_id, rival.agents["a1"], 500, 500, [(B, 500), (A, 501)], score=5)
        await s.flush()
        s.add(
            Order(
                shop_id=kit.shop_id,
                order_id="o-1",
                buyer_id=c1.buyer_id,
                amount_cents=100000,
                status="paid",
                created_at=at(-86400),
                received_at=at(-86400),
                updated_at=at(-86400),
            )
        )
        await s.flush()
        for n, (agent_id, cents, status, paid) in enumerate(
            [
                (a1, 1500, "paid", 500),
                (a1, 700, "paid", 5000),
                (sup, 800, "paid", 3500),
                (a1, 9900, "pending_approval", None),
                (a1, 300, "paid", DAY_START - 1),
            ]
        ):
            s.add(
                Payout(
                    shop_id=kit.shop_id,
                    idempotency_key=f"k{n}",
                    request_hash="h",
                    conversation_id=c1.id,
                    order_id="o-1",
                    buyer_id=c1.buyer_id,
                    agent_id=agent_id,
                    amount_cents=cents,
                    reason="goodwill",
                    status=status,
                    created_at=at(paid or 0),
                    paid_at=None if paid is None else at(paid),
                )
            )

    await db.run(build)


def api(server, token: str | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.http, headers={"Authorization": f"Bearer {token}"} if token else {}
    )


@pytest.mark.usefixtures("cheap_password_hashing")
async def test_metrics_of_stored_conversations(server):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    rival = await make_shop(server.ctx.db, agents=(("a1", "agent", ("general",)),))
    await store_history(server.ctx.db, kit, rival)
    day = {"from": "2026-03-02", "to": "2026-03-02"}
    async with api(server, await login(server.http, kit, "sup")) as c:
        r = await c.get("/api/v1/metrics/agents", params=day)
        assert r.status_code == 200, r.text
        rows = {row["agent_id"]: row for row in r.json()}
        # Only the desk's people, in the order they joined; the admin is not measured.
        assert [row["username"] for row in r.json()] == ["a1", "a2", "sup"]
        metric = (
            "reply_3min_rate",
            "avg_first_response_s",
            "satisfaction_rate",
            "dissatisfaction_rate",
            "handled",
            "payouts_cents",
        )
        numbers = {
            kit_name: tuple(rows[agent_id][k] for k in metric)
            for kit_name, agent_id in kit.agents.items()
        }
        # a1: c1's opening question at 0 (in the queue; judged from the assignment at 10,
        # answered at 40), questions at 100 (answered at 280: 180 s) and 300 (481: 181 s),
        # both of c2's (1000, 1010 → 1100); first responses 30 s (from assignment) and 100 s.
        assert numbers["a1"] == (0.8, 65.0, 0.5, 0.5, 2, 2200)
        # a2: two questions, one asked before the assignment at 2005, neither answered.
        assert numbers["a2"] == (0.0, None, None, None, 1, 0)
        assert numbers["sup"] == (1.0, 60.0, 1.0, 0.0, 1, 800)

        r = await c.get("/api/v1/metrics/shop", params=day)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "from": "2026-03-01T16:00:00+00:00",
            "to": "2026-03-02T16:00:00+00:00",
            "reply_3min_rate": 0.625,
            "avg_first_response_s": 63.3,
            "satisfaction_rate": 0.6667,
            "dissatisfaction_rate": 0.3333,
            "handled": 4,
            "payouts_cents": 3000,
            "qa_score": None,
            "qa_reviews": 0,
        }
        # The same day as datetimes; then a period before any of it.
        same = await c.get(
            "/api/v1/metrics/shop",
            params={"from": "2026-03-02T00:00:00+08:00", "to": "2026-03-03T00:00:00+08:00"},
        )
        assert same.json() == r.json()
        empty = (
            await c.get("/api/v1/metrics/agents", params={"from": "2026-01-01", "to": "2026-01-31"})
        ).json()
        assert {row["handled"] for row in empty} == {0} and {
            row["reply_3min_rate"] for row in empty
        } == {None}
        for bad in (
            {"from": "last week"},
            {"from": "2026-03-03", "to": "2026-03-01"},
            {"to": "2026-02-30"},
        ):
            r = await c.get("/api/v1/metrics/agents", params=bad)
            assert r.status_code == 422 and r.json()["error"]["code"] == "bad_period", bad
    async with api(server, await login(server.http, kit, "admin")) as c:
        assert (await c.get("/api/v1/metrics/shop", params=day)).json()["handled"] == 4
        default = await c.get("/api/v1/metrics/agents")  # the last 7 days: none of March's work
        assert default.status_code == 200 and {row["handled"] for row in default.json()} == {0}
    async with api(server, await login(server.http, kit, "a1")) as c:
        for url in ("/api/v1/metrics/agents", "/api/v1/metrics/shop"):
            r = await c.get(url, params=day)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    async with api(server, None) as c:
        assert (await c.get("/api/v1/metrics/agents")).status_code == 401
        assert (await c.get("/api/v1/metrics/shop")).status_code == 401
    async with api(server, await login(server.http, rival, "admin")) as c:
        rival_rows = (await c.get("/api/v1/metrics/agents", params=day)).json()
        assert [(row["username"], row["handled"]) for row in rival_rows] == [("a1", 1)]
        assert (await c.get("/api/v1/metrics/shop", params=day)).json()["handled"] == 1


@pytest.mark.usefixtures("cheap_password_hashing")
async def test_metrics_of_a_live_chat_with_a_moving_clock(start_server, connect):
    """Over real sockets: times come from the server's clock, which the test moves."""
    srv = await start_server(run_jobs=False)  # no sweeps: only the moves below age anything
    kit = await make_shop(srv.ctx.db, agents=(("a1", "agent", ("general",)),))
    started = srv.clock.now()
    agent = await online_agent(srv, kit, "a1", connect)
    b = await buyer(srv, kit, connect, "live-buyer")

    async def buyer_says(text):
        await b.send({"type": "message.send", "client_msg_id": text, "body": text})
        return (await b.expect("message.ack"))["message"]

    async def agent_says(conv_id, text):
        await agent.send(
            {
                "type": "message.send",
                "conversation_id": conv_id,
                "client_msg_id": text,
                "body": text,
            }
        )
        return (await agent.expect("message.ack"))["message"]

    conv_id = (await buyer_says("在吗"))["conversation_id"]  # sent before the assignment
    await agent.expect("conversation.assigned")
    srv.clock.advance(seconds=100)
    await agent_says(conv_id, "您好")  # first response ≈ 100 s; answers the opening question
    await buyer_says("什么时候发货")
    srv.clock.advance(seconds=200)
    await agent_says(conv_id, "明天")  # 200 s: too late
    await buyer_says("能快点吗")
    srv.clock.advance(seconds=170)
    await agent_says(conv_id, "尽量")  # 170 s: in time
    await agent.send({"type": "conversation.close", "conversation_id": conv_id})
    await b.expect("conversation.closed")
    await b.send({"type": "csat.submit", "conversation_id": conv_id, "score": 4})
    await b.expect("csat.received")

    period = {
        "from": (started - timedelta(minutes=1)).isoformat(),
        "to": (srv.clock.now() + timedelta(minutes=1)).isoformat(),
    }
    async with api(srv, await login(srv.http, kit, "admin")) as c:
        [row] = (await c.get("/api/v1/metrics/agents", params=period)).json()
    assert row["agent_id"] == kit.agents["a1"] and row["handled"] == 1
    assert (
        # 在吗 (answered at ≈100 s of the assignment), 什么时候发货 (200 s: late), 能快点吗 (170 s).
        row["reply_3min_rate"] == 0.6667
        and row["satisfaction_rate"] == 1.0
        and row["dissatisfaction_rate"] == 0.0
    )
    assert 100 <= row["avg_first_response_s"] < 110
