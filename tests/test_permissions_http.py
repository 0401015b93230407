"""Every route that needs a permission asks the policy: for each route and role, the
answer is 403 exactly when app/shops/policy.py says the role may not (table of cases).

Requests carry empty or minimal bodies: the permission is decided before the body is read,
so an allowed role gets its 2xx, 404 or 422, never a 403."""

from __future__ import annotations

import httpx

from app.shops.policy import Permission, may, refusal
from tests.support.factories import PASSWORD, login, make_shop

P = Permission
ROLES = (("agent1", "agent"), ("boss", "supervisor"), ("admin", "admin"))

# (method, path, permission); `{agent}` is the shop's plain agent's id.
API = [
    ("GET", "/api/v1/buyers/b1/intent", P.RUN_RECALL),
    ("POST", "/api/v1/recall/campaigns", P.RUN_RECALL),
    ("GET", "/api/v1/recall/campaigns", P.RUN_RECALL),
    ("GET", "/api/v1/recall/campaigns/nope", P.RUN_RECALL),
    ("GET", "/api/v1/recall/campaigns/nope/preview", P.RUN_RECALL),
    ("POST", "/api/v1/recall/campaigns/nope/schedule", P.RUN_RECALL),
    ("POST", "/api/v1/recall/campaigns/nope/cancel", P.RUN_RECALL),
    ("GET", "/api/v1/recall/settings", P.RUN_RECALL),
    ("PUT", "/api/v1/recall/settings", P.SET_RECALL_WINDOW),
    ("GET", "/api/v1/metrics/agents", P.VIEW_METRICS),
    ("GET", "/api/v1/metrics/shop", P.VIEW_METRICS),
    ("GET", "/api/v1/agents", P.VIEW_AGENTS),
    ("POST", "/api/v1/agents", P.MANAGE_AGENTS),
    ("PATCH", "/api/v1/agents/{agent}", P.MANAGE_AGENTS),
    ("POST", "/api/v1/queues", P.MANAGE_QUEUES),
    ("PATCH", "/api/v1/queues/general", P.MANAGE_QUEUES),
    ("PUT", "/api/v1/routing/categories", P.MANAGE_QUEUES),
    ("POST", "/api/v1/payouts/fund/topup", P.TOP_UP_FUND),
    ("GET", "/api/v1/payouts/ledger", P.VIEW_PAYOUTS),
    ("PUT", "/api/v1/groups/sensitive-words", P.MANAGE_GROUPS),
    ("POST", "/api/v1/groups", P.MANAGE_GROUPS),
    ("DELETE", "/api/v1/groups/nope/members/b1", P.MODERATE_GROUPS),
    ("POST", "/api/v1/groups/nope/mute", P.MODERATE_GROUPS),
    ("POST", "/api/v1/groups/nope/giveaways", P.MODERATE_GROUPS),
    ("GET", "/api/v1/webhooks", P.MANAGE_WEBHOOKS),
    ("POST", "/api/v1/webhooks", P.MANAGE_WEBHOOKS),
    ("DELETE", "/api/v1/webhooks/nope", P.MANAGE_WEBHOOKS),
    ("GET", "/api/v1/webhooks/nope/deliveries", P.MANAGE_WEBHOOKS),
    ("POST", "/api/v1/webhooks/deliveries/1/resend", P.MANAGE_WEBHOOKS),
    ("GET", "/api/v1/service-hours", P.MANAGE_SERVICE_HOURS),
    ("PUT", "/api/v1/service-hours", P.MANAGE_SERVICE_HOURS),
    ("GET", "/api/v1/exports/messages.csv", P.EXPORT_DATA),
    ("GET", "/api/v1/exports/ledger.csv", P.EXPORT_DATA),
]
# Routes that change something get a body that cannot pass validation (nothing changes).
BODIES = {
    "PUT /api/v1/routing/categories": {"general": 5},
    "PUT /api/v1/service-hours": {"weekly": 5},
}


