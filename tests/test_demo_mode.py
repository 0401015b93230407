"""The demo stays a demo: its storefront only in demo mode, its slug reserved, loopback unless told."""

from __future__ import annotations

import json
import re

import httpx
import jwt
import pytest

from app import cli
from app.demo import DEMO_BUYER_SECRET, DEMO_SLUG, seed_demo
from app.errors import Conflict
from app.security import is_loopback_host
from app.shops import actions as shop_actions
from tests.support.factories import PASSWORD
from tests.support.servers import NodeProcess, free_port
from tests.support.words import zh
from tests.test_cli import homing

TOKEN = re.compile(r'data-token="([^"]+)"')


async def test_demo_storefront_exists_only_in_demo_mode(start_server):
    off = await start_server(run_jobs=False)
    # A shop called demo exists in the database: still nothing is served or signed for it.
    await off.ctx.db.run(seed_demo, off.clock.now())
    on = await start_server(run_jobs=False, HOMING_DEMO="true")
    async with httpx.AsyncClient() as c:
        for path in ("/demo/shop", "/demo/shop?buyer=wang", "/demo/other"):
            r = await c.get(off.http + path)
            assert r.status_code == 404, path
            assert not TOKEN.search(r.text)
        landing, login = (await c.get(off.http + "/")).text, (await c.get(off.http + "/login")).text
        assert (
            "/demo/shop" not in landing
            and zh("Agents, supervisors and admins sign in here.") in landing
        )
        assert (
            zh("Demo: shop demo, agents alice (general) / bob (elder care), password demo.")
            not in landing + login
        )
        assert 'value="demo"' not in login

        r = await c.get(on.http + "/demo/shop?buyer=wang")
        assert r.status_code == 200
        claims = jwt.decode(TOKEN.search(r.text)[1], DEMO_BUYER_SECRET, algorithms=["HS256"])
        assert claims["shop"] == DEMO_SLUG and claims["sub"] == "demo-wang"
        landing, login = (await c.get(on.http + "/")).text, (await c.get(on.http + "/login")).text
        assert (
            'href="/demo/shop"' in landing
            and zh("Demo: shop demo, agents alice (general) / bob (elder care), password demo.")
            in login
        )
        assert 'value="demo"' in login


async def test_the_demo_slug_is_reserved(server, database_url):
    for slug in ("demo", "Demo", "DEMO"):
        done = homing(
            "shop", "create", slug, "--admin", "boss", "--password", "pw", database_url=database_url
        )
        assert done.returncode == 1, done.stdout
        error = json.loads(done.stderr)["error"]
        assert error["code"] == "slug_reserved" and "reserved for the demo shop" in error["message"]
    # The action refuses it whoever calls it; only the demo seed may create it.
    with pytest.raises(Conflict) as refused:
        await server.ctx.db.run(
            shop_actions.create_shop,
            slug="demo",
            admin_username="a",
            admin_password=PASSWORD,
            now=server.clock.now(),
        )
    assert refused.value.code == "slug_reserved" and refused.value.status == 422
    with pytest.raises(Conflict):
        await server.ctx.db.run(
            shop_actions.create_shop,
            slug="Demo",
            admin_username="a",
            admin_password=PASSWORD,
            now=server.clock.now(),
            demo_seed=True,
        )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.8.7", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("127.0.0.1.nip.io", False),
        ("", False),
        ("app.localhost", True),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback_host(host) is loopback
    assert (cli.demo_refusal(True, host, False) is None) is loopback
    assert cli.demo_refusal(True, host, True) is None
    assert cli.demo_refusal(False, host, False) is None


def test_demo_off_loopback_is_refused_unless_demo_public(database_url):
    port = str(free_port())
    for args, env in (
        (("--demo", "--host", "0.0.0.0"), {}),
        (("--host", "192.168.1.5"), {"HOMING_DEMO": "true"}),  # demo mode from the environment
    ):
        done = homing("serve", "--port", port, *args, database_url=database_url, env=env)
        assert done.returncode == 2, done.stdout
        assert "not loopback" in done.stderr and "--demo-public" in done.stderr
        assert "Homing is running" not in done.stdout
    done = homing("serve", "--demo-public", "--port", port, database_url=database_url)
    assert done.returncode == 2 and "--demo-public only makes sense with --demo" in done.stderr


async def test_serve_demo_on_loopback_public_or_not_at_all(database_url):
    """`./scripts/serve.sh` (`homing serve --demo` on loopback), `--demo-public`, and no demo."""
    env = {"DATABASE_URL": database_url}
    nodes = [
        NodeProcess(env, args=("--demo",)),
        NodeProcess(env, args=("--demo", "--host", "0.0.0.0", "--demo-public")),
        NodeProcess(env),
    ]
    try:
        for node in nodes:
            await node.start()
        async with httpx.AsyncClient() as c:
            demo_loopback, demo_public, plain = [
                (await c.get(n.http + "/demo/shop")) for n in nodes
            ]
            assert demo_loopback.status_code == 200 and TOKEN.search(demo_loopback.text)
            assert demo_public.status_code == 200 and TOKEN.search(demo_public.text)
            # The demo shop exists in this database, but this node is not in demo mode.
            assert plain.status_code == 404 and not TOKEN.search(plain.text)
            r = await c.post(
                nodes[0].http + "/api/v1/auth/login",
                json={"shop": "demo", "username": "alice", "password": "demo"},
            )
            assert r.status_code == 200
    finally:
        for node in nodes:
            node.stop()
