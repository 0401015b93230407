"""Login throttles: per (account, address) and per address across usernames, exact under
concurrency, keyed on the real client behind trusted proxies (HOMING_FORWARDED_ALLOW_IPS).

Clients connect from addresses of their own in 127.0.0.0/8 (Linux routes all of it to
loopback), so these tests never share an address's count with the rest of the suite.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.support.factories import PASSWORD, make_shop
from tests.support.servers import NodeProcess

LOGIN = "/api/v1/auth/login"


def loopback_address() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"


def client_from(address: str, base_url: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30)


def test_address_throttle_and_proxy_settings():
    assert Settings().login_address_max_failures == 20
    assert Settings().forwarded_allow_ips == ""  # no proxy trusted unless listed
    listed = Settings(HOMING_FORWARDED_ALLOW_IPS=" 10.0.0.0/8, 127.0.0.1 ,::1")  # type: ignore[call-arg]
    assert listed.forwarded_allow_ips == "10.0.0.0/8,127.0.0.1,::1"
    assert Settings(HOMING_FORWARDED_ALLOW_IPS="10.0.0.1, *").forwarded_allow_ips == "*"  # type: ignore[call-arg]
    for bad in ("lb.internal", "10.0.0.1/8", "10.0.0.300"):
        with pytest.raises(ValidationError, match="HOMING_FORWARDED_ALLOW_IPS"):
            Settings(HOMING_FORWARDED_ALLOW_IPS=bad)  # type: ignore[call-arg]


async def test_one_address_guessing_at_names_is_throttled_but_not_the_agent_elsewhere(start_server):
    srv = await start_server(run_jobs=False, HOMING_LOGIN_ADDRESS_MAX_FAILURES="8")
    kit = await make_shop(srv.ctx.db)
    right = {"shop": kit.slug, "username": "agent1", "password": PASSWORD}
    async with (
        client_from(loopback_address(), srv.http) as attacker,
        client_from(loopback_address(), srv.http) as owner,
    ):
        # A wrong-password spree at agent1: the account is throttled from that address only.
        for i in range(6):
            r = await attacker.post(LOGIN, json={**right, "password": f"guess-{i}"})
            assert r.status_code == (401 if i < 5 else 429)
        assert (await owner.post(LOGIN, json=right)).status_code == 200
        # Then guesses at other names, each below its account's own limit, until the address is.
        for i in range(3):
            r = await attacker.post(LOGIN, json={**right, "username": f"name-{i}"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"
        for body in ({**right, "username": "name-9"}, {**right, "username": "admin"}):
            r = await attacker.post(LOGIN, json=body)
            assert r.status_code == 429
            assert r.json() == {
                "error": {
                    "code": "rate_limited",
                    "message": "Too many failed logins; wait a few minutes and try again.",
                }
            }
        # The agent, and everyone else, still log in from their own address.
        assert (await owner.post(LOGIN, json=right)).status_code == 200
        assert (await owner.post(LOGIN, json={**right, "username": "admin"})).status_code == 200
        # A window later the address may try again.
        srv.clock.advance(seconds=srv.settings.login_window_s + 1)
        assert (await attacker.post(LOGIN, json={**right, "username": "admin"})).status_code == 200


async def test_concurrent_guesses_at_names_never_pass_the_address_limit(start_server):
    srv = await start_server(run_jobs=False, HOMING_LOGIN_ADDRESS_MAX_FAILURES="8")
    kit = await make_shop(srv.ctx.db)
    async with client_from(loopback_address(), srv.http) as c:
        answers = await asyncio.gather(
            *(
                c.post(LOGIN, json={"shop": kit.slug, "username": f"name-{i}", "password": "x"})
                for i in range(30)
            )
        )
    assert Counter(r.status_code for r in answers) == {401: 8, 429: 22}


async def test_concurrent_guesses_at_one_account_never_pass_its_limit(start_server):
    srv = await start_server(run_jobs=False, HOMING_LOGIN_ADDRESS_MAX_FAILURES="8")
    kit = await make_shop(srv.ctx.db)
    async with client_from(loopback_address(), srv.http) as c:
        answers = await asyncio.gather(
            *(
                c.post(
                    LOGIN, json={"shop": kit.slug, "username": "agent1", "password": f"guess-{i}"}
                )
                for i in range(12)
            )
        )
        assert Counter(r.status_code for r in answers) == {401: 5, 429: 7}
    # Right passwords at once from one address are let in, and taken back from the count
    # (an attempt counts against the limits only while its password is being checked).
    async with client_from(loopback_address(), srv.http) as c:
        answers = await asyncio.gather(
            *(
                c.post(LOGIN, json={"shop": kit.slug, "username": name, "password": PASSWORD})
                for name in ("admin",) * 4 + ("agent1",) * 3
            )
        )
        assert [r.status_code for r in answers] == [200] * 7
        for i in range(9):
            r = await c.post(
                LOGIN, json={"shop": kit.slug, "username": f"name-{i}", "password": "x"}
            )
            assert r.status_code == (401 if i < 8 else 429)


async def _fail_five_then_login(
    node: NodeProcess, client_address: str, kit_slug: str, first: str, second: str
) -> tuple[int, int]:
    """Five wrong passwords forwarded for `first`, then the right one for `first` and `second`."""
    body = {"shop": kit_slug, "username": "agent1"}
    async with client_from(client_address, node.http) as c:
        for _ in range(5):
            r = await c.post(
                LOGIN, json={**body, "password": "wrong"}, headers={"X-Forwarded-For": first}
            )
            assert r.status_code == 401
        again = await c.post(
            LOGIN, json={**body, "password": PASSWORD}, headers={"X-Forwarded-For": first}
        )
        other = await c.post(
            LOGIN, json={**body, "password": PASSWORD}, headers={"X-Forwarded-For": second}
        )
    return again.status_code, other.status_code


async def test_forwarded_for_is_believed_only_from_listed_proxies(server, database_url):
    proxy = loopback_address()
    trusting = NodeProcess({"DATABASE_URL": database_url, "HOMING_FORWARDED_ALLOW_IPS": proxy})
    default = NodeProcess({"DATABASE_URL": database_url})
    try:
        await trusting.start()
        await default.start()
        # Through the listed proxy: each forwarded client has its own count.
        kit = await make_shop(server.ctx.db)
        assert await _fail_five_then_login(
            trusting, proxy, kit.slug, "203.0.113.7", "198.51.100.9"
        ) == (429, 200)
        # The same headers from an address not listed, or on a node that lists none, are
        # ignored: the throttle keys on the peer, whatever the header claims.
        for node, peer in (
            (trusting, loopback_address()),
            (default, proxy),
            (default, "127.0.0.1"),
        ):
            kit = await make_shop(server.ctx.db)
            assert await _fail_five_then_login(
                node, peer, kit.slug, "203.0.113.7", "198.51.100.9"
            ) == (429, 429)
    finally:
        trusting.stop()
        default.stop()
