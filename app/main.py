"""The ASGI application: resources built in the lifespan, routers, error mapping."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from app.aftersales import api as aftersales_api
from app.bot import api as bot_api
from app.bot.engine import BOT_TOPIC, BotEngine
from app.care import api as care_api
from app.chat import api as chat_api
from app.chat import ws as chat_ws
from app.chat.appender import MessageAppender
from app.chat.delivery import ChatLoader
from app.chat.opening import BuyerOpenings
from app.clock import Clock
from app.compliance import api as compliance_api
from app.compliance.cache import RulesCache
from app.config import Settings, get_settings
from app.context import AppContext, start_core
from app.errors import DomainError
from app.exports import api as exports_api
from app.groups import api as groups_api
from app.history import api as history_api
from app.jobs import registered_jobs
from app.limits import RequestLimits
from app.metrics import api as metrics_api
from app.notes import api as notes_api
from app.observability import api as observability_api
from app.observability.logs import RequestIds
from app.observability.metrics import Metrics
from app.orders import api as orders_api
from app.pages import routes as page_routes
from app.pages import views as pages
from app.pages.views import PageRefusal
from app.payouts import api as payouts_api
from app.phrases import api as phrases_api
from app.quality import api as quality_api
from app.realtime.sessions import SessionExpiry
from app.realtime.topics import compliance_topic
from app.recall import api as recall_api
from app.routing import api as routing_api
from app.routing import hours_api
from app.routing.presence import PresenceHeartbeat
from app.scheduler import JobContext, JobRunner
from app.schemas import error_response
from app.search import api as search_api
from app.security import SecurityHeaders
from app.shops import api as shops_api
from app.tags import api as tags_api
from app.webhooks import api as webhooks_api

log = logging.getLogger(__name__)

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class HealthOut(BaseModel):
    ok: bool
    db: str = Field(description="`sqlite` or `postgresql`.")
    bus: str = Field(description="`memory` or `redis`.")
    bus_connected: bool


class HomingApp(FastAPI):
    """FastAPI, with the chat sockets taken before the middleware and routing stack.

    A socket lives for hours and thousands are open at once; FastAPI's per-request
    machinery (routing, dependency exit stacks, exception middleware) kept ~11 KB per
    open socket. The socket endpoints authenticate and handle their own errors, and no
    middleware of ours applies to sockets (CORS is HTTP only), so they are called
    directly. Everything else, HTTP and lifespan, goes through FastAPI as usual.
    """

    def __init__(
        self, sockets: Mapping[str, Callable[[WebSocket], Awaitable[None]]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.sockets = sockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = self.sockets.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await endpoint(WebSocket(scope, receive, send))
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, run_jobs: bool = True
) -> FastAPI:
    settings = settings or get_settings()
    clock = clock or Clock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics = Metrics()  # this app's own registry (several apps may share a process)
        core = await start_core(settings, clock, sweep=run_jobs)
        db, bus, hub, dispatcher = core.db, core.bus, core.hub, core.dispatcher
        presence = PresenceHeartbeat(db, clock, hub, settings.presence_interval_s)
        presence.start()
        expiry = SessionExpiry(hub, clock)
        expiry.start()
        jobs = JobRunner(
            JobContext(db=db, clock=clock, settings=settings, live_agent_ids=hub.local_agent_ids),
            registered_jobs(),
        )
        if run_jobs:
            jobs.start()
        metrics.watch(hub=hub, bus=bus, db=db, dispatcher=dispatcher, jobs=jobs)
        app.state.ctx = AppContext(
            settings=settings,
            clock=clock,
            db=db,
            bus=bus,
            hub=hub,
            loader=ChatLoader(db, clock),
            dispatcher=dispatcher,
            jobs=jobs,
            presence=presence,
            appender=MessageAppender(db, batch_sizes=metrics.group_commit_batch),
            metrics=metrics,
            compliance=RulesCache(db),
            bot=BotEngine(db),
            openings=BuyerOpenings(db, clock),
        )
        hub.watch(compliance_topic(), app.state.ctx.compliance.on_news)
        hub.watch(BOT_TOPIC, app.state.ctx.bot.on_changed)
        try:
            yield
        finally:
            await jobs.stop()
            await app.state.ctx.bot.stop()
            await expiry.stop()
            await presence.stop()
            await dispatcher.stop()
            await app.state.ctx.appender.close()
            await bus.stop()
            await db.dispose()

    app = HomingApp(chat_ws.SOCKETS, title="Homing", version="0.1.0", lifespan=lifespan)
    app.add_middleware(
        RequestLimits, upload_max_bytes=settings.upload_max_bytes
    )  # inside CORS: its 413 is readable
    # The storefront widget runs on shops' own origins and calls the API with a bearer
    # token (never cookies), so any origin may call it.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
    )
    # CSP, nosniff, Referrer-Policy, no framing (app/security.py).
    app.add_middleware(SecurityHeaders, htmx_from_cdn=not settings.htmx_local)
    # Outermost: every log line about a request, to its end, names it (X-Request-ID).
    app.add_middleware(RequestIds)
    app.include_router(shops_api.router)
    app.include_router(chat_api.router)
    app.include_router(orders_api.router)
    app.include_router(payouts_api.router)
    app.include_router(routing_api.router)
    app.include_router(metrics_api.router)
    app.include_router(recall_api.router)
    app.include_router(groups_api.router)
    app.include_router(phrases_api.router)
    app.include_router(webhooks_api.router)
    app.include_router(aftersales_api.router)
    app.include_router(care_api.router)
    app.include_router(hours_api.router)
    app.include_router(exports_api.router)
    app.include_router(observability_api.router)
    app.include_router(tags_api.router)
    app.include_router(history_api.router)
    app.include_router(notes_api.router)
    app.include_router(search_api.router)
    app.include_router(compliance_api.router)
    app.include_router(quality_api.router)
    app.include_router(bot_api.router)
    app.include_router(page_routes.router)
    if settings.demo:
        app.include_router(pages.demo_router)
    app.mount("/static", pages.static_files(), name="static")

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> HealthOut:
        ctx: AppContext = request.app.state.ctx
        async with ctx.db.read() as s:
            await s.execute(text("SELECT 1"))
        return HealthOut(
            ok=True, db=ctx.db.dialect, bus=ctx.bus.name, bus_connected=ctx.bus.healthy
        )

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(PageRefusal)
    async def page_refusal(_request: Request, exc: PageRefusal) -> Response:
        return exc.response

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, "invalid", f"{where}: {first.get('msg', 'invalid input')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110: a 405 lists the path's methods. Starlette names only those of the
            # first route on the path, and FastAPI makes a route per method.
            headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    return app


def _allowed_methods(request: Request) -> set[str]:
    """The methods some route of the app answers on this request's path (for `Allow`)."""
    allowed = set()
    for method in HTTP_METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.add(method)
    return allowed
