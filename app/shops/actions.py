"""Shop and agent state changes: create shops and agents, log in and out, seed the demo."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from app.db import UnitOfWork
from app.errors import Conflict, NotAuthenticated, RateLimited
from app.routing.models import DEFAULT_QUEUES, AgentQueue, Queue
from app.shops.models import ROLES, Agent, AgentSession, Buyer, LoginFailure, Shop
from app.shops.security import hash_password, new_token, token_hash, verify_password

DEMO_SLUG = "demo"
DEMO_BUYER_SECRET = "demo-buyer-secret-0123456789abcdef"
DEMO_API_KEY = "demo-api-key"
DEMO_PASSWORD = "demo"
# (username, display name, role, queues)
DEMO_AGENTS = (
    ("alice", "Alice 小艾", "agent", ("general",)),
    ("bob", "Bob 老鲍 (长辈专席)", "agent", ("elderly",)),
    ("sam", "Sam 主管", "supervisor", ("general", "elderly")),
    ("admin", "店铺管理员", "admin", ()),
)


@dataclass
class NewShop:
    shop: Shop
    buyer_secret: str
    api_key: str


async def create_shop(
    uow: UnitOfWork,
    *,
    slug: str,
    admin_username: str,
    admin_password: str,
    now: datetime,
    name: str | None = None,
    buyer_secret: str | None = None,
    api_key: str | None = None,
) -> NewShop:
    s = uow.session
    if not slug or len(slug) > 64 or not slug.replace("-", "").replace("_", "").isalnum():
        raise Conflict("A shop slug is 1-64 letters, digits, '-' or '_'.", code="bad_slug", status=422)
    if (await s.execute(select(Shop.id).where(Shop.slug == slug))).first():
        raise Conflict(f"Shop {slug!r} already exists.", code="shop_exists")
    buyer_secret = buyer_secret or secrets.token_urlsafe(32)
    api_key = api_key or f"hk_{secrets.token_urlsafe(32)}"
    shop = Shop(
        slug=slug,
        name=name or slug,
        buyer_secret=buyer_secret,
        api_key_hash=token_hash(api_key),
        created_at=now,
    )
    s.add(shop)
    await s.flush()
    for q in DEFAULT_QUEUES:
        s.add(Queue(shop_id=shop.id, name=q))
    await create_agent(
        uow, shop, username=admin_username, password=admin_password, role="admin",
        display_name=admin_username, queues=(), now=now,
    )
    return NewShop(shop, buyer_secret, api_key)


async def create_agent(
    uow: UnitOfWork,
    shop: Shop,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str,
    queues: tuple[str, ...] | list[str],
    now: datetime,
    max_concurrent: int = 5,
) -> Agent:
    if role not in ROLES:
        raise Conflict(f"Expected role one of {ROLES}, but got {role!r}.", code="bad_role", status=422)
    if not 1 <= max_concurrent <= 50:
        raise Conflict("max_concurrent must be 1-50.", code="bad_limit", status=422)
    limits = (200000, 2000000) if role in ("supervisor", "admin") else (5000, 50000)
    agent = Agent(
        shop_id=shop.id,
        username=username,
        password_hash=await asyncio.to_thread(hash_password, password),
        display_name=display_name,
        role=role,
        max_concurrent=max_concurrent,
        payout_limit_cents=limits[0],
        payout_daily_cents=limits[1],
        created_at=now,
    )
    uow.session.add(agent)
    await uow.session.flush()
    for q in queues:
        uow.session.add(AgentQueue(agent_id=agent.id, queue=q))
    return agent


async def seed_demo(uow: UnitOfWork, now: datetime) -> bool:
    """Create the demo shop of PROTOCOL.md once; later calls change nothing."""
    if (await uow.session.execute(select(Shop.id).where(Shop.slug == DEMO_SLUG))).first():
        return False
    new = await create_shop(
        uow, slug=DEMO_SLUG, name="Homing 演示店", admin_username="admin",
        admin_password=DEMO_PASSWORD, now=now, buyer_secret=DEMO_BUYER_SECRET, api_key=DEMO_API_KEY,
    )
    for username, display, role, queues in DEMO_AGENTS:
        if username == "admin":
            continue
        await create_agent(
            uow, new.shop, username=username, password=DEMO_PASSWORD, role=role,
            display_name=display, queues=queues, now=now,
        )
    return True


@dataclass
class LoginResult:
    token: str | None
    agent: Agent | None
    throttled: bool = False


async def login(
    uow: UnitOfWork,
    *,
    shop_slug: str,
    username: str,
    password: str,
    address: str,
    now: datetime,
    max_failures: int,
    window_s: int,
    session_ttl: timedelta,
) -> LoginResult:
    """Check a password, throttled per (account, address); a failure is recorded and committed."""
    s = uow.session
    since = now - timedelta(seconds=window_s)
    failures = (
        await s.execute(
            select(func.count()).select_from(LoginFailure).where(
                LoginFailure.shop_slug == shop_slug,
                LoginFailure.username == username,
                LoginFailure.address == address,
                LoginFailure.at > since,
            )
        )
    ).scalar() or 0
    if failures >= max_failures:
        return LoginResult(None, None, throttled=True)
    agent = (
        await s.execute(
            select(Agent).join(Shop, Shop.id == Agent.shop_id).where(
                Shop.slug == shop_slug, Agent.username == username
            )
        )
    ).scalars().first()
    ok = await asyncio.to_thread(verify_password, agent.password_hash if agent else None, password)
    if not ok or agent is None:
        s.add(LoginFailure(shop_slug=shop_slug, username=username, address=address, at=now))
        # Old failures are of no use; keep the table small.
        await s.execute(delete(LoginFailure).where(LoginFailure.at < now - timedelta(days=1)))
        return LoginResult(None, None)
    token = new_token()
    s.add(AgentSession(token_hash=token_hash(token), agent_id=agent.id, created_at=now,
                       expires_at=now + session_ttl))
    return LoginResult(token, agent)


async def logout(uow: UnitOfWork, token: str) -> None:
    await uow.session.execute(delete(AgentSession).where(AgentSession.token_hash == token_hash(token)))


async def touch_buyer(uow: UnitOfWork, *, shop_id: str, buyer_id: str, name: str, age: int | None,
                      vip: int | None, now: datetime) -> Buyer:
    """Record the buyer as their storefront's signed identity describes them now."""
    buyer = await uow.session.get(Buyer, (shop_id, buyer_id))
    if buyer is None:
        buyer = Buyer(shop_id=shop_id, id=buyer_id, name=name, age=age, vip=vip,
                      first_seen_at=now, last_seen_at=now)
        uow.session.add(buyer)
    else:
        buyer.name, buyer.age, buyer.vip, buyer.last_seen_at = name, age, vip, now
    return buyer


async def set_elder_mode(uow: UnitOfWork, *, shop_id: str, buyer_id: str, on: bool) -> None:
    buyer = await uow.session.get(Buyer, (shop_id, buyer_id))
    if buyer is None:
        raise NotAuthenticated("Unknown buyer.")
    buyer.elder_mode = on
