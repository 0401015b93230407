"""Shop and agent state changes: create shops, add and change agents, log in and out."""

from __future__ import annotations

import asyncio
import secrets
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.db import Database, UnitOfWork, dialect_insert
from app.errors import BadInput, Conflict, NotAuthenticated, NotFound
from app.realtime import sessions as ended
from app.routing import actions as routing
from app.routing import queues as routing_queues
from app.routing.models import DEFAULT_QUEUES, AgentQueue, Queue
from app.shops import service as shop_service
from app.shops.identities import BuyerIdentity
from app.shops.models import Agent, AgentSession, Buyer, LoginFailure, Shop
from app.shops.roles import ADMIN, ROLES, is_staff
from app.shops.security import hash_password, new_token, token_hash, verify_password
from app.shops.service import AgentWithQueues

# The demo shop's slug (app/demo.py). Reserved: only the demo seed creates a shop by that
# name, so `--demo`'s published passwords and buyer secret never meet a real shop.
DEMO_SLUG = "demo"


@dataclass
class NewShop:
    shop: Shop
    buyer_secret: str
    api_key: str
    admin_id: str


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
    demo_seed: bool = False,
) -> NewShop:
    """Store a shop and its admin. The slug `demo` (in any case) is the demo seed's alone."""
    s = uow.session
    if not slug or len(slug) > 64 or not slug.replace("-", "").replace("_", "").isalnum():
        raise Conflict(
            "A shop slug is 1-64 letters, digits, '-' or '_'.", code="bad_slug", status=422
        )
    if slug.lower() == DEMO_SLUG and not (demo_seed and slug == DEMO_SLUG):
        raise Conflict(
            f"The shop slug {slug!r} is reserved for the demo shop (homing serve --demo); choose another.",
            code="slug_reserved",
            status=422,
        )
    if (await s.execute(select(col(Shop.id)).where(col(Shop.slug) == slug))).first():
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
    admin = await create_agent(
        uow,
        shop,
        username=admin_username,
        password=admin_password,
        role=ADMIN,
        display_name=admin_username,
        queues=(),
        now=now,
    )
    return NewShop(shop, buyer_secret, api_key, admin.id)


# Agent limits as stored (the payout columns are 32-bit integers).
MAX_CONCURRENT_RANGE = (1, 50)
PAYOUT_CENTS_MAX = 2**31 - 1
USERNAME_MAX = 64
DISPLAY_NAME_MAX = 100
PASSWORD_MAX = 200


@dataclass(frozen=True)
class AgentFields:
    """What an admin sets on an agent. None leaves a field as it is (or at its default)."""

    username: str | None = None
    password: str | None = None
    display_name: str | None = None
    role: str | None = None
    queues: tuple[str, ...] | None = None
    max_concurrent: int | None = None
    payout_limit_cents: int | None = None
    payout_daily_cents: int | None = None
    active: bool | None = None


def check_agent_fields(fields: AgentFields) -> None:
    """Refuse values no agent may have (422); queue names are checked against the shop separately."""
    if fields.username is not None and not _is_name(fields.username, USERNAME_MAX):
        raise BadInput(
            f"A username is 1-{USERNAME_MAX} printable characters without spaces, "
            f"but got {fields.username!r}.",
            code="bad_username",
        )
    if fields.display_name is not None and not (
        _is_name(fields.display_name, DISPLAY_NAME_MAX, spaces=True)
    ):
        raise BadInput(
            f"A display name is 1-{DISPLAY_NAME_MAX} printable characters.", code="bad_display_name"
        )
    if fields.password is not None and not 1 <= len(fields.password) <= PASSWORD_MAX:
        raise BadInput(f"A password is 1-{PASSWORD_MAX} characters.", code="bad_password")
    if fields.active is not None and not isinstance(fields.active, bool):
        raise BadInput(f"active must be true or false, but got {fields.active!r}.", code="invalid")
    if fields.role is not None and fields.role not in ROLES:
        raise BadInput(
            f"Expected role one of {', '.join(ROLES)}, but got {fields.role!r}.", code="bad_role"
        )
    low, high = MAX_CONCURRENT_RANGE
    if fields.max_concurrent is not None and not _is_int_in(fields.max_concurrent, low, high):
        raise BadInput(
            f"max_concurrent must be {low}-{high}, but got {fields.max_concurrent!r}.",
            code="bad_limit",
        )
    for name in ("payout_limit_cents", "payout_daily_cents"):
        value = getattr(fields, name)
        if value is not None and not _is_int_in(value, 0, PAYOUT_CENTS_MAX):
            raise BadInput(
                f"{name} must be whole cents from 0 to {PAYOUT_CENTS_MAX}, but got {value!r}.",
                code="bad_payout_limit",
            )


