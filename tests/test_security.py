"""Browser hardening: CSRF on cookie state changes, cookie sockets from our own origin only,
no token in pages or logs, security headers, Secure cookies off loopback."""

from __future__ import annotations

import json
import re
import secrets

import httpx
import pytest
import websockets

from app.config import Settings
from app.security import mask_secrets
from tests.support.client import WSClient
from tests.support.factories import PASSWORD, make_shop
from tests.support.servers import NodeProcess
from tests.support.words import zh

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def cookie_login(c: httpx.AsyncClient, kit, username: str = "admin") -> dict:
    r = await c.post(
        "/api/v1/auth/login", json={"shop": kit.slug, "username": username, "password": PASSWORD}
    )
    assert r.status_code == 200 and "homing_session" in c.cookies
    return r.json()


async def test_cookie_authenticated_state_changes_need_the_csrf_token(server):
    kit = await make_shop(server.ctx.db)
    async with httpx.AsyncClient(base_url=server.http) as c:
        login = await cookie_login(c, kit)
        csrf = {"X-CSRF-Token": login["csrf_token"]}
        async with httpx.AsyncClient(base_url=server.http) as elsewhere:
            other_session = {"X-CSRF-Token": (await cookie_login(elsewhere, kit))["csrf_token"]}
        # What another site's form or script could make the browser send: the cookie alone
        # (or with a token that is not this session's).
        for headers in ({}, {"X-CSRF-Token": "guess"}, other_session):
            forged = [
                await c.post(
                    "/api/v1/agents", json={"username": "evil", "password": "x"}, headers=headers
                ),
                await c.patch(
                    f"/api/v1/agents/{kit.agents['agent1']}",
                    json={"display_name": "pwned"},
                    headers=headers,
                ),
                await c.post(
                    "/api/v1/uploads", files={"file": ("p.png", PNG, "image/png")}, headers=headers
                ),
                await c.post(
                    "/api/v1/payouts/fund/topup", json={"amount_cents": 1}, headers=headers
                ),
                await c.post("/api/v1/auth/logout", headers=headers),
            ]
            for r in forged:
                assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed", (
                    r.request.url
                )
            page = [
                await c.post("/logout", data={}, headers=headers),
                await c.post(
                    "/console/agents",
                    data={"username": "evil2", "password": "x"},
                    headers={**headers, "HX-Request": "true"},
                ),
            ]
            assert [r.status_code for r in page] == [403, 403]
            assert page[0].text == zh("This page is out of date; reload it and try again.")
        # Nothing happened, and the session lives on.
        assert (await c.get("/api/v1/me")).status_code == 200
        names = {a["username"] for a in (await c.get("/api/v1/agents")).json()}
        assert not names & {"evil", "evil2", "pwned"}
        assert (await c.get("/api/v1/payouts/fund")).json()["balance_cents"] == 0

        # With the session's token, the same requests go through.
        r = await c.post("/api/v1/agents", json={"username": "fine", "password": "x"}, headers=csrf)
        assert r.status_code == 201
        r = await c.post(
            "/console/agents",
            data={"username": "fine2", "password": "x"},
            headers={**csrf, "HX-Request": "true"},
        )
        assert r.status_code == 200
        # A bearer token needs no CSRF token (no browser sends one by itself).
        bearer = {"Authorization": f"Bearer {login['token']}"}
        async with httpx.AsyncClient(base_url=server.http) as api:
            r = await api.post(
                "/api/v1/agents", json={"username": "fine3", "password": "x"}, headers=bearer
            )
            assert r.status_code == 201
        # The logout form sends it as a field.
        r = await c.post("/logout", data={"csrf_token": login["csrf_token"]})
        assert r.status_code == 303
        c.cookies.clear()
        assert (await c.get("/api/v1/me", headers=bearer)).status_code == 401


async def test_the_workbench_page_carries_no_session_token(server):
    kit = await make_shop(server.ctx.db)
    async with httpx.AsyncClient(base_url=server.http) as c:
        login = await cookie_login(c, kit, "agent1")
        html = (await c.get("/workbench")).text
    assert login["token"] not in html
    boot = json.loads(
        re.search(
            r'<script type="application/json" id="boot">(.*?)</script>', html, re.DOTALL
        ).group(1)
    )
    assert "token" not in boot
    assert f'<meta name="csrf-token" content="{login["csrf_token"]}">' in html


async def hello_or_close_code(url: str, **kwargs) -> str | int:
    async with websockets.connect(url, **kwargs) as ws:
        try:
            return str(json.loads(await ws.recv())["type"])
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else -1


