"""The permission table, case by case: what each role may do (app/shops/policy.py)."""

from __future__ import annotations

import pytest

from app.shops.policy import GRANTS, Permission, may, permissions_of, refusal
from app.shops.roles import ROLES

P = Permission
# permission: (agent, supervisor, admin)
TABLE = {
    P.SUPERVISE_CHATS: (False, True, True),
    P.VIEW_AGENTS: (False, True, True),
    P.VIEW_METRICS: (False, True, True),
    P.VIEW_PAYOUTS: (False, True, True),
    P.APPROVE_PAYOUTS: (False, True, True),
    P.RUN_RECALL: (False, True, True),
    P.MODERATE_GROUPS: (False, True, True),
    P.USE_CONSOLE: (False, True, True),
    P.MANAGE_PHRASES: (False, True, True),
    P.REVIEW_COMPLIANCE: (False, True, True),
    P.INSPECT_QUALITY: (False, True, True),
    P.MANAGE_AGENTS: (False, False, True),
    P.MANAGE_QUEUES: (False, False, True),
    P.SET_RECALL_WINDOW: (False, False, True),
    P.MANAGE_GROUPS: (False, False, True),
    P.TOP_UP_FUND: (False, False, True),
    P.MANAGE_WEBHOOKS: (False, False, True),
    P.MANAGE_CARE: (False, False, True),
    P.MANAGE_TAGS: (False, False, True),
    P.EXPORT_DATA: (False, True, True),
    P.MANAGE_SERVICE_HOURS: (False, False, True),
    P.MANAGE_COMPLIANCE: (False, False, True),
    P.MANAGE_QUALITY: (False, False, True),
    P.MANAGE_BOT_KB: (False, True, True),
    P.SET_BOT_MODE: (False, False, True),
}
CASES = [
    (role, permission, allowed[i])
    for permission, allowed in TABLE.items()
    for i, role in enumerate(("agent", "supervisor", "admin"))
]


def test_the_table_names_every_permission_and_only_known_roles() -> None:
    assert set(TABLE) == set(Permission) == set(GRANTS)
    assert all(roles <= set(ROLES) for roles in GRANTS.values())


@pytest.mark.parametrize(("role", "permission", "allowed"), CASES)
def test_may(role: str, permission: Permission, allowed: bool) -> None:
    assert may(role, permission) is allowed


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", [None, "", "owner", "ADMIN", "buyer"])
def test_no_one_else_may_do_anything(role: str | None, permission: Permission) -> None:
    assert not may(role, permission)


def test_permissions_of_follow_the_table() -> None:
    assert permissions_of("agent") == []
    assert permissions_of(None) == []
    assert permissions_of("supervisor") == [p for p, a in TABLE.items() if a[1]]
    assert permissions_of("admin") == list(Permission)


@pytest.mark.parametrize(
    ("permission", "message"),
    [
        (P.MANAGE_QUEUES, "Only the shop's admin may do this."),
        (P.VIEW_METRICS, "Only the shop's supervisors and admins may do this."),
    ],
)
def test_refusal_names_who_may(permission: Permission, message: str) -> None:
    assert refusal(permission) == message