def _is_name(value: object, max_len: int, *, spaces: bool = False) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= max_len or not value.isprintable():
        return False
    return value == value.strip() if spaces else not any(c.isspace() for c in value)


def _is_int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def default_payout_limits(role: str) -> tuple[int, int]:
    """(per payout, per day) in cents: agent ¥50 / ¥500; supervisor and admin ¥2,000 / ¥20,000."""
    return (200000, 2000000) if is_staff(role) else (5000, 50000)


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
    payout_limit_cents: int | None = None,
    payout_daily_cents: int | None = None,
) -> Agent:
    """Store a new agent (password hashed off the event loop). Queue names are taken as given."""
    check_agent_fields(
        AgentFields(
            role=role,
            max_concurrent=max_concurrent,
            payout_limit_cents=payout_limit_cents,
            payout_daily_cents=payout_daily_cents,
        )
    )
    limits = default_payout_limits(role)
    agent = Agent(
        shop_id=shop.id,
        username=username,
        password_hash=await asyncio.to_thread(hash_password, password),
        display_name=display_name,
        role=role,
        max_concurrent=max_concurrent,
        payout_limit_cents=limits[0] if payout_limit_cents is None else payout_limit_cents,
        payout_daily_cents=limits[1] if payout_daily_cents is None else payout_daily_cents,
        created_at=now,
    )
    uow.session.add(agent)
    await uow.session.flush()
    for q in queues:
        uow.session.add(AgentQueue(agent_id=agent.id, queue=q))
    return agent


async def add_agent(
    uow: UnitOfWork, shop_id: str, fields: AgentFields, now: datetime
) -> AgentWithQueues:
    """An admin adds an agent: every field checked, then stored; a taken username is `409 agent_exists`."""
    if fields.username is None or fields.password is None:
        raise BadInput("A new agent needs a username and a password.", code="bad_request")
    check_agent_fields(fields)
    s = uow.session
    shop = await s.get(Shop, shop_id)
    if shop is None:
        raise NotFound("No such shop.")
    queues = sorted(set(fields.queues or ()))
    await routing_queues.check_queues_exist(s, shop_id, queues)
    role = fields.role or "agent"
    try:
        # The unique (shop, username) constraint decides races between two admins.
        async with s.begin_nested():
            agent = await create_agent(
                uow,
                shop,
                username=fields.username,
                password=fields.password,
                role=role,
                display_name=fields.display_name or fields.username,
                queues=queues,
                now=now,
                max_concurrent=5 if fields.max_concurrent is None else fields.max_concurrent,
                payout_limit_cents=fields.payout_limit_cents,
                payout_daily_cents=fields.payout_daily_cents,
            )
    except IntegrityError as exc:
        raise Conflict(
            f"The shop already has an agent {fields.username!r}.", code="agent_exists"
        ) from exc
    _ask_dispatch(uow, shop_id, queues)
    return AgentWithQueues(agent, queues)


