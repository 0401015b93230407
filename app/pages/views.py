"""HTML pages: landing, login and logout, the agent workbench, the demo storefront.

Thin like the API: each view finds who is asking, reads what the page shows and
renders a template. Login and logout go through the API's own handlers, so the page
and `POST /api/v1/auth/login` share one path (throttle, session, cookie).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from app.config import HTMX_VERSION
from app.deps import SESSION_COOKIE, Ctx
from app.errors import NotAuthenticated, RateLimited
from app.pages import demo
from app.pages.i18n import LANG_COOKIE, STRINGS, pick_lang
from app.security import CSRF_FIELD, CSRF_HEADER, csrf_ok, csrf_token_for
from app.shops import api as shops_api
from app.shops import service as shop_service
from app.shops.models import Agent, Shop
from app.shops.policy import Permission, may, permissions_of


def package_folder(name: str) -> Path:
    """A folder shipped inside the `app` package as package data (see pyproject.toml).

    Found through the import system, so it is the installed copy wherever Homing runs
    from: the checkout (editable install) or site-packages (a wheel, `pip install .`).
    """
    found = files("app") / name
    if not isinstance(found, Path) or not found.is_dir():
        raise RuntimeError(f"Homing's {name}/ folder is missing from the installed app package")
    return found


STATIC_DIR = package_folder("static")
TEMPLATES_DIR = package_folder("templates")
HTMX_CDN = "https://unpkg.com/htmx.org@{version}/dist/htmx.min.js"
HTMX_LOCAL = "/static/vendor/htmx.min.js"

router = APIRouter(include_in_schema=False)
# The demo storefront: mounted by create_app only in demo mode (`homing serve --demo`),
# so without it `/demo/*` is 404 and nothing signs buyer tokens for shop `demo`.
demo_router = APIRouter(include_in_schema=False)
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


def asset(path: str) -> str:
    """A static file's URL with its modification time, so browsers never run stale scripts."""
    try:
        stamp = int((STATIC_DIR / path).stat().st_mtime)
    except OSError:
        stamp = 0
    return f"/static/{path}?v={stamp}"


templates.globals["asset"] = asset


@jinja2.pass_context
def can(context: jinja2.runtime.Context, permission: str) -> bool:
    """`{% if can("manage_agents") %}`: whether the page's signed-in agent (`me`, else
    `agent`) may do it. The policy decides (app/shops/policy.py)."""
    agent = context.get("me") or context.get("agent")
    return isinstance(agent, Agent) and may(agent.role, Permission(permission))


templates.globals["can"] = can


def render(request: Request, ctx: Ctx, name: str, status: int = 200, **values: Any) -> Response:
    lang, chosen = pick_lang(request)
    htmx_src = HTMX_LOCAL if ctx.settings.htmx_local else HTMX_CDN.format(version=HTMX_VERSION)
    t = STRINGS[lang]
    # The other language's link keeps the page's other query parameters (e.g. ?buyer=).
    other = request.url.include_query_params(lang=t["switch_to"])
    # A signed-in page sends its session's CSRF token back with every state change
    # (htmx from <body hx-headers>, scripts from <meta name=csrf-token>, forms as a field).
    session = request.cookies.get(SESSION_COOKIE)
    html = templates.get_template(name).render(
        request=request,
        lang=lang,
        t=t,
        htmx_src=htmx_src,
        demo_mode=ctx.settings.demo,
        switch_lang_url=f"{other.path}?{other.query}",
        csrf_token=csrf_token_for(session) if session else None,
        csrf_header=CSRF_HEADER,
        csrf_field=CSRF_FIELD,
        **values,
    )
    response = Response(html, status_code=status, media_type="text/html; charset=utf-8")
    if chosen:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


class PageRefusal(Exception):
    """A page answers this instead of its content (the login redirect, the 403 page, a 400):
    raised by a page's dependencies, answered by the application's handler as it is."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def csrf_refused(request: Request, sent: str | None = None) -> Response | None:
    """A 403 for a state-changing page request whose CSRF token (header, or `sent` from
    a form field) does not match the session cookie's; None when it matches."""
    session = request.cookies.get(SESSION_COOKIE)
    if session and not csrf_ok(session, sent or request.headers.get(CSRF_HEADER)):
        t = STRINGS[pick_lang(request)[0]]
        return Response(t["csrf_refused"], status_code=403, media_type="text/plain; charset=utf-8")
    return None


