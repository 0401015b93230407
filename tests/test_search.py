"""Search through a real server: Chinese 1-, 2- and 3+-character queries, filters, cursor
pages, escaped highlights, and who finds what (an agent only conversations they served)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.search import rules
from tests.conftest import online_agent
from tests.support.desk import DESK_AGENTS, api, chat
from tests.support.factories import make_shop


@pytest.mark.parametrize(
    ("body", "q", "html"),
    [
        ("请问什么时候发货?", "什么时候", "请问<mark>什么时候</mark>发货?"),
        ("<b>发货</b>&地址", "发货", "&lt;b&gt;<mark>发货</mark>&lt;/b&gt;&amp;地址"),
        ("发发发", "发", "<mark>发</mark><mark>发</mark><mark>发</mark>"),
        ("Order ABC shipped", "abc", "Order <mark>ABC</mark> shipped"),
        ("a<mark>b", "<mark>", "a<mark>&lt;mark&gt;</mark>b"),
        (
            "啊" * 100 + "发货" + "哦" * 200,
            "发货",
            "…" + "啊" * 30 + "<mark>发货</mark>" + "哦" * 128 + "…",
        ),
    ],
)
def test_highlight_escapes_and_marks(body: str, q: str, html: str) -> None:
    assert rules.highlight(body, q) == html


@pytest.mark.parametrize(
    ("q", "pattern", "phrase", "indexed"),
    [
        ("发", "%发%", '"发"', False),
        ("发货", "%发货%", '"发货"', False),
        ("什么时候", "%什么时候%", '"什么时候"', True),
        ('50%_"折', '%50\\%\\_"折%', '"50%_""折"', True),
    ],
)
def test_query_forms(q: str, pattern: str, phrase: str, indexed: bool) -> None:
    assert rules.like_pattern(q) == pattern
    assert rules.fts_phrase(q) == phrase
    assert rules.uses_index(q) is indexed


def test_cursor_round_trip_and_garbage() -> None:
    at = datetime(2026, 12, 2, 8, 0, 1, 5, tzinfo=UTC)
    assert rules.decode_cursor(rules.encode_cursor(at, "m1")) == (at, "m1")
    for bad in ("", "!!", "bm9wZQ", rules.encode_cursor(at, "x" * 40)):
        with pytest.raises(rules.BadInput):
            rules.decode_cursor(bad)


@pytest.fixture(scope="module")
async def desk(server):
    """agent1 served sb-1 (two conversations' worth of 发货), agent2 served sb-2."""
    from tests.support.client import WSClient

    kit = await make_shop(server.ctx.db, agents=DESK_AGENTS)
    sockets: list[WSClient] = []

    async def connect(url: str) -> WSClient:
        c = await WSClient.connect(url)
        sockets.append(c)
        return c

    admin = await api(server, kit, "admin")
    await admin.post("/api/v1/tags", json={"name": "物流"})
    ws1 = await online_agent(server, kit, "agent1", connect)
    conv1, _ = await chat(
        server,
        kit,
        connect,
        ws1,
        "sb-1",
        ["请问什么时候发货?", "<b>发货</b>&地址"],
        ["今天发货,包邮的", "顺丰包邮的", "都是包邮的"],
    )
    a1 = await api(server, kit, "agent1")
    await a1.put(f"/api/v1/conversations/{conv1}/tags", json={"tags": ["物流"]})
    await ws1.send({"type": "agent.status", "status": "busy"})
    await ws1.expect("agent.status")
    ws2 = await online_agent(server, kit, "agent2", connect)
    conv2, _ = await chat(server, kit, connect, ws2, "sb-2", ["发货地址写错了"], ["好的"])
    clients = {"agent1": a1, "admin": admin}
    for u in ("agent2", "sup"):
        clients[u] = await api(server, kit, u)
    yield {"kit": kit, "conv1": conv1, "conv2": conv2, **clients}
    for c in clients.values():
        await c.aclose()
    for s in sockets:
        await s.close()


async def _search(client, **params):
    r = await client.get("/api/v1/search/messages", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_two_character_query_finds_only_what_the_agent_served(desk):
    mine = await _search(desk["agent1"], q="发货")
    assert {h["conversation_id"] for h in mine["hits"]} == {desk["conv1"]}
    assert len(mine["hits"]) == 3 and mine["indexed"] is False and mine["next_cursor"] is None
    theirs = await _search(desk["agent2"], q="发货")
    assert [h["conversation_id"] for h in theirs["hits"]] == [desk["conv2"]]
    everyone = await _search(desk["sup"], q="发货")
    assert len(everyone["hits"]) == 4
    times = [h["created_at"] for h in everyone["hits"]]
    assert times == sorted(times, reverse=True)  # newest first
    # agent2 cannot reach agent1's conversation through the filters either.
    assert (await _search(desk["agent2"], q="发货", buyer_id="sb-1"))["hits"] == []


async def test_one_and_three_plus_character_queries(desk):
    one = await _search(desk["sup"], q="发")
    assert len(one["hits"]) == 4 and one["indexed"] is False
    three = await _search(desk["agent1"], q="什么时候")
    assert three["indexed"] is True
    [hit] = three["hits"]
    assert hit["highlight"] == "请问<mark>什么时候</mark>发货?"
    assert hit["conversation_id"] == desk["conv1"] and hit["seq"] == 1
    assert hit["buyer_id"] == "sb-1" and hit["agent_name"] == "agent1 客服"
    assert hit["tags"] == ["物流"]
    assert (await _search(desk["agent2"], q="什么时候"))["hits"] == []
    assert (await _search(desk["sup"], q="没有这句话"))["hits"] == []


async def test_highlight_is_escaped_html(desk):
    hits = (await _search(desk["agent1"], q="发货"))["hits"]
    [tricky] = [h for h in hits if h["seq"] == 2]
    assert tricky["highlight"] == "&lt;b&gt;<mark>发货</mark>&lt;/b&gt;&amp;地址"
    assert tricky["sender"] == "buyer"


async def test_filters(desk):
    sup = desk["sup"]
    kit = desk["kit"]
    only_b2 = await _search(sup, q="发货", buyer_id="sb-2")
    assert [h["conversation_id"] for h in only_b2["hits"]] == [desk["conv2"]]
    by_agent = await _search(sup, q="发货", agent_id=kit.agents["agent1"])
    assert {h["conversation_id"] for h in by_agent["hits"]} == {desk["conv1"]}
    tagged = await _search(sup, q="发货", tag="物流")
    assert {h["conversation_id"] for h in tagged["hits"]} == {desk["conv1"]}
    assert (await _search(sup, q="包邮的", tag="无此标签"))["hits"] == []
    assert len((await _search(sup, q="发货", queue="general"))["hits"]) == 4
    assert (await _search(sup, q="发货", queue="elderly"))["hits"] == []
    assert (await _search(sup, q="发货", to="2020-01-01T00:00:00+00:00"))["hits"] == []
    assert len((await _search(sup, q="发货", **{"from": "2020-01-01T00:00:00Z"}))["hits"]) == 4


async def test_cursor_pages_newest_first(desk):
    seen = []
    for q in ("包邮的", "发货"):  # the index path, then the scan path
        cursor, ids = None, []
        while True:
            params = {"q": q, "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = await _search(desk["sup"], **params)
            ids += [h["message_id"] for h in page["hits"]]
            seen += [h["created_at"] for h in page["hits"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        everything = await _search(desk["sup"], q=q)
        assert ids == [h["message_id"] for h in everything["hits"]] and len(set(ids)) == len(ids)
    assert len(seen) == 3 + 4
    r = await desk["sup"].get("/api/v1/search/messages", params={"q": "发货", "cursor": "nope"})
    assert r.status_code == 422


async def test_short_queries_scan_within_a_budget_and_say_so(desk, monkeypatch):
    monkeypatch.setattr(rules, "SCAN_BUDGET", 3)
    hits, pages, cursor = [], [], None
    while True:
        page = await _search(desk["sup"], q="发", **({"cursor": cursor} if cursor else {}))
        pages.append(page)
        hits += page["hits"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert any(p["partial"] for p in pages) and len(hits) == 4


async def test_bad_queries_and_buyers_are_refused(desk, server):
    r = await desk["sup"].get("/api/v1/search/messages", params={"q": "   "})
    assert r.status_code == 422
    r = await desk["sup"].get("/api/v1/search/messages", params={"q": "发" * 101})
    assert r.status_code == 422
    token = desk["kit"].buyer_token("sb-1")
    import httpx

    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.get(
            "/api/v1/search/messages",
            params={"q": "发货"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code in (401, 403)


async def test_the_text_index_serves_chinese_queries(desk, server, backend):
    """PostgreSQL: the pg_trgm GIN index can serve ILIKE for a 3-character Chinese query
    (sequential scans off, so the plan shows whether the index applies at all; the bench
    shows the planner's own choice at 1,000,000 messages). SQLite: FTS5 answers MATCH."""
    from sqlalchemy import text

    async with server.ctx.db.engine.connect() as conn:
        if backend == "postgres":
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            rows = await conn.execute(
                text("EXPLAIN SELECT id FROM messages WHERE body ILIKE '%什么时候%'")
            )
            plan = "\n".join(r[0] for r in rows)
            assert "ix_messages_body_trgm" in plan, plan
        else:
            rows = await conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT messages.id FROM messages_fts "
                    "JOIN messages ON messages.rowid = messages_fts.rowid "
                    "WHERE messages_fts MATCH '\"什么时候\"' ORDER BY messages_fts.rowid DESC"
                )
            )
            plan = "\n".join(str(r[-1]) for r in rows)
            assert "VIRTUAL TABLE INDEX" in plan and "ORDER BY" not in plan, plan
            found = await conn.execute(
                text("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH '\"什么时候\"'")
            )
            assert found.scalar() >= 1  # the module's desk wrote it through the group commit


async def test_the_conversations_an_agent_wrote_in_come_from_agents_messages_only(
    desk, server, backend
):
    """Search's reach (`_served`) reads the partial index that holds agents' messages only
    (migration 0024; a buyer's message costs it nothing), and the whole-table index it
    replaced is gone. Sequential scans are off on PostgreSQL so the plan shows whether
    the index applies at all."""
    from sqlalchemy import select, text

    from app.search.service import _served
    from app.shops.models import Agent

    async with server.ctx.db.engine.connect() as conn:
        agent = (
            await conn.execute(
                select(Agent).where(
                    Agent.shop_id == desk["kit"].shop_id, Agent.username == "agent1"
                )
            )
        ).one()
        # As the app runs it: the agent's ids as parameters.
        compiled = _served(agent).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        params = tuple(compiled.params[k] for k in compiled.positiontup or ())
        if backend == "postgres":
            # The generic plan of a prepared statement, which knows no parameter's value.
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            await conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
            await conn.exec_driver_sql("PREPARE served AS " + str(compiled))
            values = ", ".join("'" + str(v).replace("'", "''") + "'" for v in params)
            rows = await conn.exec_driver_sql(f"EXPLAIN EXECUTE served({values})")
            plan = "\n".join(r[0] for r in rows)
            await conn.exec_driver_sql("DEALLOCATE served")
            names = "SELECT indexname FROM pg_indexes WHERE tablename = 'messages'"
        else:
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)
            plan = "\n".join(str(r[-1]) for r in rows)
            names = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'"
        assert "ix_messages_agent_wrote" in plan, plan
        indexes = {r[0] for r in await conn.execute(text(names))}
        assert "ix_messages_agent_wrote" in indexes and "ix_messages_shop_sender" not in indexes
        await conn.rollback()


async def test_every_stored_message_is_in_the_text_index(desk, server, backend):
    """Each append path indexes what it stores in the same transaction (SQLite: the group
    commit indexes its batch in one statement while the row trigger stands aside, the
    full path through the trigger, migration 0021): every message of 3+ characters the
    desk wrote is found by its own text through the index, and SQLite's FTS table agrees
    with `messages` row for row, with no hold row left behind."""
    from sqlalchemy import text

    async with server.ctx.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT id, body FROM messages WHERE shop_id = :s AND kind <> 'note'"),
                {"s": desk["kit"].shop_id},
            )
        ).all()
        assert len(rows) >= 7  # both buyers' lines and the agents' answers
        for message_id, body in rows:
            if len(body) < 3:
                continue
            if backend == "postgres":
                sql = "SELECT id FROM messages WHERE body ILIKE :p ESCAPE '\\'"
                params = {"p": rules.like_pattern(body)}
            else:
                sql = (
                    "SELECT messages.id FROM messages_fts JOIN messages "
                    "ON messages.rowid = messages_fts.rowid WHERE messages_fts MATCH :q"
                )
                params = {"q": rules.fts_phrase(body)}
            found = {r[0] for r in await conn.execute(text(sql), params)}
            assert message_id in found, body
        if backend == "sqlite":
            # 'integrity-check' with rank 1 compares the index against the content table.
            await conn.execute(
                text("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
            )
            total = (await conn.execute(text("SELECT count(*) FROM messages"))).scalar()
            indexed = (await conn.execute(text("SELECT count(*) FROM messages_fts"))).scalar()
            assert indexed == total
            held = (await conn.execute(text("SELECT count(*) FROM messages_fts_hold"))).scalar()
            assert held == 0
