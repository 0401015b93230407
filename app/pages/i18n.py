"""How a page request picks its language, and the words for codes the pages show.

The words themselves are in the gettext catalogs (`app/locale/`, see `app.i18n`); this module
only negotiates: `?lang=zh|en` (remembered in a cookie), else the cookie, else Simplified
Chinese. `LABELS` marks the names of codes (roles, queues, reasons, error codes …) for
extraction, so a template or view translates a code with `label(t, kind, code)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from babel.support import Translations
from starlette.requests import Request

from app import i18n

LANG_COOKIE = "homing_lang"
DEFAULT_LANG = "zh"
# The pages' language codes (query, cookie, the widget's data-lang) and their catalogs.
LOCALES = {"zh": "zh_CN", "en": "en"}
HTML_LANG = {"zh": "zh-CN", "en": "en"}
# The other language's link: its code and its own name.
SWITCH = {"zh": ("en", "English"), "en": ("zh", "中文")}


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


LABELS: dict[str, dict[str, str]] = {
    "role": {
        "agent": N_("Agent"),
        "supervisor": N_("Supervisor"),
        "admin": N_("Admin"),
    },
    "tab": {
        "queues": N_("Live queues"),
        "agents": N_("Agents and limits"),
        "categories": N_("Routing categories"),
        "approvals": N_("Payout approvals"),
        "fund": N_("Payout fund"),
        "metrics": N_("Service metrics"),
        "recall": N_("Recall campaigns"),
        "groups": N_("Fan groups"),
        "webhooks": N_("Webhooks"),
        "care": N_("Proactive care"),
        "hours": N_("Service hours"),
        "compliance": N_("Compliance"),
        "quality": N_("Quality inspection"),
        "bot": N_("Smart assistant"),
    },
    "status": {
        "online": N_("Online"),
        "busy": N_("Busy"),
        "offline": N_("Offline"),
    },
    "reason": {
        "late_shipment": N_("Late shipment"),
        "damaged": N_("Damaged item"),
        "price_protection": N_("Price protection"),
        "shipping_fee": N_("Shipping fee"),
        "goodwill": N_("Goodwill"),
    },
    "queue": {
        "general": N_("general"),
        "elderly": N_("elder care"),
    },
    "campaign_status": {
        "draft": N_("draft"),
        "scheduled": N_("scheduled"),
        "running": N_("sending"),
        "completed": N_("completed"),
        "cancelled": N_("cancelled"),
    },
    "exclusion": {
        "minor": N_("minor (under 18)"),
        "opted_out": N_("opted out"),
        "purchased": N_("bought since"),
        "low_intent": N_("low intent"),
        "capped": N_("recalled in the last 7 days"),
    },
    "compliance_action": {
        "block": N_("block"),
        "flag": N_("flag for review"),
    },
    "compliance_category": {
        "contact": N_("contact outside the platform"),
        "promise": N_("forbidden promise"),
        "abuse": N_("abusive words"),
        "custom": N_("the shop's own"),
    },
    "compliance_rule": {
        "phone_number": N_("phone number"),
        "wechat_id": N_("WeChat id"),
        "qq_id": N_("QQ number"),
        "payment_link": N_("payment link"),
        "outside_link": N_("link outside the shop"),
        "contact_word": N_("asking to connect elsewhere"),
        "forbidden_promise": N_("forbidden promise"),
        "abuse": N_("abusive words"),
        "shop": N_("the shop's own word"),
    },
    "sender_side": {
        "agent": N_("agent"),
        "buyer": N_("buyer"),
    },
    "qa_reason": {
        "sample": N_("daily sample"),
        "flag": N_("flagged message"),
        "low_rating": N_("rated 1–2"),
        "payout": N_("payout"),
        "after_sales": N_("after-sales decision"),
    },
    "qa_item": {
        "greeting": N_("Greeting"),
        "accuracy": N_("Accuracy"),
        "attitude": N_("Attitude"),
        "resolution": N_("Resolution"),
        "compliance": N_("Compliance"),
    },
    "sender": {
        "agent": N_("Shop"),
        "system": N_("System"),
    },
    "agent_status": {
        "online": N_("online"),
        "busy": N_("busy"),
        "offline": N_("offline"),
    },
    "delivery_status": {
        "pending": N_("pending"),
        "delivered": N_("delivered"),
        "dead": N_("dead letter"),
        "cancelled": N_("cancelled"),
    },
    "conv_status": {
        "queued": N_("Waiting in the queue"),
        "assigned": N_("In progress"),
        "closed": N_("Closed"),
    },
    "error": {
        "insufficient_funds": N_("The payout fund is too low; ask an admin to top it up"),
        "order_cap_exceeded": N_("More than this order can still be compensated"),
        "order_refunded": N_("The order was refunded; no compensation on it"),
        "evidence_required": N_("A damaged claim needs the buyer's photo in this chat first"),
        "order_required": N_("Pick an order first"),
        "order_mismatch": N_("That order is not this buyer's"),
        "invalid_amount": N_("Invalid amount"),
        "payout_limit_exceeded": N_("Above my own per-payout limit"),
        "daily_limit_exceeded": N_("Above what is left of my daily total"),
        "not_pending": N_("Already decided"),
        "forbidden": N_("Not allowed"),
        "last_admin": N_("The shop must keep at least one active admin"),
        "invalid_dates": N_("The offer must end after the send time"),
        "invalid_min_intent": N_("The minimum intent score is 0 to 100"),
        "not_draft": N_("Only a draft can be scheduled"),
        "campaign_ended": N_("The offer has already ended"),
        "campaign_finished": N_("The campaign has already ended or was cancelled"),
        "not_found": N_("Not found"),
        "bad_name": N_("A group name is 1 to 100 characters"),
        "bad_max_members": N_("The member limit is 1 to 100000"),
        "bad_title": N_("A giveaway title is 1 to 200 characters"),
        "bad_quantity": N_("The quantity is 1 to 1000000"),
        "bad_minutes": N_("Invalid mute length"),
        "not_member": N_("That buyer is not in the group"),
        "sensitive_word": N_("The message contains a sensitive word; not sent"),
        "private_address": N_("That address is private or local; webhooks go to public ones"),
        "unresolvable_host": N_("That host name does not resolve"),
        "bad_url": N_("Enter an http:// or https:// URL"),
        "bad_secret": N_("A signing secret is 16 to 200 characters"),
        "unknown_event": N_("Pick at least one known event"),
        "too_many_endpoints": N_("A shop has at most 10 endpoints"),
        "unknown_tag": N_("The shop has no such tag"),
    },
}


def pick_lang(request: Request) -> tuple[str, bool]:
    """The page language and whether it was chosen just now (`?lang=`), to be remembered."""
    asked = request.query_params.get("lang")
    if asked in LOCALES:
        return asked, True
    saved = request.cookies.get(LANG_COOKIE)
    return (saved if saved in LOCALES else DEFAULT_LANG), False


def words(lang: str) -> Translations:
    """The `messages` catalog for a page language (`zh` / `en`)."""
    return i18n.translations(LOCALES.get(lang, LOCALES[DEFAULT_LANG]))


def request_words(request: Request) -> Translations:
    return words(pick_lang(request)[0])


def label(t: Translations, kind: str, code: str) -> str:
    """A code's name in the reader's language (the code itself when it has none)."""
    found = LABELS[kind].get(code)
    return t.gettext(found) if found else code


def error_label(t: Translations, code: str) -> str | None:
    found = LABELS["error"].get(code)
    return t.gettext(found) if found else None


def _yuan(cents: Any) -> str:
    return f"¥{int(cents) // 100}.{int(cents) % 100:02d}" if isinstance(cents, int) else ""


def notice_text(t: Translations, code: str, params: Mapping[str, Any]) -> str | None:
    """A system notice (`payload.notice`, docs/protocol-notes.md) in the reader's language;
    None for a code these pages do not know."""
    p = dict(params)
    note = p.get("note")
    if code == "csat_invite":
        return t.gettext("This chat has ended. Please rate our service (1 to 5 stars).")
    if code == "transferred_to_agent":
        if note:
            return t.gettext("Transferred to %(agent)s: %(note)s") % p
        return t.gettext("Transferred to %(agent)s") % p
    if code == "transferred_to_queue":
        if note:
            return t.gettext("Transferred to the %(queue)s queue: %(note)s") % p
        return t.gettext("Transferred to the %(queue)s queue") % p
    if code == "giveaway_sold_out":
        return t.gettext("The giveaway %(title)s has run out") % p
    if code == "abuse_warning":
        return t.gettext(
            "Please keep the conversation civil. If the abuse goes on, the agent may end this chat."
        )
    return None


def message_text(t: Translations, msg: Mapping[str, Any]) -> str:
    """A message's words as a page shows them: what the system said (notices, giveaway
    posts, compensation and late-shipment cards) from its payload in the reader's language,
    what a person wrote as written."""
    payload = msg.get("payload") or {}
    kind = msg.get("kind")
    if payload.get("notice"):
        found = notice_text(t, payload["notice"], payload.get("params") or {})
        if found is not None:
            return found
    gw = payload.get("giveaway")
    if kind == "giveaway" and isinstance(gw, dict):
        return t.gettext("Giveaway: %(title)s (%(quantity)s in all)") % {
            "title": gw.get("title", ""),
            "quantity": gw.get("quantity", ""),
        }
    if kind == "compensation_card" and "amount_cents" in payload:
        reason = payload.get("reason", "")
        return t.gettext("We have compensated you %(amount)s (%(reason)s)") % {
            "amount": _yuan(payload["amount_cents"]),
            "reason": label(t, "reason", reason),
        }
    coupon = payload.get("coupon") or {}
    if kind == "coupon_card" and coupon.get("reason") == "late_shipment":
        return t.gettext(
            "Sorry, your order %(order_id)s did not ship on time. Here is a %(amount)s coupon "
            "with no minimum spend (late shipment)."
        ) % {"order_id": coupon.get("order_id", ""), "amount": _yuan(coupon.get("amount_cents"))}
    return str(msg.get("body") or "")
