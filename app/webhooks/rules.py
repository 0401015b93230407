"""Webhook rules as pure functions: event types, the signature, the retry schedule, which
URLs and addresses an endpoint may have, and how a secret is shown."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from app.errors import BadInput

# Every event a shop may subscribe to (README "Webhooks" says what each carries).
EVENT_TYPES = (
    "payout.paid",
    "payout.rejected",
    "coupon.issued",
    "coupon.claimed",
    "conversation.closed",
    "recall.opted_out",
    "aftersale.requested",
    "aftersale.decided",
)
SIGNATURE_HEADER = "Homing-Signature"
# Failed deliveries are retried for this long from the event (or its latest resend).
RETRY_WINDOW = timedelta(hours=24)
MAX_URL_CHARS = 2000
MAX_ENDPOINTS_PER_SHOP = 10
SECRET_MIN_CHARS, SECRET_MAX_CHARS = 16, 200
ERROR_CHARS = 300


def check_events(events: list[str]) -> list[str]:
    """The subscribed types, each once, in the table's order; 422 for none or an unknown one."""
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise BadInput(
            f"Unknown event type {unknown[0]!r}; expected some of {', '.join(EVENT_TYPES)}.",
            code="unknown_event",
        )
    if not events:
        raise BadInput("Subscribe to at least one event type.", code="unknown_event")
    return [e for e in EVENT_TYPES if e in events]


def check_secret(secret: str) -> str:
    if not SECRET_MIN_CHARS <= len(secret) <= SECRET_MAX_CHARS or not secret.isprintable():
        raise BadInput(
            f"A webhook secret is {SECRET_MIN_CHARS} to {SECRET_MAX_CHARS} printable characters.",
            code="bad_secret",
        )
    return secret


def secret_hint(secret: str) -> str:
    """How a stored secret is shown after creation: enough to tell two apart, not to sign."""
    return f"…{secret[-4:]}"


def url_host(url: str) -> str:
    """The host an endpoint URL names; 422 unless it is an absolute http(s) URL with a host."""
    if len(url) > MAX_URL_CHARS:
        raise BadInput(f"A webhook URL is at most {MAX_URL_CHARS} characters.", code="bad_url")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise BadInput("That is not a valid URL.", code="bad_url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise BadInput("A webhook URL must be http:// or https:// with a host.", code="bad_url")
    return host


def refused_address(address: str) -> bool:
    """Whether an endpoint may not be at this IP: anything not globally routable (loopback,
    private, link-local, shared, reserved, multicast, unspecified), IPv4-mapped IPv6 too."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def next_attempt(
    window_started_at: datetime, attempts: int, failed_at: datetime, base_s: float
) -> datetime | None:
    """When to try again after the `attempts`th failed attempt (base, 2×base, 4×base, …);
    None once that would fall past the 24-hour window: the delivery is a dead letter."""
    delay = timedelta(seconds=base_s * 2 ** min(attempts - 1, 40))
    when = failed_at + delay
    return when if when <= window_started_at + RETRY_WINDOW else None


def delivered(status_code: int) -> bool:
    return 200 <= status_code < 300


def body_of(event_id: str, event_type: str, created_at: datetime, shop: str, data: Any) -> bytes:
    """The JSON a receiver gets: built from the stored event only, so every retry sends the
    same bytes (and the same `id`)."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "created_at": created_at.isoformat(),
            "shop": shop,
            "data": data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`Homing-Signature`: `t=UNIX_SECONDS,v1=HEX`, HEX the HMAC-SHA256 of `"{t}.{body}"`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def short_error(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def coupon_data(
    *,
    coupon_id: str,
    source: str,
    buyer_id: str,
    title: str,
    amount_cents: int,
    min_spend_cents: int,
    issued_at: datetime,
    **more: Any,
) -> dict[str, Any]:
    """`coupon.issued`'s data, the same shape whichever domain issued it (`source`:
    `late_shipment`, `recall` or `giveaway`; `more`: the order, campaign or giveaway)."""
    return {
        "coupon_id": coupon_id,
        "source": source,
        "buyer_id": buyer_id,
        "title": title,
        "amount_cents": amount_cents,
        "min_spend_cents": min_spend_cents,
        "issued_at": issued_at.isoformat(),
        **more,
    }