async def update_agent(
    uow: UnitOfWork,
    shop_id: str,
    agent_id: str,
    fields: AgentFields,
    *,
    now: datetime,
    keep_token: str | None = None,
) -> AgentWithQueues:
    """An admin changes an agent of their shop; fields left None stay as they are.

    A new password ends the agent's sessions, except `keep_token` (the admin's own,
    when they change their own password). A new role keeps the sessions but closes the
    agent's sockets, so each opens again as the new role. Deactivating ends every
    session and hands the agent's open conversations back to the queues. The shop never
    loses its last active admin. Status and active_count are routing's and are never
    written here (deactivation goes through routing's own requeue).
    """
    check_agent_fields(fields)
    s = uow.session
    agent = await shop_service.agent_of_shop(s, shop_id, agent_id)
    role_changed = fields.role is not None and fields.role != agent.role
    deactivated = fields.active is False and agent.active
    will_admin = (fields.role or agent.role) == ADMIN and (
        agent.active if fields.active is None else fields.active
    )
    if agent.role == ADMIN and agent.active and not will_admin:
        await _keep_an_admin(uow, shop_id, agent.id)
    for name in (
        "display_name",
        "role",
        "max_concurrent",
        "payout_limit_cents",
        "payout_daily_cents",
        "active",
    ):
        value = getattr(fields, name)
        if value is not None:
            setattr(agent, name, value)
    if fields.username is not None and fields.username != agent.username:
        agent.username = fields.username
        try:
            async with s.begin_nested():
                await s.flush()
        except IntegrityError as exc:
            raise Conflict(
                f"The shop already has an agent {fields.username!r}.", code="agent_exists"
            ) from exc
    if deactivated:
        await s.execute(delete(AgentSession).where(col(AgentSession.agent_id) == agent.id))
        await s.flush()
        await routing.requeue_agent(uow, agent.id, now)
        uow.emit(*ended.revocation(agent.id, ended.DEACTIVATED))
    if role_changed:
        uow.emit(*ended.revocation(agent.id, ended.ROLE_CHANGED))
    if fields.password is not None:
        agent.password_hash = await asyncio.to_thread(hash_password, fields.password)
        keep = token_hash(keep_token) if keep_token else None
        revoke = delete(AgentSession).where(col(AgentSession.agent_id) == agent.id)
        if keep:
            revoke = revoke.where(col(AgentSession.token_hash) != keep)
        await s.execute(revoke)
        uow.emit(*ended.revocation(agent.id, ended.PASSWORD_CHANGED, keep=keep))
    if fields.queues is not None:
        queues = await set_agent_queues(uow, agent, fields.queues)
    else:
        queues = (await shop_service.queues_of_agents(s, [agent.id]))[agent.id]
        if fields.max_concurrent is not None:
            _ask_dispatch(uow, shop_id, queues)  # more room may serve someone waiting
    await s.flush()
    if deactivated:
        await s.refresh(agent)  # status and active_count as routing left them
    return AgentWithQueues(agent, queues)


async def set_agent_queues(
    uow: UnitOfWork, agent: Agent, queues: tuple[str, ...] | list[str]
) -> list[str]:
    """Make `queues` exactly the ones the agent serves; unknown names are `422 unknown_queue`."""
    s = uow.session
    wanted = set(queues)
    await routing_queues.check_queues_exist(s, agent.shop_id, wanted)
    current = set((await shop_service.queues_of_agents(s, [agent.id]))[agent.id])
    if current - wanted:
        await s.execute(
            delete(AgentQueue).where(
                col(AgentQueue.agent_id) == agent.id, col(AgentQueue.queue).in_(current - wanted)
            )
        )
    s.add_all(AgentQueue(agent_id=agent.id, queue=q) for q in sorted(wanted - current))
    await s.flush()
    _ask_dispatch(uow, agent.shop_id, sorted(wanted - current))
    return sorted(wanted)


async def _keep_an_admin(uow: UnitOfWork, shop_id: str, leaving_id: str) -> None:
    """Refuse to demote or deactivate the shop's only active admin (`409 last_admin`).

    The shop's active admin rows are locked, so two admins demoting (or deactivating)
    each other at once cannot both succeed: the second re-reads the first's change and
    is refused.
    """
    rows = await uow.session.execute(
        select(col(Agent.id))
        .where(col(Agent.shop_id) == shop_id, col(Agent.role) == ADMIN, col(Agent.active))
        .with_for_update()
    )
    if not [a for (a,) in rows if a != leaving_id]:
        raise Conflict("The shop must keep at least one active admin.", code="last_admin")


