"""The typed API (issue 15): schemathesis drives every operation of `/openapi.json` against a
real `homing serve` process with real credentials, and every answer must be below 500 and
match what the schema declares for its status (body, content type, documented status).

The run is bounded (`MAX_EXAMPLES` per operation and role) and deterministic (fixed
derandomized generation, no example database), so CI sees the same cases every time.
Each role runs the whole schema: routes that are not theirs must answer a documented 403,
and the ones that are get real work done in a shop of this test's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.db import Database
from app.migrate import upgrade
from tests.conftest import PG_ADMIN, _pg_exec
from tests.support.client import WSClient
from tests.support.factories import PASSWORD, ShopKit, login, make_shop
from tests.support.servers import NodeProcess

# Per operation and role: ~57 operations x 4 roles, a few minutes on a 2-core machine.
MAX_EXAMPLES = int(os.environ.get("HOMING_SCHEMATHESIS_EXAMPLES", "10"))
# A role an operation is not for is refused whatever it sends (401/403): after this many
# cases that were all refused, the operation is done for that role. The refusal itself is
# still checked against the schema on each of them.
PROBE_EXAMPLES = 3
REFUSED = frozenset({401, 403})
ROLES = ("admin", "agent", "buyer", "storefront")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    # Data the schema forbids must be refused (4xx), not quietly read some other way.
    negative_data_rejection,
]
REPORT = Path("test-artifacts/schemathesis.json")


BUYER = "schemathesis-buyer"
# A tiny PNG (the signature is what the upload route checks).
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Target:
    """The node under test, who may call it, and real objects of its shop."""

    def __init__(
        self, node: NodeProcess, kit: ShopKit, tokens: dict[str, str], ids: dict[str, str]
    ) -> None:
        self.node = node
        self.kit = kit
        self.tokens = tokens
        self.ids = ids  # path parameter name -> the id of a real object of the shop
        self.cases: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()


@pytest.fixture(scope="module")
def own_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this module's own, migrated: schemathesis fails logins by the thousand
    from 127.0.0.1, and the per-address login throttle is kept in the database, so on the
    suite's database it would lock every later test's logins out."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'homing.db'}"
        upgrade(url)
        yield url
        return
    name = f"homing_t_{secrets.token_hex(4)}_api"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
async def target(own_database_url: str) -> AsyncIterator[Target]:
    # A real process: schemathesis calls are blocking, so the server cannot share the
    # test's event loop.
    db = Database(Settings(DATABASE_URL=own_database_url).async_database_url)  # type: ignore[call-arg]
    try:
        kit = await make_shop(
            db, agents=(("agent1", "agent", ("general",)), ("sup", "supervisor", ("general",)))
        )
    finally:
        await db.dispose()
    node = NodeProcess(
        {
            "DATABASE_URL": own_database_url,
            # Schemathesis logs in with made-up accounts from this one address; the run's own
            # logins (below, and before each logout) must not be throttled by them.
            "HOMING_LOGIN_ADDRESS_MAX_FAILURES": "1000000",
        }
    )
    await node.start()
    try:
        tokens = {
            "admin": await login(node.http, kit, "admin"),
            "agent": await login(node.http, kit, "agent1"),
            "buyer": kit.buyer_token(BUYER),
            "storefront": kit.api_key,
        }
        t = Target(node, kit, tokens, await seed(node, kit, tokens))
        yield t
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(
            json.dumps(
                {
                    "operations": len(t.cases),
                    "cases": sum(t.cases.values()),
                    "statuses": {str(k): v for k, v in sorted(t.statuses.items())},
                },
                indent=1,
            )
        )
    finally:
        node.stop()


async def seed(node: NodeProcess, kit: ShopKit, tokens: dict[str, str]) -> dict[str, str]:
    """One real object of each kind, so that generated cases also reach past the lookups."""

    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    buyer_ws = await WSClient.connect(f"{node.ws}/ws/buyer?token={tokens['buyer']}")
    try:
        await buyer_ws.expect("hello")
        await buyer_ws.send({"type": "message.send", "client_msg_id": "seed", "body": "hello"})
        conversation_id = (await buyer_ws.expect("message.ack"))["message"]["conversation_id"]
    finally:
        await buyer_ws.close()
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=node.http) as c:

        async def ok(r: Any) -> dict[str, Any]:
            response = await r
            assert response.status_code in (200, 201), response.text
            return response.json()  # type: ignore[no-any-return]

        order = await ok(
            c.post(
                "/api/v1/orders",
                headers=auth("storefront"),
                json={
                    "order_id": "seed-order",
                    "buyer_id": BUYER,
                    "amount_cents": 10_000,
                    "status": "paid",
                    "created_at": now.isoformat(),
                },
            )
        )
        await ok(
            c.post(
                "/api/v1/payouts/fund/topup", headers=auth("admin"), json={"amount_cents": 100_000}
            )
        )
        payout = await ok(
            c.post(
                "/api/v1/payouts",
                headers={**auth("admin"), "Idempotency-Key": "seed"},
                json={
                    "conversation_id": conversation_id,
                    "order_id": order["order_id"],
                    "amount_cents": 100,
                    "reason": "goodwill",
                },
            )
        )
        group = await ok(
            c.post("/api/v1/groups", headers=auth("admin"), json={"name": "seed group"})
        )
        await ok(c.post(f"/api/v1/groups/{group['id']}/join", headers=auth("buyer")))
        giveaway = await ok(
            c.post(
                f"/api/v1/groups/{group['id']}/giveaways",
                headers=auth("admin"),
                json={"title": "seed", "quantity": 1000, "coupon": {"amount_cents": 100}},
            )
        )
        campaign = await ok(
            c.post(
                "/api/v1/recall/campaigns",
                headers=auth("admin"),
                json={
                    "name": "seed",
                    "send_at": (now + timedelta(days=1)).isoformat(),
                    "ends_at": (now + timedelta(days=2)).isoformat(),
                    "coupon": {"title": "t", "amount_cents": 100},
                },
            )
        )
        upload = await ok(
            c.post("/api/v1/uploads", headers=auth("buyer"), files={"file": ("a.png", PNG)})
        )
        phrase = await ok(
            c.post("/api/v1/phrases", headers=auth("admin"), json={"text": "seed", "scope": "shop"})
        )
    return {
        "conversation_id": conversation_id,
        "order_id": order["order_id"],
        "payout_id": payout["id"],
        "group_id": group["id"],
        "giveaway_id": giveaway["id"],
        "campaign_id": campaign["id"],
        "upload_id": upload["upload_id"],
        "phrase_id": phrase["id"],
        "name": "general",
        "buyer_id": BUYER,
        # The supervisor: the run's own sessions (admin, agent1) must survive PATCHes of an agent.
        "agent_id": kit.agents["sup"],
    }


def fresh_session(target: Target, username: str) -> str:
    r = httpx.post(
        f"{target.node.http}/api/v1/auth/login",
        json={"shop": target.kit.slug, "username": username, "password": PASSWORD},
    )
    r.raise_for_status()
    return str(r.json()["token"])


def run_operation(target: Target, role: str, operation: Any, mode: GenerationMode) -> str | None:
    """Up to MAX_EXAMPLES cases of one operation as one role; the first failure, shrunk, or None."""
    label = f"{operation.method.upper()} {operation.path}"

    cases = operation.as_strategy(generation_mode=mode)
    names = [p.name for p in operation.path_parameters]
    if names and all(n in target.ids for n in names):
        # Half the cases address real objects, half made-up ones.
        cases = cases | operation.as_strategy(
            generation_mode=mode, path_parameters={n: target.ids[n] for n in names}
        )

    seen: Counter[int] = Counter()

    def run(max_examples: int) -> None:
        @given(case=cases)
        @settings(
            max_examples=max_examples,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
        )
        def check(case: Any) -> None:
            token = target.tokens[role]
            if operation.path == "/api/v1/auth/logout" and role in ("admin", "agent"):
                # Logout ends the session it is called with: give it a session of its own,
                # so the rest of the run keeps the role's token.
                token = fresh_session(target, "admin" if role == "admin" else "agent1")
            response = case.call_and_validate(
                base_url=target.node.http,
                headers={"Authorization": f"Bearer {token}"},
                checks=CHECKS,
            )
            target.cases[label] += 1
            target.statuses[response.status_code] += 1
            seen[response.status_code] += 1

        check()

    try:
        run(PROBE_EXAMPLES)
        if set(seen) - REFUSED:  # the operation is the role's: the full run
            run(MAX_EXAMPLES)
    except Unsatisfiable:
        # Negative cases need something that can be invalid: an operation whose only input
        # is a free-form string path parameter has none.
        assert mode is GenerationMode.NEGATIVE, label
    except (Exception, FailureGroup) as exc:  # noqa: BLE001 - report every failure, run every operation
        return f"{role} {mode.value} {label}: {exc}"
    return None


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_declared(target: Target, role: str) -> None:
    schema = schemathesis.openapi.from_url(f"{target.node.http}/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = run_operation(target, role, operation, mode)
            if failure:
                failures.append(failure)
    assert not failures, "\n\n".join(failures)


# What the schemathesis runs found, pinned as plain cases (they must never come back).


async def test_a_number_is_not_a_date_time(server: Any) -> None:
    """`"send_at": 0` was read as Unix seconds (a campaign sent in 1970, an order of 1970):
    the schema says an ISO 8601 string."""
    kit = await make_shop(server.ctx.db)
    admin = {"Authorization": f"Bearer {await login(server.http, kit, 'admin')}"}
    shop_key = {"Authorization": f"Bearer {kit.api_key}"}
    iso = datetime.now(UTC).isoformat()
    async with httpx.AsyncClient(base_url=server.http) as c:
        for headers, path, body in (
            (
                shop_key,
                "/api/v1/orders",
                {
                    "order_id": "o-1",
                    "buyer_id": "b",
                    "amount_cents": 1,
                    "status": "paid",
                    "created_at": 0,
                },
            ),
            (
                shop_key,
                "/api/v1/orders",
                {
                    "order_id": "o-2",
                    "buyer_id": "b",
                    "amount_cents": 1,
                    "status": "paid",
                    "created_at": iso,
                    "ship_by": 1.5,
                },
            ),
            (shop_key, "/api/v1/events", {"buyer_id": "b", "type": "product_view", "at": 12}),
            (
                admin,
                "/api/v1/recall/campaigns",
                {
                    "name": "x",
                    "send_at": 0,
                    "ends_at": iso,
                    "coupon": {"title": "t", "amount_cents": 1},
                },
            ),
        ):
            r = await c.post(path, headers=headers, json=body)
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid", (path, r.text)
        # The ISO strings are still read, with or without an offset.
        r = await c.post(
            "/api/v1/orders",
            headers=shop_key,
            json={
                "order_id": "o-3",
                "buyer_id": "b",
                "amount_cents": 1,
                "status": "paid",
                "created_at": "2026-01-02T03:04:05",
            },
        )
        assert r.status_code == 201 and r.json()["created_at"] == "2026-01-02T03:04:05+00:00", (
            r.text
        )


async def test_whole_numbers_are_json_integers(server: Any) -> None:
    """The schema says integer: a string "5" or a float 5.0 is refused, not converted."""
    kit = await make_shop(server.ctx.db)
    admin = {"Authorization": f"Bearer {await login(server.http, kit, 'admin')}"}
    async with httpx.AsyncClient(base_url=server.http) as c:
        for bad in ("5", 5.0):
            r = await c.post(
                "/api/v1/groups", headers=admin, json={"name": "g", "max_members": bad}
            )
            assert r.status_code == 422, r.text
        group = (
            await c.post("/api/v1/groups", headers=admin, json={"name": "g", "max_members": 5})
        ).json()
        for path, body in (
            (f"/api/v1/groups/{group['id']}/mute", {"minutes": "5"}),
            (f"/api/v1/groups/{group['id']}/giveaways", {"title": "t", "quantity": "3"}),
        ):
            r = await c.post(path, headers=admin, json=body)
            assert r.status_code == 422, (path, r.text)


async def test_a_method_the_path_does_not_have_is_405_with_allow(server: Any) -> None:
    """RFC 9110: a 405 lists the methods the path has. The error envelope used to drop the
    `Allow` header (and Starlette's named only the first route's methods)."""
    async with httpx.AsyncClient(base_url=server.http) as c:
        for method, path, allowed in (
            ("TRACE", "/api/v1/agents", {"GET", "POST"}),
            ("DELETE", "/api/v1/me", {"GET"}),
            ("GET", "/api/v1/payouts/p1/approve", {"POST"}),
        ):
            r = await c.request(method, path)
            assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed", (
                r.text
            )
            assert {m.strip() for m in r.headers["allow"].split(",")} == allowed, r.headers
