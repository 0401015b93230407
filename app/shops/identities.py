"""Who acts: a buyer as their signed token says, beside the stored `Agent`; a caller is either."""

from __future__ import annotations

from dataclasses import dataclass

from app.routing.rules import BuyerFacts
from app.shops.minors import is_minor
from app.shops.models import Agent


@dataclass(frozen=True)
class BuyerIdentity:
    shop_id: str
    shop_slug: str
    buyer_id: str
    name: str = ""
    age: int | None = None
    vip: int | None = None
    elder_mode: bool = False

    @property
    def shown_as(self) -> tuple[str, str, int | None]:
        """How a conversation they open shows before anyone serves it: shop, name, VIP."""
        return (self.shop_slug, self.name, self.vip)

    @property
    def minor(self) -> bool:
        """Under 18 by the token's `age`: chat as anyone, but no marketing (coupons, giveaways)."""
        return is_minor(self.age)

    @property
    def facts(self) -> BuyerFacts:
        return BuyerFacts(age=self.age, elder_mode=self.elder_mode)


# Whoever the credentials name: an agent (session token or cookie) or a buyer (signed JWT).
Caller = Agent | BuyerIdentity
