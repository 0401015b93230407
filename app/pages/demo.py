"""The demo storefront's buyers: identities signed here, as a shop's own server would sign them.

Only for the shop whose slug is `demo` (seeded by `homing serve --demo`); its buyer
secret is read from the database, never from the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.demo import DEMO_SLUG
from app.shops.models import Shop

TOKEN_TTL = timedelta(hours=12)


@dataclass(frozen=True)
class DemoBuyer:
    key: str
    sub: str
    name: str
    age: int
    vip: int | None = None


DEMO_BUYERS: tuple[DemoBuyer, ...] = (
    DemoBuyer("lin", "demo-lin", "林小姐", 28),
    DemoBuyer("zhang", "demo-zhang", "张先生", 45, vip=3),
    DemoBuyer("wang", "demo-wang", "王奶奶", 72),
)
DEFAULT_BUYER = DEMO_BUYERS[0]

# The product the demo page sells; the widget can send it as a product card.
DEMO_PRODUCT: dict[str, Any] = {
    "product_id": "demo-teaset-01",
    "title": "景德镇手绘青花茶具 一壶四杯",
    "category": "家居",
    "price_cents": 26800,
}


def demo_buyer(key: str | None) -> DemoBuyer:
    return next((b for b in DEMO_BUYERS if b.key == key), DEFAULT_BUYER)


async def demo_shop_secret(session: AsyncSession) -> str | None:
    """The demo shop's buyer secret, or None when no demo shop was seeded."""
    row = await session.execute(select(col(Shop.buyer_secret)).where(col(Shop.slug) == DEMO_SLUG))
    return row.scalar()


def sign_demo_buyer(buyer: DemoBuyer, secret: str, now: datetime) -> str:
    claims: dict[str, Any] = {
        "sub": buyer.sub,
        "shop": DEMO_SLUG,
        "name": buyer.name,
        "age": buyer.age,
        "exp": int((now + TOKEN_TTL).timestamp()),
    }
    if buyer.vip is not None:
        claims["vip"] = buyer.vip
    return jwt.encode(claims, secret, algorithm="HS256")
