"""Settings read from the environment, checked once at start-up."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.security import is_loopback_host

HTMX_VERSION = "2.0.4"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str = Field(default="sqlite:///homing.db", alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    # Nodes of one deployment share a channel; separate deployments (or test runs)
    # on one Redis use separate channels.
    bus_channel: str = Field(default="homing:events", alias="HOMING_BUS_CHANNEL")
    # `sharded`: a Redis channel per topic (SPUBLISH/SSUBSCRIBE), each node subscribing only
    # to the topics it holds sockets or watchers for; runs on one Redis or a Redis Cluster.
    # `channel`: every node subscribes to the one channel HOMING_BUS_CHANNEL (hears everything).
    bus_mode: Literal["sharded", "channel"] = Field(default="sharded", alias="HOMING_BUS")
    # A Redis round trip (publish, PING, connect, subscribe) slower than this counts
    # Redis as out: the bus's breaker opens, news stays on the node until Redis answers,
    # then connections resync from the database. Acks never wait for Redis either way.
    bus_publish_timeout_s: float = Field(default=0.5, gt=0, alias="HOMING_BUS_PUBLISH_TIMEOUT_S")
    # The subscriber PINGs Redis after this long without news; while Redis is out, the
    # bus tries to subscribe again at least this often.
    bus_probe_s: float = Field(default=1.0, gt=0, alias="HOMING_BUS_PROBE_S")

    # Recall campaigns: buyers sent per transaction (a worker killed mid-campaign loses at
    # most one uncommitted batch, which the next run sends).
    recall_batch: int = Field(default=1000, gt=0, le=10_000, alias="HOMING_RECALL_BATCH")

    # Chat limits (PRODUCT.md section 1).
    max_body_chars: int = Field(default=4000, alias="HOMING_MAX_BODY_CHARS")
    frames_per_second: float = Field(default=10.0, alias="HOMING_FRAMES_PER_SECOND")
    max_frame_bytes: int = Field(default=64 * 1024, alias="HOMING_MAX_FRAME_BYTES")
    upload_max_bytes: int = Field(default=5 * 1024 * 1024, alias="HOMING_UPLOAD_MAX_BYTES")

    # Identities.
    # Hours; a fraction is allowed (0.01 is 36 s), e.g. to watch sessions expire.
    session_ttl_hours: float = Field(default=24 * 7, gt=0, alias="HOMING_SESSION_TTL_HOURS")
    login_max_failures: int = Field(default=5, alias="HOMING_LOGIN_MAX_FAILURES")
    login_window_s: int = Field(default=300, alias="HOMING_LOGIN_WINDOW_S")
    # Failed logins one address may make across all usernames and shops in the window,
    # so nobody can guess at many names from one place (each account's own limit is above).
    login_address_max_failures: int = Field(default=20, alias="HOMING_LOGIN_ADDRESS_MAX_FAILURES")
    # Unset: decided by the address `homing serve` binds to (`for_host`): Secure cookies
    # unless it is loopback, where a browser on this machine talks plain HTTP to it.
    cookie_secure: bool | None = Field(default=None, alias="HOMING_COOKIE_SECURE")

    # The demo shop's storefront (`/demo/*`, which signs buyer tokens for shop `demo`)
    # exists only in demo mode; `homing serve --demo` turns it on.
    demo: bool = Field(default=False, alias="HOMING_DEMO")

    # Behind a load balancer: the proxies whose X-Forwarded-For and X-Forwarded-Proto are
    # believed (comma-separated addresses or networks, or "*"). Empty, the default: no
    # proxy is trusted and those headers are ignored; the client is the socket's peer.
    forwarded_allow_ips: str = Field(default="", alias="HOMING_FORWARDED_ALLOW_IPS")

    # Monitoring (README "Monitoring"). Set: GET /metrics wants `Authorization: Bearer <it>`
    # (else 401). Unset: /metrics answers only requests from loopback that came through no
    # proxy (no X-Forwarded-For / Forwarded header); anyone else gets 404.
    metrics_token: str | None = Field(default=None, alias="HOMING_METRICS_TOKEN")
    # `homing serve` and `homing worker` log lines: "text" (default) or "json", one object
    # a line with request_id / connection_id (app/observability/logs.py).
    log_format: Literal["text", "json"] = Field(default="text", alias="HOMING_LOG_FORMAT")

    # Pages: htmx from its CDN unless told to serve the copy under static/vendor.
    htmx_local: bool = Field(default=False, alias="HOMING_HTMX_LOCAL")

    # Conversation lifecycle (PRODUCT.md section 2).
    agent_grace_s: float = Field(default=30.0, alias="HOMING_AGENT_GRACE_S")
    presence_interval_s: float = Field(default=5.0, alias="HOMING_PRESENCE_INTERVAL_S")
    auto_close_after_s: float = Field(default=1800.0, alias="HOMING_AUTO_CLOSE_AFTER_S")

    # Background work: the routing sweep re-dispatches anything a crash left waiting.
    dispatch_sweep_s: float = Field(default=2.0, alias="HOMING_DISPATCH_SWEEP_S")
    # How long a connection waits for a missing sequence number before it reads the
    # database itself (the bus is news, the database is the record).
    gap_fill_s: float = Field(default=1.0, alias="HOMING_GAP_FILL_S")

    # Outbound webhooks (app/webhooks, README "Webhooks"). Endpoint URLs whose host resolves
    # to a loopback, private, link-local or other non-global address are refused (at
    # creation and again at every send) unless this is true (on-premises stores, tests).
    webhook_allow_private: bool = Field(default=False, alias="HOMING_WEBHOOK_ALLOW_PRIVATE")
    # The first retry of a failed delivery waits this long, each next one twice as long,
    # for 24 hours; then the delivery is a dead letter (an admin may resend it).
    webhook_retry_base_s: float = Field(default=10.0, gt=0, alias="HOMING_WEBHOOK_RETRY_BASE_S")
    # One delivery attempt (connect, send, answer) gives up after this long.
    webhook_timeout_s: float = Field(default=10.0, gt=0, alias="HOMING_WEBHOOK_TIMEOUT_S")
    # How often the dispatcher looks for due deliveries, and how many it sends at once.
    webhook_poll_s: float = Field(default=1.0, gt=0, alias="HOMING_WEBHOOK_POLL_S")
    webhook_concurrency: int = Field(default=8, ge=1, le=256, alias="HOMING_WEBHOOK_CONCURRENCY")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str) -> str:
        if not v.startswith(("sqlite", "postgres")):
            raise ValueError(f"DATABASE_URL must be sqlite:/// or postgresql://, got {v!r}")
        return v

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, v: str) -> str:
        items = [item.strip() for item in v.split(",") if item.strip()]
        if "*" in items:
            return "*"  # uvicorn trusts everyone only when "*" stands alone
        for item in items:
            try:
                # As uvicorn reads them: a network has its host bits clear ("10.0.0.0/8").
                ipaddress.ip_network(item) if "/" in item else ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(
                    "HOMING_FORWARDED_ALLOW_IPS is a comma-separated list of IP addresses or networks, "
                    f"or *, but got {item!r}"
                ) from None
        return ",".join(items)

    def for_host(self, host: str) -> Settings:
        """These settings for a server bound to `host`: an explicit HOMING_COOKIE_SECURE
        wins, else cookies are Secure unless the host is loopback."""
        if self.cookie_secure is not None:
            return self
        return self.model_copy(update={"cookie_secure": not is_loopback_host(host)})

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def async_database_url(self) -> str:
        """The SQLAlchemy URL with the async driver this project ships."""
        url = self.database_url
        if url.startswith("sqlite:"):
            return "sqlite+aiosqlite:" + url[len("sqlite:") :]
        for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url


def get_settings() -> Settings:
    return Settings()
