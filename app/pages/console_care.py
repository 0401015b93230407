"""The console's proactive-care tab (主动服务): each care rule with its switch and its
numbers, the after-sales settings (极速退款, 价保), and the 回访 results. The same domain
code as `app/care/api.py` and `app/aftersales/api.py` saves them."""

from __future__ import annotations

from typing import Annotated, Any

from babel.support import Translations
from fastapi import APIRouter, Request, Response

from app.aftersales import actions as aftersale_actions
from app.aftersales import service as aftersale_service
from app.care import actions as care_actions
from app.care import service as care_service
from app.deps import Ctx
from app.errors import BadInput
from app.pages.console import answer, cents_of, console_form, form_text, tab_reader, yuan_plain
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(include_in_schema=False)
CareManager = Annotated[Agent, console_form(Permission.MANAGE_CARE)]

SWITCHES = ("stalled_on", "visit_on", "apology_on", "late_shipment_on")
COUNTS = ("stalled_hours", "visit_days")


@tab_reader("care")
async def care_data(me: Agent, ctx: Ctx, request: Request) -> dict[str, Any]:
    async with ctx.db.read() as s:
        care = (await care_service.settings_of(s, me.shop_id)).as_dict()
        after = (await aftersale_service.settings_of(s, me.shop_id)).as_dict()
        visits = await care_service.visit_results(s, me.shop_id)
    return {"care": care, "after": after, "visits": visits, "plain": yuan_plain}


def _count(form: Any, name: str) -> int:
    text = form_text(form, name)
    if not text.isdigit():
        raise BadInput(f"{name} must be a whole number.", code="invalid_setting")
    return int(text)


@router.post("/console/care")
async def save_care(request: Request, ctx: Ctx, me: CareManager) -> Response:
    form = await request.form()

    async def work(t: Translations) -> str:
        care: dict[str, Any] = {name: form.get(name) == "on" for name in SWITCHES}
        care.update({name: _count(form, name) for name in COUNTS})
        care["stalled_coupon_cents"] = cents_of(form_text(form, "stalled_coupon"), allow_zero=True)
        after = {
            "fast_refund_max_cents": cents_of(form_text(form, "fast_refund_max"), allow_zero=True),
            "price_protection_days": _count(form, "price_protection_days"),
            "price_protection_auto_cents": cents_of(
                form_text(form, "price_protection_auto"), allow_zero=True
            ),
        }
        now = ctx.clock.now()

        async def both(uow: Any) -> None:
            await care_actions.save_settings(uow, admin_id=me.id, values=care, now=now)
            await aftersale_actions.save_settings(uow, admin_id=me.id, values=after, now=now)

        await ctx.db.run(both)
        return t.gettext("Saved the care rules")

    return await answer(request, ctx, me, "care", work)
