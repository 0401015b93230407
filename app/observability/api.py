"""`GET /metrics`: this node's metrics in the Prometheus text format, for a scraper only.

`homing serve` answers it among its routes; `homing worker --metrics-port` on a port of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from app.config import Settings
from app.context import AppContext
from app.observability.logs import RequestIds
from app.observability.metrics import Metrics
from app.schemas import error_response
from app.security import is_loopback_host, uvicorn_log_config

router = APIRouter()

# Headers a proxy adds: a request carrying one came from further away than its peer address.
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def scrape_refusal(
    token: str | None, authorization: str | None, client_host: str | None, proxied: bool
) -> int | None:
    """Why a scrape is refused (an HTTP status), or None if it may read the metrics.

    With a token set, the scraper must send it as a bearer token (401 otherwise), from
    anywhere. Without one, only this machine may scrape, and not through a proxy: a
    reverse proxy on the same host connects from loopback on behalf of anyone. Others get
    404, as if there were no such page.
    """
    if token:
        scheme, _, sent = (authorization or "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode(), token.encode()
        )
        return None if ok else 401
    if proxied or not client_host or not is_loopback_host(client_host):
        return 404
    return None


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    return metrics_response(request, ctx.settings, ctx.metrics)


def metrics_response(request: Request, settings: Settings, metrics: Metrics) -> Response:
    """The scrape's answer: the metrics, or the refusal (see `scrape_refusal`)."""
    refusal = scrape_refusal(
        settings.metrics_token,
        request.headers.get("authorization"),
        request.client.host if request.client else None,
        any(h in request.headers for h in PROXY_HEADERS),
    )
    if refusal == 401:
        return error_response(
            401,
            "unauthorized",
            "Send the metrics token as Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if refusal is not None:  # as for a page that does not exist
        return error_response(404, "not_found", "Not Found")
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that handles its own signals (`homing worker`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_metrics(
    settings: Settings, metrics: Metrics, host: str, port: int
) -> Callable[[], Awaitable[None]]:
    """Serve `GET /metrics` alone on host:port (for `homing worker`, which has no HTTP
    server), once it listens; returns what stops it."""

    async def endpoint(request: Request) -> Response:
        return metrics_response(request, settings, metrics)

    app = Starlette(routes=[Route("/metrics", endpoint)], middleware=[Middleware(RequestIds)])
    server = _EmbeddedServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=uvicorn_log_config(settings.log_format),
        )
    )
    task = asyncio.create_task(server.serve(), name="metrics-server")
    while not server.started:
        if task.done():
            task.result()  # it could not start (the port is taken): say why
            raise RuntimeError(f"the metrics server on {host}:{port} stopped at start")
        await asyncio.sleep(0.01)

    async def stop() -> None:
        server.should_exit = True
        await task

    return stop
