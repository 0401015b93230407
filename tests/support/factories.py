"""Small factories: shops with agents, buyer tokens, logged-in agents."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from app.clock import Clock
from app.db import Database
from app.shops import actions as shop_actions
from app.shops.models import Shop

PASSWORD = "pw-" + "x" * 8


@dataclass
class ShopKit:
    slug: str
    shop_id: str
    buyer_secret: str
    api_key: str
    agents: dict[str, str] = field(default_factory=dict)  # username -> agent id

    # Long-lived by default: tests move the shared server's clock forward (days, sometimes).
    def buyer_token(
        self,
        sub: str | None = None,
        *,
        exp_in: int = 90 * 86400,
        secret: str | None = None,
        **claims: Any,
    ) -> str:
        body = {
            "sub": sub or f"buyer-{secrets.token_hex(4)}",
            "shop": self.slug,
            "name": "测试买家",
            "exp": int(time.time()) + exp_in,
            **claims,
        }
        return jwt.encode(body, secret or self.buyer_secret, algorithm="HS256")


async def make_shop(
    db: Database,
    *,
    agents: tuple[tuple[str, str, tuple[str, ...]], ...] = (("agent1", "agent", ("general",)),),
    max_concurrent: int = 5,
    clock: Clock | None = None,
) -> ShopKit:
    """A fresh shop (unique slug) with an admin and the given (username, role, queues) agents."""
    now = (clock or Clock()).now()
    slug = f"shop-{secrets.token_hex(5)}"

    async def build(uow: Any) -> ShopKit:
        new = await shop_actions.create_shop(
            uow, slug=slug, admin_username="admin", admin_password=PASSWORD, now=now
        )
        kit = ShopKit(slug, new.shop.id, new.buyer_secret, new.api_key)
        shop: Shop = new.shop
        for username, role, queues in agents:
            a = await shop_actions.create_agent(
                uow,
                shop,
                username=username,
                password=PASSWORD,
                role=role,
                display_name=f"{username} 客服",
                queues=queues,
                now=now,
                max_concurrent=max_concurrent,
            )
            kit.agents[username] = a.id
        return kit

    return await db.run(build)  # type: ignore[no-any-return]


async def login(base_url: str, kit: ShopKit, username: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"shop": kit.slug, "username": username, "password": PASSWORD},
        )
        r.raise_for_status()
        return str(r.json()["token"])
