"""The `homing` command line: serve, worker, shop create, i18n."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
from typing import Any

from app.clock import Clock
from app.config import Settings
from app.db import Database
from app.demo import seed_demo
from app.errors import DomainError
from app.migrate import upgrade
from app.observability.logs import JsonFormatter, formatter_for
from app.security import install_log_masking, is_loopback_host, uvicorn_log_config
from app.shops import actions as shop_actions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="homing", description="Homing customer-service workbench")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (and its scheduled jobs)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: create the demo shop (idempotent) and serve its storefront /demo/shop",
    )
    serve.add_argument(
        "--demo-public",
        action="store_true",
        help="allow --demo on a --host other than loopback (the demo passwords are public)",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--no-jobs", action="store_true", help="leave scheduled jobs to `homing worker`"
    )
    serve.add_argument("--log-level", default="info")

    worker = sub.add_parser("worker", help="run scheduled jobs only")
    worker.add_argument("--log-level", default="info")
    worker.add_argument(
        "--metrics-port", type=int, help='serve GET /metrics on this port (README "Monitoring")'
    )
    worker.add_argument(
        "--metrics-host", default="127.0.0.1", help="the address --metrics-port binds to"
    )

    shop = sub.add_parser("shop", help="manage shops")
    shop_sub = shop.add_subparsers(dest="shop_command", required=True)
    create = shop_sub.add_parser("create", help="create a shop and its admin")
    create.add_argument("slug")
    create.add_argument("--admin", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--name")

    words = sub.add_parser("i18n", help="translations: compile the catalogs, or check them")
    words.add_argument(
        "i18n_command",
        choices=("compile", "check"),
        help="compile: .po to .mo and to the browser's JSON; check: every message translated",
    )

    args = parser.parse_args(argv)
    if args.command == "i18n":
        from app import i18n

        raise SystemExit(i18n.main([args.i18n_command]))
    settings = Settings()
    if args.command == "serve":
        if args.demo:
            settings = settings.model_copy(update={"demo": True})
        refusal = demo_refusal(settings.demo, args.host, args.demo_public)
        if refusal:
            print(f"homing serve: {refusal}", file=sys.stderr)
            raise SystemExit(2)
        _serve(settings, args)
    elif args.command == "worker":
        _worker(settings, args)
    elif args.command == "shop":
        _shop_create(settings, args)


def demo_refusal(demo: bool, host: str, demo_public: bool) -> str | None:
    """Why `homing serve` will not start as asked, or None.

    The demo shop's passwords and buyer secret are published in the README, and its
    storefront signs buyer tokens for anyone who asks: off loopback that is an open door
    unless the operator says, with --demo-public, that they mean it.
    """
    if demo_public and not demo:
        return "--demo-public only makes sense with --demo."
    if demo and not demo_public and not is_loopback_host(host):
        return (
            f"--demo would serve the demo shop (public passwords, buyer tokens signed for anyone) on "
            f"--host {host}, which is not loopback (127.0.0.0/8, ::1, localhost). Serve the demo on "
            "loopback, or add --demo-public if it is meant to be reachable from other machines."
        )
    return None


def proxy_header_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy-header options: X-Forwarded-* are believed only from the listed proxies.

    With none listed uvicorn's middleware is left out altogether (its own default would
    trust 127.0.0.1), so the client address is always the socket's peer.
    """
    if not settings.forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.forwarded_allow_ips}


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from app.main import create_app
    from app.realtime.asgi_ws import LightWebSocketsProtocol

    _configure_logging(args.log_level, settings.log_format)
    settings = settings.for_host(args.host)
    upgrade(settings.database_url)
    if settings.demo:
        asyncio.run(_seed_demo(settings))
    app = create_app(settings, run_jobs=not args.no_jobs)
    _tune_gc()
    url = f"http://{args.host}:{args.port}"
    demo = f", demo shop {url}/demo/shop" if settings.demo else ""
    _announce(settings, f"Homing is running at {url}/  (workbench {url}/workbench{demo})")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=uvicorn_log_config(settings.log_format),
        # uvicorn's own sans-I/O protocol, with lighter per-socket containers (app/realtime/asgi_ws.py).
        ws=LightWebSocketsProtocol,
        ws_max_size=settings.max_frame_bytes * 4,
        # A ping every 25 s (socket.io's default), sent by one timer for all the sockets
        # (app/realtime/keepalive.py): an idle node's CPU is mostly these pings, and a
        # dead peer is still found within 45 s.
        ws_ping_interval=25,
        # Chat frames are small; per-socket deflate state costs ~38 KB of memory per socket.
        ws_per_message_deflate=False,
        ws_ping_timeout=20,
        **proxy_header_options(settings),
    )


def _configure_logging(level: str, log_format: str) -> None:
    """Log lines to stderr, text or JSON (HOMING_LOG_FORMAT), with every `token=` /
    `ticket=` value masked (README "Security")."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(log_format))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    if log_format == "json":
        logging.captureWarnings(True)  # a warning is a log line too, not free text on stderr
    install_log_masking()


def _announce(settings: Settings, text: str) -> None:
    """A line for the person who started the command (stdout): in JSON mode a JSON log
    line like every other, so a log collector can read the output line by line."""
    if settings.log_format == "json":
        record = logging.LogRecord("app.cli", logging.INFO, __file__, 0, text, None, None)
        text = JsonFormatter().format(record)
    print(text, flush=True)


def _tune_gc() -> None:
    """Garbage collection for a long-running server (measured, not guessed: bench message_path).

    Everything built at start (modules, the app, its routes) is frozen out of the cyclic
    collector's sight, and collections start every 50,000 allocations instead of 700, so
    full collections, which walk every object of every open socket, come thousands of
    times less often; their pauses are latency spikes on a busy node. Measured with the
    bench (same CPU per message): surge 13.9 -> 10.9 s to all assigned or queued; message
    path 2,093 and 1,709 msg/s at p99 <= 50 ms in two runs (1,709 before). Cyclic garbage
    lives a little longer; nothing else changes.
    """
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _worker(settings: Settings, args: argparse.Namespace) -> None:
    from app.worker import run_worker

    _configure_logging(args.log_level, settings.log_format)
    upgrade(settings.database_url)
    asyncio.run(
        run_worker(settings, metrics_host=args.metrics_host, metrics_port=args.metrics_port)
    )


async def _seed_demo(settings: Settings) -> None:
    db = Database(settings.async_database_url)
    try:
        created = await db.run(seed_demo, Clock().now())
        _announce(settings, "demo shop created" if created else "demo shop already present")
    finally:
        await db.dispose()


def _shop_create(settings: Settings, args: argparse.Namespace) -> None:
    upgrade(settings.database_url)

    async def go() -> shop_actions.NewShop:
        db = Database(settings.async_database_url)
        try:
            created: shop_actions.NewShop = await db.run(
                shop_actions.create_shop,
                slug=args.slug,
                admin_username=args.admin,
                admin_password=args.password,
                now=Clock().now(),
                name=args.name,
            )
            return created
        finally:
            await db.dispose()

    try:
        new = asyncio.run(go())
    except DomainError as exc:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message}}), file=sys.stderr)
        raise SystemExit(1) from exc
    print(
        json.dumps(
            {
                "shop": new.shop.slug,
                "shop_id": new.shop.id,
                "buyer_secret": new.buyer_secret,
                "api_key": new.api_key,
            }
        )
    )