async def test_agent_socket_by_cookie_only_from_a_page_of_this_server(server):
    kit = await make_shop(server.ctx.db)
    async with httpx.AsyncClient(base_url=server.http) as c:
        token = (await cookie_login(c, kit, "agent1"))["token"]
    cookie = {"Cookie": f"homing_session={token}"}
    url = f"{server.ws}/ws/agent"
    assert await hello_or_close_code(url, additional_headers=cookie, origin=server.http) == "hello"
    # Another site's page (cross-site WebSocket hijacking), or no Origin at all: refused.
    assert (
        await hello_or_close_code(url, additional_headers=cookie, origin="http://evil.example")
        == 4401
    )
    assert (
        await hello_or_close_code(
            url, additional_headers=cookie, origin=server.http.replace("127.0.0.1", "localhost")
        )
        == 4401
    )
    assert await hello_or_close_code(url, additional_headers=cookie) == 4401
    # Behind a proxy that rewrites Host, the page's host comes as X-Forwarded-Host.
    proxied = {**cookie, "X-Forwarded-Host": "desk.example.com"}
    assert (
        await hello_or_close_code(
            url, additional_headers=proxied, origin="https://desk.example.com"
        )
        == "hello"
    )
    assert (
        await hello_or_close_code(url, additional_headers=proxied, origin="https://evil.example")
        == 4401
    )
    # API clients keep `?token=` (PROTOCOL.md), from anywhere.
    assert await hello_or_close_code(f"{url}?token={token}") == "hello"
    assert (
        await hello_or_close_code(f"{url}?token={token}", origin="http://elsewhere.example")
        == "hello"
    )


PAGES = ("/", "/login", "/workbench", "/console", "/demo/shop")


async def test_an_open_socket_keeps_no_copy_of_its_credentials(server, connect):
    """The token (query string) and cookie (headers) are read by the opening; the scope
    uvicorn and the WebSocket keep for the socket's life lets them go."""
    kit = await make_shop(server.ctx.db)
    async with httpx.AsyncClient(base_url=server.http) as c:
        session = (await cookie_login(c, kit, "agent1"))["token"]
    token = kit.buyer_token()
    b = await connect(f"{server.ws}/ws/buyer?token={token}")
    await b.expect("hello")
    async with websockets.connect(
        f"{server.ws}/ws/agent",
        additional_headers={"Cookie": f"homing_session={session}"},
        origin=server.http,
    ) as agent:
        assert json.loads(await agent.recv())["type"] == "hello"
        scopes = [
            p.scope
            for p in server.server.server_state.connections
            if getattr(p, "scope", {}).get("path") in ("/ws/buyer", "/ws/agent")
        ]
        assert {s["path"] for s in scopes} == {"/ws/buyer", "/ws/agent"}
        for scope in scopes:
            assert not scope["headers"] and not scope["query_string"]
        assert token.encode() not in repr(scopes).encode()


async def test_every_page_has_csp_and_no_framing(server, start_server):
    kit = await make_shop(server.ctx.db)
    # Demo mode, so /demo/shop exists; htmx from its CDN, then from static/vendor.
    cdn = await start_server(run_jobs=False, HOMING_DEMO="true")
    local = await start_server(run_jobs=False, HOMING_HTMX_LOCAL="true", HOMING_DEMO="true")
    for srv, scripts in (
        (cdn, "script-src 'self' https://unpkg.com;"),
        (local, "script-src 'self';"),
    ):
        async with httpx.AsyncClient(base_url=srv.http) as c:
            await cookie_login(c, kit)
            for path in PAGES:
                r = await c.get(path)
                assert r.headers["content-type"].startswith("text/html"), path
                csp = r.headers["content-security-policy"]
                assert scripts in csp and "frame-ancestors 'none'" in csp, (path, csp)
                assert "default-src 'self'" in csp and "style-src 'self';" in csp
                assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
                assert r.headers["x-frame-options"] == "DENY"
                assert r.headers["x-content-type-options"] == "nosniff"
                assert r.headers["referrer-policy"] == "same-origin"
                # Nothing inline for the policy to block: no inline script, handler or style.
                assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", r.text), (
                    path
                )
                assert not re.search(r"\son[a-z]+=|\sstyle=", r.text), path
            # The widget's files and the API: no CSP (they run in the shop's page), still nosniff.
            for path in (
                "/static/widget.js",
                "/static/widget.css",
                "/static/homing.js",
                "/api/v1/me",
            ):
                r = await c.get(path)
                assert r.status_code == 200 and "content-security-policy" not in r.headers, path
                assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("host", "env", "secure"),
    [
        ("127.0.0.1", None, False),
        ("127.8.0.1", None, False),
        ("localhost", None, False),
        ("::1", None, False),
        ("[::1]", None, False),
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("192.168.1.20", None, True),
        ("homing.example.com", None, True),
        ("0.0.0.0", "false", False),
        ("127.0.0.1", "true", True),
    ],
)
def test_cookies_are_secure_unless_served_on_loopback(host, env, secure):
    settings = Settings(
        DATABASE_URL="sqlite:///x.db", **({"HOMING_COOKIE_SECURE": env} if env else {})
    )
    assert settings.for_host(host).cookie_secure is secure


