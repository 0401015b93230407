"""`GET /metrics`: this node's metrics in the Prometheus text format, for a scraper only."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from app.context import AppContext
from app.security import is_loopback_host

router = APIRouter()

# Headers a proxy adds: a request carrying one came from further away than its peer address.
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def scrape_refusal(token: str | None, authorization: str | None, client_host: str | None,
                   proxied: bool) -> int | None:
    """Why a scrape is refused (an HTTP status), or None if it may read the metrics.

    With a token set, the scraper must send it as a bearer token (401 otherwise), from
    anywhere. Without one, only this machine may scrape, and not through a proxy: a
    reverse proxy on the same host connects from loopback on behalf of anyone. Others get
    404, as if there were no such page.
    """
    if token:
        scheme, _, sent = (authorization or "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())
        return None if ok else 401
    if proxied or not client_host or not is_loopback_host(client_host):
        return 404
    return None


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    refusal = scrape_refusal(
        ctx.settings.metrics_token, request.headers.get("authorization"),
        request.client.host if request.client else None,
        any(h in request.headers for h in PROXY_HEADERS),
    )
    if refusal == 401:
        return JSONResponse(
            {"error": {"code": "unauthorized", "message": "Send the metrics token as Authorization: Bearer <token>."}},
            status_code=401, headers={"WWW-Authenticate": "Bearer"},
        )
    if refusal is not None:
        raise HTTPException(404, "Not Found")
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
