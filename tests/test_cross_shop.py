"""Another shop's object answers exactly as a missing one does: 404, on every route that takes an id.

A 403 would tell a caller that the id exists (in some other shop); ids of conversations,
payouts, uploads and the rest must not be confirmable from outside their shop.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx

from tests.test_payouts_support import open_desk

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_another_shops_ids_are_404_like_missing_ones(server, connect):
    async with httpx.AsyncClient(base_url=server.http) as http:
        mine = await open_desk(server, connect, http)  # shop A: its conversation, order, fund
        theirs = await open_desk(server, connect, http)  # shop B: who asks about A's ids
        a_admin = mine.auth("admin")

        # Shop A's objects, one of each kind.
        await mine.order("O-1", 50_000)
        payout = (await mine.pay(100, order_id="O-1", username="admin")).json()
        upload = (
            await http.post(
                "/api/v1/uploads",
                files={"file": ("p.png", PNG, "image/png")},
                headers={"Authorization": f"Bearer {mine.buyer_token}"},
            )
        ).json()
        group = (await http.post("/api/v1/groups", json={"name": "铁粉群"}, headers=a_admin)).json()
        giveaway = (
            await http.post(
                f"/api/v1/groups/{group['id']}/giveaways",
                headers=a_admin,
                json={"title": "券", "quantity": 5, "coupon": {"title": "券", "amount_cents": 100}},
            )
        ).json()
        now = server.clock.now()
        campaign = (
            await http.post(
                "/api/v1/recall/campaigns",
                headers=a_admin,
                json={
                    "name": "回访",
                    "send_at": (now + timedelta(days=1)).isoformat(),
                    "ends_at": (now + timedelta(days=2)).isoformat(),
                    "coupon": {"title": "券", "amount_cents": 100},
                },
            )
        ).json()
        ids = {
            "conv": mine.conversation_id,
            "payout": payout["id"],
            "upload": upload["upload_id"],
            "group": group["id"],
            "giveaway": giveaway["id"],
            "campaign": campaign["id"],
            "agent": mine.kit.agents["agent1"],
            "order": "O-1",
        }
        assert all(ids.values()), ids

        b_staff = theirs.auth("admin")
        b_buyer = {"Authorization": f"Bearer {theirs.kit.buyer_token('nosy-buyer')}"}
        pay_body = {"amount_cents": 100, "reason": "goodwill", "order_id": "O-1"}
        # (who, method, path with {id}, kind of id, json body)
        routes = [
            (b_staff, "GET", "/conversations/{id}/messages", "conv", None),
            (b_buyer, "GET", "/conversations/{id}/messages", "conv", None),
            (b_staff, "POST", "/payouts", "conv", "conversation_id"),
            (b_staff, "GET", "/payouts/{id}", "payout", None),
            (b_staff, "POST", "/payouts/{id}/approve", "payout", None),
            (b_staff, "POST", "/payouts/{id}/reject", "payout", None),
            (b_staff, "GET", "/uploads/{id}", "upload", None),
            (b_buyer, "GET", "/uploads/{id}", "upload", None),
            (b_staff, "GET", "/orders/{id}", "order", None),
            (b_staff, "PATCH", "/agents/{id}", "agent", {"display_name": "x"}),
            (b_staff, "GET", "/recall/campaigns/{id}", "campaign", None),
            (b_staff, "GET", "/recall/campaigns/{id}/preview", "campaign", None),
            (b_staff, "POST", "/recall/campaigns/{id}/schedule", "campaign", None),
            (b_staff, "POST", "/recall/campaigns/{id}/cancel", "campaign", None),
            (b_staff, "GET", "/groups/{id}/messages", "group", None),
            (
                b_staff,
                "POST",
                "/groups/{id}/messages",
                "group",
                {"client_msg_id": "c1", "body": "hi"},
            ),
            (b_staff, "POST", "/groups/{id}/mute", "group", {"minutes": 5}),
            (b_staff, "POST", "/groups/{id}/giveaways", "group", {"title": "t", "quantity": 1}),
            (b_staff, "DELETE", "/groups/{id}/members/" + mine.buyer_id, "group", None),
            (b_buyer, "POST", "/groups/{id}/join", "group", None),
            (b_buyer, "POST", "/groups/{id}/checkin", "group", None),
            (b_buyer, "DELETE", "/groups/{id}/members/me", "group", None),
            (b_buyer, "GET", "/groups/{id}/messages", "group", None),
            (b_staff, "GET", "/giveaways/{id}", "giveaway", None),
            (b_buyer, "POST", "/giveaways/{id}/claim", "giveaway", None),
        ]
        for who, method, template, kind, body in routes:
            answers = []
            for the_id in (ids[kind], f"missing-{secrets.token_hex(4)}"):
                if body == "conversation_id":
                    json, path = {**pay_body, "conversation_id": the_id}, template
                else:
                    json, path = body, template.replace("{id}", the_id)
                headers = {**who, "Idempotency-Key": secrets.token_hex(6)}
                r = await http.request(method, f"/api/v1{path}", json=json, headers=headers)
                answers.append(
                    (r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else None)
                )
            assert answers[0] == answers[1] == (404, "not_found"), (method, template, answers)

        # Shop A still has all of it, untouched.
        assert (
            await http.get(f"/api/v1/payouts/{payout['id']}", headers=a_admin)
        ).status_code == 200
        r = await http.get(f"/api/v1/recall/campaigns/{campaign['id']}", headers=a_admin)
        assert r.json()["status"] == "draft"

        # Over the buyer socket too: A's group is as unknown to B's buyer as a made-up id.
        b = await connect(f"{server.ws}/ws/buyer?token={theirs.kit.buyer_token('nosy-buyer')}")
        await b.expect("hello")
        for frame in (
            {"type": "group.sync", "after_seq": 0},
            {"type": "group.send", "client_msg_id": "g1", "body": "hi"},
        ):
            codes = []
            for the_id in (group["id"], "missing-group"):
                await b.send({**frame, "group_id": the_id})
                codes.append((await b.expect("error"))["code"])
            assert codes[0] == codes[1] == "not_found", (frame["type"], codes)
