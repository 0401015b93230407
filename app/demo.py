"""The demo shop of PROTOCOL.md (`homing serve --demo`): one shop, four agents, a funded payout fund."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from app.bot import actions as bot_actions
from app.db import UnitOfWork
from app.payouts import fund as payout_fund
from app.recall import actions as recall_actions
from app.shops import actions as shop_actions
from app.shops.actions import DEMO_SLUG
from app.shops.models import Shop
from app.shops.roles import AGENT, SUPERVISOR

DEMO_BUYER_SECRET = "demo-buyer-secret-0123456789abcdef"
DEMO_API_KEY = "demo-api-key"
DEMO_PASSWORD = "demo"
DEMO_FUND_CENTS = 1_000_000  # ¥10,000
# (username, display name, role, queues)
DEMO_AGENTS = (
    ("alice", "Alice 小艾", AGENT, ("general",)),
    ("bob", "Bob 老鲍 (长辈专席)", AGENT, ("elderly",)),
    ("sam", "Sam 主管", SUPERVISOR, ("general", "elderly")),
)


async def seed_demo(uow: UnitOfWork, now: datetime) -> bool:
    """Create the demo shop once (its recall window is the whole day); later calls change nothing."""
    if (await uow.session.execute(select(col(Shop.id)).where(col(Shop.slug) == DEMO_SLUG))).first():
        return False
    new = await shop_actions.create_shop(
        uow,
        slug=DEMO_SLUG,
        name="Homing 演示店",
        admin_username="admin",
        admin_password=DEMO_PASSWORD,
        now=now,
        buyer_secret=DEMO_BUYER_SECRET,
        api_key=DEMO_API_KEY,
        demo_seed=True,
    )
    for username, display, role, queues in DEMO_AGENTS:
        await shop_actions.create_agent(
            uow,
            new.shop,
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            display_name=display,
            queues=queues,
            now=now,
        )
    await payout_fund.topup_fund(uow, admin_id=new.admin_id, amount_cents=DEMO_FUND_CENTS, now=now)
    await recall_actions.set_window(uow, new.shop.id, 0, 24 * 60, now)  # recalls all day
    # A tea-set store's knowledge base; the bot stays off until the console switches it on,
    # so a newcomer's first chat still reaches alice.
    await bot_actions.import_faqs(uow, new.shop.id, bot_actions.demo_entries(), now)
    return True
