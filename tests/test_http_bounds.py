"""Every integer an HTTP request carries is bounded at parse time: a number past what
its column holds is a 422, never a 500 (found by schemathesis: `GET
/api/v1/payouts/ledger?after_id=9223372036854775808` made SQLite raise OverflowError).
Likewise text: a NUL character (which PostgreSQL text cannot hold) anywhere in a request
is a 422 on both databases, never a 500.

The walk below reads the app's own OpenAPI document, so a route added later with an
unbounded integer is caught too.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import httpx
import pytest

from tests.support.factories import login, make_shop

HUGE = [2**63, -(2**63) - 1, 2**64, 10**30]
DEEP = "[" * 1000 + "0" + "]" * 1000
DEEPISH = "[" * 300 + "0" + "]" * 300  # parses, but deeper than orjson writes (255)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


def _is_integer(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "integer" or any(
        s.get("type") == "integer" for s in schema.get("anyOf", [])
    )


def _filler(schema: dict[str, Any]) -> Any:
    kinds = {s.get("type") for s in [schema, *schema.get("anyOf", [])]}
    for kind, value in (
        ("string", "x"),
        ("integer", 1),
        ("number", 1),
        ("boolean", False),
        ("array", []),
        ("object", {}),
    ):
        if kind in kinds:
            return value
    return "x"


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            ops.append((method.upper(), path, op))
    return ops


@pytest.fixture
async def staff(server):
    kit = await make_shop(server.ctx.db)
    token = await login(server.http, kit, "admin")
    async with httpx.AsyncClient(
        base_url=server.http, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        c.kit = kit  # type: ignore[attr-defined]
        c.group_id = (await c.post("/api/v1/groups", json={"name": "walk"})).json()["id"]  # type: ignore[attr-defined]
        yield c


def _callers(staff: Any) -> list[dict[str, str]]:
    """An admin, a buyer and the shop's API key: between them every route gets past
    sign-in, so its parameters are parsed."""
    kit = staff.kit
    return [
        {},
        {"Authorization": f"Bearer {kit.buyer_token('walker')}"},
        {"Authorization": f"Bearer {kit.api_key}"},
    ]


def _url(path: str, group_id: str) -> str:
    """Real group ids where the path names a group (so its routes reach the database)."""
    if path.startswith("/api/v1/groups/{"):
        path = re.sub(r"\{[^}]+\}", group_id, path, count=1)
    return re.sub(r"\{[^}]+\}", "x", path)


async def test_every_integer_query_parameter_refuses_huge_numbers(server, staff):
    spec = (await staff.get("/openapi.json")).json()
    tried = 0
    for method, path, op in _operations(spec):
        url = _url(path, staff.group_id)
        for param in op.get("parameters", []):
            if param["in"] != "query" or not _is_integer(param["schema"]):
                continue
            for huge, headers in itertools.product(HUGE, _callers(staff)):
                r = await staff.request(
                    method, url, params={param["name"]: str(huge)}, headers=headers
                )
                assert r.status_code < 500, (method, path, param["name"], huge, r.text)
                tried += 1
    assert tried >= 4 * 4  # after_seq twice, after_id, the limits...


async def test_every_json_body_field_refuses_huge_numbers_and_deep_values(server, staff):
    spec = (await staff.get("/openapi.json")).json()
    tried = 0
    for method, path, op in _operations(spec):
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        schema = _resolve(spec, content["application/json"]["schema"])
        props = {k: _resolve(spec, v) for k, v in schema.get("properties", {}).items()}
        base = {k: _filler(v) for k, v in props.items()}
        url = _url(path, staff.group_id)
        for key, prop in props.items():
            bad_values = [str(h) for h in HUGE] if _is_integer(prop) else []
            if isinstance(base[key], dict):  # free-form objects: bad values inside them too
                bad_values += ['{"k": ' + v + "}" for v in (str(2**63), DEEP, DEEPISH)]
            for bad, headers in itertools.product([*bad_values, DEEP, DEEPISH], _callers(staff)):
                text = (
                    "{"
                    + ", ".join(
                        f'"{k}": {bad if k == key else json.dumps(v)}' for k, v in base.items()
                    )
                    + "}"
                )
                r = await staff.request(
                    method,
                    url,
                    content=text,
                    headers={"Content-Type": "application/json", **headers},
                )
                assert r.status_code < 500, (method, path, key, bad[:20], r.text[:300])
                tried += 1
    assert tried > 50


async def test_numbers_past_the_columns_are_422_on_real_records(server, staff):
    """The same numbers where the route would really reach the database."""
    r = await staff.get("/api/v1/payouts/ledger", params={"after_id": "9223372036854775808"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid", r.text
    r = await staff.get("/api/v1/payouts/ledger", params={"after_id": str(2**63 - 1)})
    assert r.status_code == 200 and r.json() == []
    g = {"id": staff.group_id}
    for after_seq, status in ((2**31, 422), (2**63, 422), (2**31 - 1, 200)):
        r = await staff.get(
            f"/api/v1/groups/{g['id']}/messages", params={"after_seq": str(after_seq)}
        )
        assert r.status_code == status, (after_seq, r.text)
    for minutes in (2**63, 10**30):
        r = await staff.post(f"/api/v1/groups/{g['id']}/mute", json={"minutes": minutes})
        assert r.status_code == 422, r.text
    # Deep values where the route takes any JSON: refused, never stored or echoed.
    for deep in (DEEP, DEEPISH):
        for field in ("title", "amount_cents", "extra"):
            r = await staff.post(
                f"/api/v1/groups/{g['id']}/giveaways",
                content='{"title": "t", "quantity": 1, "coupon": {"' + field + '": ' + deep + "}}",
                headers={"Content-Type": "application/json"},
            )
            assert r.status_code in (400, 422), r.text
    # Any depth the JSON parser accepts, where a category's queue name belongs.
    for depth in range(100, 1001, 50):
        deep = "[" * depth + "0" + "]" * depth
        r = await staff.put(
            "/api/v1/routing/categories",
            content='{"shoes": ' + deep + "}",
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code in (400, 422) and len(r.text) < 2000, (depth, r.text[:300])


async def test_a_nul_character_anywhere_in_a_request_is_422(server, staff):
    spec = (await staff.get("/openapi.json")).json()
    tried = 0
    for method, path, op in _operations(spec):
        content = op.get("requestBody", {}).get("content", {})
        schema = (
            _resolve(spec, content["application/json"]["schema"])
            if "application/json" in content
            else {}
        )
        props = {k: _resolve(spec, v) for k, v in schema.get("properties", {}).items()}
        base = {k: _filler(v) for k, v in props.items()}
        cases: list[tuple[str, dict[str, str], str | None]] = []
        for param in op.get("parameters", []):
            if param["in"] == "path":
                url = _url(path.replace("{" + param["name"] + "}", "a%00b"), staff.group_id)
                cases.append((url, {}, None))
            elif param["in"] == "query" and not _is_integer(param["schema"]):
                cases.append((_url(path, staff.group_id), {param["name"]: "a\x00b"}, None))
        for key in props:
            cases.append((_url(path, staff.group_id), {}, json.dumps({**base, key: "a\x00b"})))
        for (url, params, body), headers in itertools.product(cases, _callers(staff)):
            r = await staff.request(
                method,
                url,
                params=params,
                content=body,
                headers={"Content-Type": "application/json", **headers},
            )
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid", (
                method,
                url,
                params,
                body,
                r.text,
            )
            tried += 1
    assert tried > 100
    # Forms too (the console and the login page), signed in or not.
    r = await staff.post(
        "/login",
        content=b"shop=x&username=a%00b&password=p",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422
    # The six characters \u0000 are text like any other.
    r = await staff.post(
        "/api/v1/groups",
        content=json.dumps({"name": "\\u0000 群"}),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 201 and r.json()["name"] == "\\u0000 群", r.text
