"""Who is asking: agent sessions, signed buyer identities and shop API keys."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.errors import NotAuthenticated, NotFound
from app.routing.models import AgentQueue
from app.shops.identities import BuyerIdentity
from app.shops.models import Agent, AgentSession, Buyer, Shop
from app.shops.security import token_hash

MAX_BUYER_ID = 128
DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class AgentWithQueues:
    """An agent as the admin console sees them: the stored row and the queues they serve."""

    agent: Agent
    queues: list[str]


@dataclass(frozen=True)
class SignedIn:
    """An agent's login as it stands: who, the session's token hash, and when it expires."""

    agent: Agent
    token_hash: str
    expires_at: datetime


async def session_of(session: AsyncSession, digest: str, now: datetime) -> SignedIn | None:
    """The login with this token hash if it stands now: not ended, not expired, its agent active."""
    row = await session.execute(
        select(Agent, col(AgentSession.expires_at))
        .join(AgentSession, col(AgentSession.agent_id) == col(Agent.id))
        .where(col(AgentSession.token_hash) == digest)
    )
    found = row.first()
    if found is None or found[1] <= now or not found[0].active:
        return None
    return SignedIn(found[0], digest, found[1])


async def signed_in(session: AsyncSession, token: str | None, now: datetime) -> SignedIn:
    if not token:
        raise NotAuthenticated("Log in first.")
    found = await session_of(session, token_hash(token), now)
    if found is None:
        raise NotAuthenticated("Your session has ended; log in again.")
    return found


async def agent_for_token(session: AsyncSession, token: str | None, now: datetime) -> Agent:
    return (await signed_in(session, token, now)).agent


def buyer_token_shop(token: str | None) -> str:
    """The shop slug a buyer JWT names, read before its signature is checked (which needs
    that shop's secret): shape only, nothing here is believed yet."""
    if not token:
        raise NotAuthenticated("A signed buyer token is required.")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise NotAuthenticated(f"Malformed buyer token: {exc}") from exc
    if header.get("alg") != "HS256":
        raise NotAuthenticated("Buyer tokens must be signed with HS256.")
    slug = unverified.get("shop")
    if not isinstance(slug, str):
        raise NotAuthenticated("The buyer token names no shop.")
    return slug


@dataclass(frozen=True)
class BuyerKey:
    """What verifying a buyer token needs of its shop (read once for many tokens)."""

    id: str
    slug: str
    buyer_secret: str


def verified_buyer(token: str, shop: BuyerKey | None, now: datetime) -> BuyerIdentity:
    """The identity a buyer JWT (HS256) signed with its shop's buyer secret states, checked
    against `now`; `elder_mode` is the record's, not the token's: the caller sets it."""
    if shop is None:
        raise NotAuthenticated("Unknown shop.")
    try:
        # PyJWT compares signatures with hmac.compare_digest (constant time).
        claims = jwt.decode(
            token,
            shop.buyer_secret,
            algorithms=["HS256"],
            # `exp` is checked against our injected clock below, so tests can move time.
            options={"require": ["sub", "shop", "exp"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise NotAuthenticated(f"Invalid buyer token: {exc}") from exc
    if claims.get("shop") != shop.slug:
        raise NotAuthenticated("The buyer token names another shop.")
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now.timestamp():
        raise NotAuthenticated("The buyer token has expired.")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_BUYER_ID or not sub.isprintable():
        raise NotAuthenticated("The buyer id (sub) must be 1-128 printable characters.")
    age, vip = claims.get("age"), claims.get("vip")
    return BuyerIdentity(
        shop_id=shop.id,
        shop_slug=shop.slug,
        buyer_id=sub,
        name=str(claims.get("name") or ""),
        age=age if isinstance(age, int) else None,
        vip=vip if isinstance(vip, int) else None,
    )


async def buyer_keys(session: AsyncSession, slugs: Iterable[str]) -> dict[str, BuyerKey]:
    """The shops with these slugs, as token verification needs them (one query)."""
    wanted = sorted(set(slugs))
    if not wanted:
        return {}
    rows = await session.execute(
        select(col(Shop.id), col(Shop.slug), col(Shop.buyer_secret)).where(
            col(Shop.slug).in_(wanted)
        )
    )
    return {slug: BuyerKey(id, slug, secret) for id, slug, secret in rows.all()}


@dataclass(frozen=True)
class BuyerRecord:
    """What is stored of a buyer that a socket's opening compares or shows."""

    name: str
    age: int | None
    vip: int | None
    elder_mode: bool
    last_seen_at: datetime


async def buyer_records(
    session: AsyncSession, shop_id: str, buyer_ids: Iterable[str]
) -> dict[str, BuyerRecord]:
    """The stored records of these buyers of one shop (one query per 500)."""
    ids = sorted(set(buyer_ids))
    found: dict[str, BuyerRecord] = {}
    for i in range(0, len(ids), 500):
        rows = await session.execute(
            select(
                col(Buyer.id),
                col(Buyer.name),
                col(Buyer.age),
                col(Buyer.vip),
                col(Buyer.elder_mode),
                col(Buyer.last_seen_at),
            ).where(col(Buyer.shop_id) == shop_id, col(Buyer.id).in_(ids[i : i + 500]))
        )
        for bid, name, age, vip, elder, seen in rows.all():
            found[bid] = BuyerRecord(name, age, vip, bool(elder), seen)
    return found


async def buyer_for_token(session: AsyncSession, token: str | None, now: datetime) -> BuyerIdentity:
    """Verify a storefront-signed buyer JWT (HS256) with its shop's buyer secret."""
    slug = buyer_token_shop(token)
    assert token is not None
    shop = (await buyer_keys(session, [slug])).get(slug)
    buyer = verified_buyer(token, shop, now)
    elder_mode = (
        await session.execute(
            select(col(Buyer.elder_mode)).where(
                col(Buyer.shop_id) == buyer.shop_id, col(Buyer.id) == buyer.buyer_id
            )
        )
    ).scalar()
    return replace(buyer, elder_mode=bool(elder_mode))


async def shop_for_api_key(session: AsyncSession, key: str | None) -> Shop:
    if not key:
        raise NotAuthenticated("The shop API key is required.")
    digest = token_hash(key)
    shop = (
        (await session.execute(select(Shop).where(col(Shop.api_key_hash) == digest)))
        .scalars()
        .first()
    )
    if shop is None or not hmac.compare_digest(shop.api_key_hash, digest):
        raise NotAuthenticated("Unknown API key.")
    return shop


async def queues_of_agents(session: AsyncSession, agent_ids: Iterable[str]) -> dict[str, list[str]]:
    """Each agent's queues, sorted; agents serving none map to []."""
    ids = list(agent_ids)
    found: dict[str, list[str]] = {agent_id: [] for agent_id in ids}
    if ids:
        rows = await session.execute(
            select(col(AgentQueue.agent_id), col(AgentQueue.queue))
            .where(col(AgentQueue.agent_id).in_(ids))
            .order_by(col(AgentQueue.queue))
        )
        for agent_id, queue in rows:
            found[agent_id].append(queue)
    return found


async def agents_of_shop(session: AsyncSession, shop_id: str) -> list[AgentWithQueues]:
    rows = await session.execute(
        select(Agent)
        .where(col(Agent.shop_id) == shop_id)
        .order_by(col(Agent.created_at), col(Agent.username))
    )
    agents = list(rows.scalars())
    queues = await queues_of_agents(session, (a.id for a in agents))
    return [AgentWithQueues(a, queues[a.id]) for a in agents]


async def agent_of_shop(session: AsyncSession, shop_id: str, agent_id: str) -> Agent:
    """The shop's agent; another shop's id is answered as if it did not exist."""
    agent = await session.get(Agent, agent_id)
    if agent is None or agent.shop_id != shop_id:
        raise NotFound("No such agent in this shop.")
    return agent


def shop_zone(shop: Shop) -> ZoneInfo:
    """The shop's time zone; a name this machine does not know falls back to the default."""
    try:
        return ZoneInfo(shop.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


# A buyer's last_seen_at is kept to this resolution: reconnecting within it writes nothing.
LAST_SEEN_RESOLUTION = timedelta(minutes=10)


def record_is_current(record: BuyerRecord | None, buyer: BuyerIdentity, now: datetime) -> bool:
    """True when the stored buyer already says what the token says, seen recently.

    Then a reconnect needs no write (`touch_buyers`): during a promotion's reconnect storm
    thousands of sockets open at once, and each write waits for the one writer.
    """
    if record is None:
        return False
    return (record.name, record.age, record.vip) == (
        buyer.name,
        buyer.age,
        buyer.vip,
    ) and now - record.last_seen_at < LAST_SEEN_RESOLUTION