async def test_each_route_refuses_exactly_the_roles_the_policy_refuses(server):
    kit = await make_shop(
        server.ctx.db,
        agents=(("agent1", "agent", ("general",)), ("boss", "supervisor", ("general",))),
    )
    for username, role in ROLES:
        token = await login(server.http, kit, username)
        async with httpx.AsyncClient(
            base_url=server.http, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            for method, path, permission in API:
                url = path.format(agent=kit.agents["agent1"])
                body = BODIES.get(f"{method} {path}", {"_": None})
                if method in ("GET", "DELETE"):
                    r = await c.request(method, url)
                else:
                    r = await c.request(method, url, json=body)
                case = f"{role} {method} {path}"
                if may(role, permission):
                    assert r.status_code != 403, (case, r.text)
                    assert r.status_code < 500, (case, r.text)
                else:
                    assert r.status_code == 403, (case, r.text)
                    error = r.json()["error"]
                    assert error["code"] == "forbidden", case
                    if permission is not P.VIEW_PAYOUTS:  # the ledger says what it refuses
                        assert error["message"] == refusal(permission), case


async def test_buyer_routes_refuse_agents(server):
    kit = await make_shop(server.ctx.db)
    token = await login(server.http, kit, "admin")
    async with httpx.AsyncClient(
        base_url=server.http, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        for method, url in (
            ("POST", "/api/v1/recall/opt-out"),
            ("GET", "/api/v1/recall/me"),
            ("POST", "/api/v1/recall/coupons/nope/claim"),
            ("POST", "/api/v1/groups/nope/join"),
            ("DELETE", "/api/v1/groups/nope/members/me"),
            ("POST", "/api/v1/groups/nope/checkin"),
            ("POST", "/api/v1/giveaways/nope/claim"),
        ):
            r = await c.request(method, url)
            assert r.status_code == 403, (method, url, r.text)
            assert r.json()["error"]["code"] == "forbidden"


# Console forms: (path, permission). Empty forms: an allowed role gets the tab back (200,
# with the form's error) or 404, never the 403 page.
CONSOLE = [
    ("/console/payouts/nope/approve", P.APPROVE_PAYOUTS),
    ("/console/agents", P.MANAGE_AGENTS),
    ("/console/agents/{agent}", P.MANAGE_AGENTS),
    ("/console/agents/{agent}/active", P.MANAGE_AGENTS),
    ("/console/fund", P.TOP_UP_FUND),
    ("/console/recall", P.RUN_RECALL),
    ("/console/recall/nope/schedule", P.RUN_RECALL),
    ("/console/groups", P.MANAGE_GROUPS),
    ("/console/groups/nope/giveaways", P.MODERATE_GROUPS),
    ("/console/groups/nope/mute", P.MODERATE_GROUPS),
    ("/console/groups/nope/remove", P.MODERATE_GROUPS),
    ("/console/groups/nope/messages", P.USE_CONSOLE),
    ("/console/webhooks", P.MANAGE_WEBHOOKS),
    ("/console/webhooks/nope/delete", P.MANAGE_WEBHOOKS),
    ("/console/webhooks/deliveries/1/resend", P.MANAGE_WEBHOOKS),
    ("/console/hours", P.MANAGE_SERVICE_HOURS),
]
CONSOLE_PAGES = ["/console", "/console/section/queues", "/console/recall/campaigns"]
CONSOLE_PAGES += ["/console/section/webhooks"]


async def test_console_forms_and_pages_follow_the_policy(server):
    kit = await make_shop(
        server.ctx.db,
        agents=(("agent1", "agent", ("general",)), ("boss", "supervisor", ("general",))),
    )
    for username, role in ROLES:
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as c:
            r = await c.post(
                "/api/v1/auth/login",
                json={"shop": kit.slug, "username": username, "password": PASSWORD},
            )
            headers = {"X-CSRF-Token": r.json()["csrf_token"], "HX-Request": "true"}
            for path in CONSOLE_PAGES:
                r = await c.get(path)
                expected = 200 if may(role, P.USE_CONSOLE) else 403
                assert r.status_code == expected, (role, path)
            for path, permission in CONSOLE:
                url = path.format(agent=kit.agents["agent1"])
                # The agent form with its own account unchanged: nothing is changed by it.
                r = await c.post(url, data={}, headers=headers)
                case = (role, path)
                if may(role, permission):
                    assert r.status_code in (200, 404), (case, r.text[:300])
                else:
                    assert r.status_code == 403, case
                    assert "text/html" in r.headers["content-type"], case
        # Without a session: the login page, for every form.
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as anonymous:
            for path, _ in CONSOLE:
                r = await anonymous.post(path.format(agent="x"), headers={"HX-Request": "true"})
                assert r.status_code == 303 and r.headers["location"] == "/login", path
