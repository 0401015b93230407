"""Browser-facing protections: security headers, the CSRF token, socket origins, log masking.

Who authenticates how (README "Security"):
- API clients send `Authorization: Bearer` (agent session token, buyer JWT, shop API key).
  A header is never sent by a browser on its own, so these requests need nothing more.
- The pages use the HttpOnly session cookie, which a browser attaches to requests that
  other sites start. So a cookie-authenticated request that changes state must also carry
  the session's CSRF token (`X-CSRF-Token`, or the `csrf_token` field of a plain form),
  and a cookie-authenticated socket must come from a page of this server (`Origin`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "homing_session"  # HttpOnly, SameSite=Lax; Secure per HOMING_COOKIE_SECURE
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# ---- CSRF ----------------------------------------------------------------------------------


def csrf_token_for(session_token: str) -> str:
    """The CSRF token bound to one session: an HMAC keyed by the session token.

    A page of ours learns it from the server; another site cannot compute it without the
    session token, which the HttpOnly cookie keeps from every script. It changes with the
    session and needs no storage.
    """
    return hmac.new(session_token.encode(), b"homing-csrf-v1", hashlib.sha256).hexdigest()


def csrf_ok(session_token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token_for(session_token), sent or "")


# ---- sockets ------------------------------------------------------------------------------


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a socket's `Origin` names the host it connected to (a page of this server).

    Only host and port are compared: behind a TLS-terminating proxy the page is https
    while the connection reaching us is plain.
    """
    if not origin or not host:
        return False
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.lower()


# ---- cookies ------------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: addresses only this machine can reach."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# ---- headers ------------------------------------------------------------------------------

HTMX_CDN_ORIGIN = "https://unpkg.com"


def content_security_policy(*, htmx_from_cdn: bool) -> str:
    """The pages' CSP: everything from this server, nothing inline, never framed.

    Scripts are static files (the workbench's boot data is a JSON block, which is not
    run); htmx's own indicator styles are off (templates' base.html), so no inline style
    is needed either. The storefront widget is unaffected: it runs in the shop's page,
    under the shop's policy, and reaches this server by its full address.
    """
    scripts = "'self'" + (f" {HTMX_CDN_ORIGIN}" if htmx_from_cdn else "")
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """ASGI middleware: `nosniff` and a Referrer-Policy on every answer; CSP on every page.

    Pages (HTML) also get `X-Frame-Options: DENY` for browsers older than
    `frame-ancestors`. Static files and API answers carry no CSP (it only governs
    documents), so the widget's script, stylesheet and API stay usable from any origin.
    """

    def __init__(self, app: ASGIApp, *, htmx_from_cdn: bool) -> None:
        self.app = app
        self.csp = content_security_policy(htmx_from_cdn=htmx_from_cdn)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", self.csp)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---- logs ---------------------------------------------------------------------------------

# `token=` and `ticket=` values in a query string (or anywhere in a log line).
_SECRET_PARAM = re.compile(r"(?i)\b((?:token|ticket|csrf_token)=)[^&\s\"']+")
MASK = "***"


def mask_secrets(text: str) -> str:
    return _SECRET_PARAM.sub(rf"\g<1>{MASK}", text)


class MaskTokens(logging.Filter):
    """Rewrites `token=...` to `token=***` in a record's message and its arguments.

    The arguments are masked one by one, not folded into the message, because uvicorn's
    access formatter reads them by position (client, method, path, version, status).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: mask_secrets(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install_log_masking() -> None:
    """Put `MaskTokens` on every handler configured so far (root, uvicorn's, any other)."""
    loggers: list[Any] = [logging.getLogger()]
    loggers += [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, MaskTokens) for f in handler.filters):
                handler.addFilter(MaskTokens())


def uvicorn_log_config(log_format: str = "text") -> dict[str, Any]:
    """uvicorn's own logging set-up, with `MaskTokens` on its handlers (access lines carry
    the query string, and `?token=` is how API clients and the widget open sockets).

    `log_format="json"`: its lines (access and errors) are JSON objects like ours
    (app/observability/logs.py `JsonFormatter`).
    """
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {
        **LOGGING_CONFIG,
        "filters": {"mask_tokens": {"()": MaskTokens}},
        "handlers": {
            name: {**h, "filters": ["mask_tokens"]}
            for name, h in LOGGING_CONFIG["handlers"].items()
        },
    }
    if log_format == "json":
        json_lines = {"()": "app.observability.logs.JsonFormatter"}
        config["formatters"] = {name: json_lines for name in LOGGING_CONFIG["formatters"]}
    return config
