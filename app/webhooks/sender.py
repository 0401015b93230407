"""Sending deliveries: claim due ones, POST each (signed) with httpx, record the outcome.

Runs as the dispatch job on the event loop it shares with the chat, but never in its way:
each attempt is a non-blocking request with a timeout, at most
`HOMING_WEBHOOK_CONCURRENCY` at once, and no transaction is open while a request waits
(claiming and recording are short transactions of their own). A receiver that hangs
costs a delivery slot for the timeout, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field

import httpx

from app.clock import Clock
from app.config import Settings
from app.db import Database
from app.errors import DomainError
from app.webhooks import actions, addresses, rules, service
from app.webhooks.actions import Claimed, Outcome

log = logging.getLogger(__name__)

USER_AGENT = "Homing-Webhooks/1"
# Claim rounds in one tick: a backlog drains a few batches a tick, and the tick stays short.
MAX_ROUNDS = 20


@dataclass
class Tallies:
    """What this process's dispatcher did (exported as Prometheus counters)."""

    attempts: dict[str, int] = field(
        default_factory=lambda: {"delivered": 0, "failed": 0, "dead": 0}
    )
    in_flight: int = 0
    seconds: float = 0.0  # total time spent waiting for receivers


class Sender:
    """The dispatcher of one app (one Database): its poll clock and its tallies."""

    def __init__(self) -> None:
        self.tallies = Tallies()
        self._next_poll = 0.0

    def poll_due(self, every_s: float) -> bool:
        """Whether to look for due deliveries now (every `every_s`, HOMING_WEBHOOK_POLL_S)."""
        t = time.monotonic()
        if t < self._next_poll:
            return False
        self._next_poll = t + every_s
        return True

    async def dispatch(self, db: Database, clock: Clock, settings: Settings) -> int:
        """Send what is due, batch by batch; returns how many attempts were made."""
        async with db.read() as s:
            if not await service.any_due(s, clock.now()):
                return 0  # an idle poll reads one index entry and writes nothing
        made = 0
        # The client (and its TLS context, costly to build) only once there is work: most
        # polls of an idle node find nothing.
        client: httpx.AsyncClient | None = None
        try:
            for _ in range(MAX_ROUNDS):
                claimed: list[Claimed] = await db.run(
                    actions.claim_due,
                    now=clock.now(),
                    limit=settings.webhook_concurrency,
                    timeout_s=settings.webhook_timeout_s,
                )
                if not claimed:
                    break
                if client is None:
                    client = httpx.AsyncClient(
                        timeout=settings.webhook_timeout_s,
                        # A redirect could lead anywhere, the guard's check with it.
                        follow_redirects=False,
                        headers={"User-Agent": USER_AGENT},
                    )
                await asyncio.gather(
                    *(self._attempt(db, clock, settings, client, c) for c in claimed)
                )
                made += len(claimed)
                if len(claimed) < settings.webhook_concurrency:
                    break
        finally:
            if client is not None:
                await client.aclose()
        return made

    async def _attempt(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        client: httpx.AsyncClient,
        claimed: Claimed,
    ) -> None:
        self.tallies.in_flight += 1
        try:
            outcome = await self._post(client, clock, settings, claimed)
        finally:
            self.tallies.in_flight -= 1
        self.tallies.seconds += outcome.duration_ms / 1000
        try:
            status = await db.run(
                actions.record_attempt,
                claimed,
                outcome,
                now=clock.now(),
                retry_base_s=settings.webhook_retry_base_s,
            )
        except Exception:
            # The lease runs out and the delivery is tried again: the receiver may see
            # the event twice, which its id lets it notice.
            log.exception("recording webhook delivery %s failed", claimed.delivery_id)
            return
        if status == "delivered":
            self.tallies.attempts["delivered"] += 1
        else:
            self.tallies.attempts["failed"] += 1
            if status == "dead":
                self.tallies.attempts["dead"] += 1
                log.warning("webhook delivery %s is a dead letter", claimed.delivery_id)

    async def _post(
        self, client: httpx.AsyncClient, clock: Clock, settings: Settings, claimed: Claimed
    ) -> Outcome:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        stamp = int(clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            rules.SIGNATURE_HEADER: rules.signature(claimed.secret, stamp, claimed.body),
        }
        try:
            # The whole attempt within the timeout (httpx's applies to each phase), so the
            # lease always outlasts it.
            async with asyncio.timeout(settings.webhook_timeout_s):
                # Again at every send: the name may resolve elsewhere than when accepted.
                await addresses.check_destination(
                    claimed.url, allow_private=settings.webhook_allow_private
                )
                response = await client.post(claimed.url, content=claimed.body, headers=headers)
        except DomainError as exc:
            return Outcome(None, rules.short_error(f"{exc.code}: {exc.message}"), took())
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(None, "timeout", took())
        except httpx.HTTPError as exc:
            return Outcome(None, rules.short_error(f"{type(exc).__name__}: {exc}"), took())
        error = None if rules.delivered(response.status_code) else f"HTTP {response.status_code}"
        return Outcome(response.status_code, error, took())


_SENDERS: weakref.WeakKeyDictionary[Database, Sender] = weakref.WeakKeyDictionary()


def sender_for(db: Database) -> Sender:
    """The dispatcher of the app that owns `db` (each app in a process has its own)."""
    sender = _SENDERS.get(db)
    if sender is None:
        sender = _SENDERS[db] = Sender()
    return sender
