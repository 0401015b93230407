"""What each role may do, decided here once: routes (`app.deps.require`), socket frames, the
domain actions and the pages (`can(...)` in templates) ask `may(role, permission)`.

Pure Python over plain values (a role is a string as stored on the agent), so the whole
table is tested by a table of cases. To add a permission: name it here, give it its roles,
add its row to `tests/test_policy.py`, and ask for it where the decision is made.
"""

from __future__ import annotations

from enum import StrEnum

from app.errors import Forbidden
from app.shops.roles import ADMIN, SUPERVISOR

_STAFF = frozenset({SUPERVISOR, ADMIN})
_ADMIN_ONLY = frozenset({ADMIN})


class Permission(StrEnum):
    # Supervisors and admins: watching the whole shop and acting on what they see.
    SUPERVISE_CHATS = "supervise_chats"  # every conversation: list, read, take up, transfer;
    #                                       and the shop-wide news on their sockets
    VIEW_AGENTS = "view_agents"  # the agents, their status and limits
    VIEW_METRICS = "view_metrics"  # the service metrics (体验分), per agent
    VIEW_PAYOUTS = "view_payouts"  # every agent's payouts and the payout ledger
    APPROVE_PAYOUTS = "approve_payouts"  # approve or reject payouts over an agent's authority
    RUN_RECALL = "run_recall"  # recall campaigns, buyers' intent, the recall window (read)
    MODERATE_GROUPS = "moderate_groups"  # mute or remove members, start giveaways
    USE_CONSOLE = "use_console"  # open /console at all
    MANAGE_PHRASES = "manage_phrases"  # the shop-wide quick phrases (快捷短语)
    REVIEW_COMPLIANCE = "review_compliance"  # the flagged messages (违规词) and abusive buyers
    INSPECT_QUALITY = "inspect_quality"  # score closed conversations (质检), every agent's scores
    # The admin alone: how the shop is set up.
    MANAGE_AGENTS = "manage_agents"  # add agents, change their role, limits, password, active
    MANAGE_QUEUES = "manage_queues"  # queues and the category → queue map
    SET_RECALL_WINDOW = "set_recall_window"  # when recall messages may be sent
    MANAGE_GROUPS = "manage_groups"  # create fan groups, set the sensitive words
    TOP_UP_FUND = "top_up_fund"  # add money to the payout fund
    MANAGE_WEBHOOKS = "manage_webhooks"  # webhook endpoints, their deliveries, resending
    MANAGE_CARE = "manage_care"  # after-sales settings (极速退款, 价保) and the care rules
    MANAGE_TAGS = "manage_tags"  # the shop's tag list and whether closing needs a tag
    EXPORT_DATA = "export_data"  # CSV exports: conversations, messages, metrics, ledger
    MANAGE_SERVICE_HOURS = "manage_service_hours"  # service hours, holidays, auto-reply
    MANAGE_COMPLIANCE = "manage_compliance"  # the shop's own banned words (beside the platform's)
    MANAGE_QUALITY = "manage_quality"  # the scorecard and the daily sample size
    # The bot (智能接待): its knowledge base (staff) and its mode and settings (the admin).
    MANAGE_BOT_KB = "manage_bot_kb"  # knowledge base, import/export, 试一试, 未识别问题
    SET_BOT_MODE = "set_bot_mode"  # the bot's mode, threshold, hand-off words, greeting


GRANTS: dict[Permission, frozenset[str]] = {
    Permission.SUPERVISE_CHATS: _STAFF,
    Permission.VIEW_AGENTS: _STAFF,
    Permission.VIEW_METRICS: _STAFF,
    Permission.VIEW_PAYOUTS: _STAFF,
    Permission.APPROVE_PAYOUTS: _STAFF,
    Permission.RUN_RECALL: _STAFF,
    Permission.MODERATE_GROUPS: _STAFF,
    Permission.USE_CONSOLE: _STAFF,
    Permission.MANAGE_PHRASES: _STAFF,
    Permission.REVIEW_COMPLIANCE: _STAFF,
    Permission.INSPECT_QUALITY: _STAFF,
    Permission.MANAGE_AGENTS: _ADMIN_ONLY,
    Permission.MANAGE_QUEUES: _ADMIN_ONLY,
    Permission.SET_RECALL_WINDOW: _ADMIN_ONLY,
    Permission.MANAGE_GROUPS: _ADMIN_ONLY,
    Permission.TOP_UP_FUND: _ADMIN_ONLY,
    Permission.MANAGE_WEBHOOKS: _ADMIN_ONLY,
    Permission.MANAGE_CARE: _ADMIN_ONLY,
    Permission.MANAGE_TAGS: _ADMIN_ONLY,
    Permission.EXPORT_DATA: _STAFF,
    Permission.MANAGE_SERVICE_HOURS: _ADMIN_ONLY,
    Permission.MANAGE_COMPLIANCE: _ADMIN_ONLY,
    Permission.MANAGE_QUALITY: _ADMIN_ONLY,
    Permission.MANAGE_BOT_KB: _STAFF,
    Permission.SET_BOT_MODE: _ADMIN_ONLY,
}


def may(role: str | None, permission: Permission) -> bool:
    """Whether an agent with `role` (None: no agent, e.g. deactivated) may do `permission`."""
    return role is not None and role in GRANTS[permission]


def permissions_of(role: str | None) -> list[Permission]:
    """Everything `role` may do, in the table's order (what a page tells its scripts)."""
    return [p for p in Permission if may(role, p)]


def refusal(permission: Permission) -> str:
    """The 403 message for someone whose role lacks `permission`."""
    if GRANTS[permission] == _ADMIN_ONLY:
        return "Only the shop's admin may do this."
    if GRANTS[permission] == _STAFF:
        return "Only the shop's supervisors and admins may do this."
    return "Your role may not do this."


def check(role: str | None, permission: Permission, message: str | None = None) -> None:
    """Raise `Forbidden` (403) unless `role` may do `permission`; `message` says what was
    refused (by default: who may)."""
    if not may(role, permission):
        raise Forbidden(message or refusal(permission))