def _ask_dispatch(uow: UnitOfWork, shop_id: str, queues: list[str]) -> None:
    """After commit, let routing hand waiting conversations to the agent's new room."""
    for queue in queues:
        uow.signal("dispatch", (shop_id, queue))


@dataclass
class LoginResult:
    token: str | None
    agent: Agent | None
    throttled: bool = False
    inactive: bool = False  # the right password, but an admin has deactivated the agent


@dataclass(frozen=True)
class LoginLimits:
    """Failed logins allowed per window: per (account, address), and per address overall."""

    account_failures: int
    address_failures: int
    window_s: int


@dataclass(frozen=True)
class LoginClaim:
    """An attempt let through the throttle: its row in login_failures and who it names."""

    failure_id: int
    agent_id: str | None
    password_hash: str | None


# PostgreSQL advisory-lock class of the login throttle (the two-key form, so the keys
# never meet the one-key locks of routing and migrations).
_LOGIN_LOCK_CLASS = 7201002


async def claim_login_attempt(
    uow: UnitOfWork,
    *,
    shop_slug: str,
    username: str,
    address: str,
    now: datetime,
    limits: LoginLimits,
) -> LoginClaim | None:
    """Let one attempt through the throttle, or None when its account or address is throttled.

    The attempt is recorded as a failure before its password is checked, and the
    caller commits that before checking: a burst of concurrent attempts each counts the
    ones before it, so no more than the limits ever reach the password check. The count
    and the insert are serialised per address (PostgreSQL: an advisory lock on it;
    SQLite: the one writer), which is what both limits are keyed on.
    """
    s = uow.session
    if uow.is_postgres:
        key = zlib.crc32(address.encode()) - 2**31
        await s.execute(
            text("SELECT pg_advisory_xact_lock(:c, :k)"), {"c": _LOGIN_LOCK_CLASS, "k": key}
        )
    since = now - timedelta(seconds=limits.window_s)
    same_account = (col(LoginFailure.shop_slug) == shop_slug) & (
        col(LoginFailure.username) == username
    )
    row = (
        await s.execute(
            select(func.count(), func.count().filter(same_account))
            .select_from(LoginFailure)
            .where(
                col(LoginFailure.address) == address,
                col(LoginFailure.at) > since,
            )
        )
    ).one()
    from_address, for_account = row[0] or 0, row[1] or 0
    if for_account >= limits.account_failures or from_address >= limits.address_failures:
        return None
    failure = LoginFailure(shop_slug=shop_slug, username=username, address=address, at=now)
    s.add(failure)
    agent = (
        await s.execute(
            select(col(Agent.id), col(Agent.password_hash))
            .join(Shop, col(Shop.id) == col(Agent.shop_id))
            .where(col(Shop.slug) == shop_slug, col(Agent.username) == username)
        )
    ).first()
    await s.flush()
    assert failure.id is not None
    return LoginClaim(
        failure.id, agent.id if agent else None, agent.password_hash if agent else None
    )


async def finish_login(
    uow: UnitOfWork, claim: LoginClaim, *, ok: bool, now: datetime, session_ttl: timedelta
) -> LoginResult:
    """After the password check: a right password takes back its failure and opens a session."""
    s = uow.session
    if not ok or claim.agent_id is None:
        # Old failures are of no use; keep the table small.
        await s.execute(delete(LoginFailure).where(col(LoginFailure.at) < now - timedelta(days=1)))
        return LoginResult(None, None)
    await s.execute(delete(LoginFailure).where(col(LoginFailure.id) == claim.failure_id))
    agent = await s.get(Agent, claim.agent_id)
    if agent is None or agent.password_hash != claim.password_hash:
        # Deleted, or given a new password (which ends its sessions), while this one was checked.
        return LoginResult(None, None)
    if not agent.active:
        return LoginResult(None, None, inactive=True)
    token = new_token()
    s.add(
        AgentSession(
            token_hash=token_hash(token),
            agent_id=agent.id,
            created_at=now,
            expires_at=now + session_ttl,
        )
    )
    return LoginResult(token, agent)


