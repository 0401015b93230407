"""The demo shop of PROTOCOL.md (`homing serve --demo`): one shop, four agents, a funded payout fund."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from app.bot import actions as bot_actions
from app.db import UnitOfWork
from app.payouts import fund as payout_fund
from app.phrases import actions as phrase_actions
from app.phrases.rules import PhraseRow
from app.recall import actions as recall_actions
from app.shops import actions as shop_actions
from app.shops.actions import DEMO_SLUG
from app.shops.models import Agent, Shop
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
# The shop's quick phrases (group, text); variables are filled when an agent inserts one.
DEMO_PHRASES = (
    ("问候", "{买家昵称}您好,我是{客服昵称},很高兴为您服务!"),
    ("问候", "您好,请问有什么可以帮您?"),
    ("物流", "亲,您的订单{订单号}已发货,请留意物流信息。"),
    ("物流", "发货时间一般为付款后 48 小时内。"),
    ("售后", "非常抱歉给您带来不便,我马上为您处理。"),
    ("结束", "感谢您的耐心等待,祝您生活愉快!"),
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
    admin = await uow.session.get(Agent, new.admin_id)
    assert admin is not None  # just created
    rows = [PhraseRow("shop", group, text) for group, text in DEMO_PHRASES]
    await phrase_actions.import_phrases(uow, admin, rows, now)
    # A tea-set store's knowledge base; the bot stays off until the console switches it on,
    # so a newcomer's first chat still reaches alice.
    await bot_actions.import_faqs(uow, new.shop.id, bot_actions.demo_entries(), now)
    return True
