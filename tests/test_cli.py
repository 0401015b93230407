"""The command line: `homing shop create` and the idempotent demo seed."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time

import httpx
import jwt

from app.demo import seed_demo
from app.migrate import upgrade
from tests.support.servers import ROOT


def homing(
    *args: str, database_url: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DATABASE_URL": database_url, **(env or {})},
        timeout=120,
    )


async def test_shop_create_prints_secrets_that_work(server, database_url, connect):
    slug = f"cli-{secrets.token_hex(3)}"
    done = homing(
        "shop",
        "create",
        slug,
        "--admin",
        "boss",
        "--password",
        "s3cret-pw",
        database_url=database_url,
    )
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout.strip().splitlines()[-1])
    assert created["shop"] == slug and created["buyer_secret"] and created["api_key"]
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/api/v1/auth/login", json={"shop": slug, "username": "boss", "password": "s3cret-pw"}
        )
        assert r.status_code == 200 and r.json()["agent"]["role"] == "admin"
    token = jwt.encode(
        {"sub": "cli-buyer", "shop": slug, "exp": int(time.time()) + 90 * 86400},
        created["buyer_secret"],
        algorithm="HS256",
    )
    b = await connect(f"{server.ws}/ws/buyer?token={token}")
    assert (await b.expect("hello"))["buyer_id"] == "cli-buyer"
    again = homing(
        "shop", "create", slug, "--admin", "x", "--password", "y", database_url=database_url
    )
    assert again.returncode == 1 and json.loads(again.stderr)["error"]["code"] == "shop_exists"


async def test_demo_seed_is_idempotent_and_matches_the_protocol(start_server, tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    await asyncio.to_thread(upgrade, url)  # a database of its own, so the demo shop is new here
    srv = await start_server(database_url=url, run_jobs=False)
    assert await srv.ctx.db.run(seed_demo, srv.clock.now()) is True
    assert await srv.ctx.db.run(seed_demo, srv.clock.now()) is False
    async with httpx.AsyncClient(base_url=srv.http) as c:
        for username, role in (
            ("alice", "agent"),
            ("bob", "agent"),
            ("sam", "supervisor"),
            ("admin", "admin"),
        ):
            r = await c.post(
                "/api/v1/auth/login",
                json={"shop": "demo", "username": username, "password": "demo"},
            )
            assert r.status_code == 200 and r.json()["agent"]["role"] == role
        admin = r.json()["token"]
        fund = await c.get("/api/v1/payouts/fund", headers={"Authorization": f"Bearer {admin}"})
        assert fund.json()["balance_cents"] == 1_000_000