async def session_agent(request: Request, ctx: Ctx) -> Agent | None:
    """The agent whose session cookie came with the request, or None."""
    try:
        async with ctx.db.read() as s:
            return await shop_service.agent_for_token(
                s, request.cookies.get(SESSION_COOKIE), ctx.clock.now()
            )
    except NotAuthenticated:
        return None


@router.get("/")
async def landing(request: Request, ctx: Ctx) -> Response:
    return render(request, ctx, "landing.html")


@router.get("/login")
async def login_page(request: Request, ctx: Ctx) -> Response:
    form = {"shop": demo.DEMO_SLUG} if ctx.settings.demo else {}
    return render(request, ctx, "login.html", error=None, form=form)


@router.post("/login")
async def login_submit(request: Request, ctx: Ctx) -> Response:
    """The login form: htmx gets a fragment or an HX-Redirect; a plain form post a page or a 303."""
    t = STRINGS[pick_lang(request)[0]]
    via_htmx = request.headers.get("hx-request") == "true"
    form = await request.form()
    fields = {k: str(form.get(k) or "").strip() for k in ("shop", "username")}
    password = str(form.get("password") or "")

    def failed(message: str, status: int) -> Response:
        if via_htmx:
            return render(request, ctx, "_login_error.html", status=status, error=message)
        return render(request, ctx, "login.html", status=status, error=message, form=fields)

    try:
        body = shops_api.LoginIn(
            shop=fields["shop"], username=fields["username"], password=password
        )
    except ValidationError:
        return failed(t["login_incomplete"], 422)
    response: Response = (
        Response(status_code=200, headers={"HX-Redirect": "/workbench"})
        if via_htmx
        else RedirectResponse("/workbench", status_code=303)
    )
    try:
        await shops_api.login(body, request, response, ctx)
    except RateLimited:
        return failed(t["login_throttled"], 429)
    except NotAuthenticated as err:
        return failed(t["login_inactive" if err.code == "agent_inactive" else "login_bad"], 401)
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx) -> Response:
    form = await request.form()
    refused = csrf_refused(request, str(form.get(CSRF_FIELD) or ""))
    if refused is not None:
        return refused
    response = RedirectResponse("/login", status_code=303)
    agent = await session_agent(request, ctx)
    if agent is None:
        response.delete_cookie(SESSION_COOKIE)
        return response
    await shops_api.logout(request, response, agent, ctx)
    return response


@router.get("/workbench")
async def workbench(request: Request, ctx: Ctx) -> Response:
    agent = await session_agent(request, ctx)
    if agent is None:
        return RedirectResponse("/login", status_code=303)
    lang = pick_lang(request)[0]
    # No credential in the boot data: the socket and the API go by the HttpOnly cookie.
    async with ctx.db.read() as s:
        shop = await s.get(Shop, agent.shop_id)
    boot = {
        "agent": {
            **shops_api.agent_public(agent),
            "status": agent.status,
            "payout_limit_cents": agent.payout_limit_cents,
            "payout_daily_cents": agent.payout_daily_cents,
        },
        # The payout daily total is per calendar day in the shop's time zone.
        "timezone": shop_service.shop_zone(shop).key if shop else "Asia/Shanghai",
        "lang": lang,
        "strings": STRINGS[lang],
        # What the scripts may offer (the API still decides): app/shops/policy.py's names.
        "permissions": permissions_of(agent.role),
    }
    response = render(request, ctx, "workbench.html", agent=agent, boot=boot)
    response.headers["Cache-Control"] = "no-store"
    return response


@demo_router.get("/demo/shop")
async def demo_shop(request: Request, ctx: Ctx) -> Response:
    if not ctx.settings.demo:  # mounted only in demo mode; this holds should that ever change
        return render(request, ctx, "demo_shop.html", status=404, missing=True)
    async with ctx.db.read() as s:
        secret = await demo.demo_shop_secret(s)
    if secret is None:
        return render(request, ctx, "demo_shop.html", status=404, missing=True)
    buyer = demo.demo_buyer(request.query_params.get("buyer"))
    response = render(
        request,
        ctx,
        "demo_shop.html",
        missing=False,
        buyers=demo.DEMO_BUYERS,
        buyer=buyer,
        buyer_token=demo.sign_demo_buyer(buyer, secret, ctx.clock.now()),
        product=demo.DEMO_PRODUCT,
        server=str(request.base_url).rstrip("/"),
    )
    response.headers["Cache-Control"] = "no-store"
    return response