async def login(
    db: Database,
    *,
    shop_slug: str,
    username: str,
    password: str,
    address: str,
    now: datetime,
    limits: LoginLimits,
    session_ttl: timedelta,
) -> LoginResult:
    """Check a password, throttled per (account, address) and per address across all accounts.

    Two short transactions around the password check, which runs off the event loop
    and outside any transaction (an Argon2 hash takes tens of milliseconds; holding
    SQLite's write lock that long would stall every writer). A spree from one address
    never locks the account for its owner elsewhere: both limits are keyed on the address.
    """
    claim: LoginClaim | None = await db.run(
        claim_login_attempt,
        shop_slug=shop_slug,
        username=username,
        address=address,
        now=now,
        limits=limits,
    )
    if claim is None:
        return LoginResult(None, None, throttled=True)
    ok = await asyncio.to_thread(verify_password, claim.password_hash, password)
    result: LoginResult = await db.run(finish_login, claim, ok=ok, now=now, session_ttl=session_ttl)
    return result


async def logout(uow: UnitOfWork, token: str) -> None:
    """End this session; the sockets opened with it close on every node."""
    digest = token_hash(token)
    agent_id = (
        await uow.session.execute(
            delete(AgentSession)
            .where(col(AgentSession.token_hash) == digest)
            .returning(col(AgentSession.agent_id))
        )
    ).scalar()
    if agent_id is not None:
        uow.emit(*ended.revocation(agent_id, ended.LOGOUT, session=digest))


async def touch_buyer(
    uow: UnitOfWork,
    *,
    shop_id: str,
    buyer_id: str,
    name: str,
    age: int | None,
    vip: int | None,
    now: datetime,
) -> Buyer:
    """Record the buyer as their storefront's signed identity describes them now."""
    buyer = await uow.session.get(Buyer, (shop_id, buyer_id))
    if buyer is None:
        buyer = Buyer(
            shop_id=shop_id,
            id=buyer_id,
            name=name,
            age=age,
            vip=vip,
            first_seen_at=now,
            last_seen_at=now,
        )
        uow.session.add(buyer)
    else:
        buyer.name, buyer.age, buyer.vip, buyer.last_seen_at = name, age, vip, now
    return buyer


async def touch_buyers(uow: UnitOfWork, buyers: list[BuyerIdentity], now: datetime) -> None:
    """Record many buyers as their signed identities describe them now, in one statement:
    new ones are inserted, known ones get the token's name, age and VIP level and are
    seen now (their elder mode and first sighting are the record's and stay). The last
    word for a buyer named twice wins, as if written one after another."""
    latest = {(b.shop_id, b.buyer_id): b for b in buyers}
    if not latest:
        return
    insert = dialect_insert(uow.dialect, Buyer)
    rows = [
        {
            "shop_id": b.shop_id,
            "id": b.buyer_id,
            "name": b.name,
            "age": b.age,
            "vip": b.vip,
            "elder_mode": False,
            "first_seen_at": now,
            "last_seen_at": now,
        }
        for _key, b in sorted(latest.items())  # one lock order for every writer (PostgreSQL)
    ]
    for i in range(0, len(rows), 500):
        stmt = insert.values(rows[i : i + 500])
        await uow.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["shop_id", "id"],
                set_={
                    "name": stmt.excluded.name,
                    "age": stmt.excluded.age,
                    "vip": stmt.excluded.vip,
                    "last_seen_at": stmt.excluded.last_seen_at,
                },
            )
        )


async def set_elder_mode(uow: UnitOfWork, *, shop_id: str, buyer_id: str, on: bool) -> None:
    buyer = await uow.session.get(Buyer, (shop_id, buyer_id))
    if buyer is None:
        raise NotAuthenticated("Unknown buyer.")
    buyer.elder_mode = on