async def test_homing_serve_off_loopback_sets_secure_cookies(database_url, server):
    kit = await make_shop(server.ctx.db)
    node = NodeProcess({"DATABASE_URL": database_url}, host="0.0.0.0")
    try:
        await node.start()
        async with httpx.AsyncClient(base_url=node.http) as c:
            r = await c.post(
                "/api/v1/auth/login",
                json={"shop": kit.slug, "username": "admin", "password": PASSWORD},
            )
        assert r.status_code == 200
        assert "secure" in r.headers["set-cookie"].lower().split("; ")
    finally:
        node.stop()


def test_log_masking_covers_every_token_parameter():
    line = '127.0.0.1:5 - "GET /ws/buyer?lang=en&token=eyJ.a.b&ticket=t1 HTTP/1.1" 101 /x?TOKEN=abc'
    assert (
        mask_secrets(line)
        == '127.0.0.1:5 - "GET /ws/buyer?lang=en&token=***&ticket=*** HTTP/1.1" 101 /x?TOKEN=***'
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_credential_reaches_the_servers_log(database_url, server, log_format):
    """A whole session against a real `homing serve` logging at info (access lines on),
    in either log format (HOMING_LOG_FORMAT)."""
    kit = await make_shop(server.ctx.db)
    node = NodeProcess(
        {"DATABASE_URL": database_url, "HOMING_LOG_FORMAT": log_format}, log_level="info"
    )
    jwt = kit.buyer_token(f"logged-{secrets.token_hex(3)}")
    try:
        await node.start()
        async with httpx.AsyncClient(base_url=node.http) as c:
            r = await c.post(
                "/api/v1/auth/login",
                json={"shop": kit.slug, "username": "admin", "password": PASSWORD},
            )
            assert "secure" not in r.headers["set-cookie"].lower().split(
                "; "
            )  # loopback: plain HTTP works
            login = r.json()
            session = login["token"]
            assert (await c.get("/workbench")).status_code == 200
            # The workbench's socket (cookie), an API client's (?token=), the widget's (?token=JWT).
            cookie = {"Cookie": f"homing_session={session}"}
            assert (
                await hello_or_close_code(
                    f"{node.ws}/ws/agent", additional_headers=cookie, origin=node.http
                )
                == "hello"
            )
            assert await hello_or_close_code(f"{node.ws}/ws/agent?token={session}") == "hello"
            b = await WSClient.connect(f"{node.ws}/ws/buyer?token={jwt}")
            try:
                await b.expect("hello")
                await b.send({"type": "message.send", "client_msg_id": "m1", "body": "在吗"})
                await b.expect("message.ack")
            finally:
                await b.close()
            # An upload and the widget's <img> of it (?token=JWT), an order by API key.
            up = await c.post(
                "/api/v1/uploads",
                files={"file": ("p.png", PNG, "image/png")},
                headers={"Authorization": f"Bearer {jwt}"},
            )
            assert up.status_code == 201
            img = await c.get(f"/api/v1/uploads/{up.json()['upload_id']}", params={"token": jwt})
            assert img.status_code == 200
            order = await c.post(
                "/api/v1/orders",
                headers={"Authorization": f"Bearer {kit.api_key}"},
                json={
                    "order_id": "O-log",
                    "buyer_id": "b",
                    "amount_cents": 100,
                    "status": "paid",
                    "created_at": "2026-01-01T00:00:00+00:00",
                },
            )
            assert order.status_code == 201, order.text
            r = await c.post("/api/v1/auth/logout", headers={"X-CSRF-Token": login["csrf_token"]})
            assert r.status_code == 200
    finally:
        node.stop()
    raw = node.log.read_text()
    # JSON: every line an object; its messages are what the text format would have shown.
    log = (
        raw
        if log_format == "text"
        else "\n".join(json.loads(line)["message"] for line in raw.splitlines())
    )
    # The lines are there (so the check below means something), masked.
    assert '"GET /workbench HTTP/1.1" 200' in log
    assert "/ws/buyer?token=***" in log and "/ws/agent?token=***" in log
    assert "/api/v1/uploads/" in log and "?token=***" in log
    for secret in (session, jwt, kit.api_key, login["csrf_token"], kit.buyer_secret):
        assert secret not in raw
