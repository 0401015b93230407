"""Every page route in one router: the workbench and login pages, the console, and the
console's tabs that live in their own modules (importing them registers their tab readers).

The modules import one another one way only (tabs → console → views); this module is
the only one that knows them all."""

from __future__ import annotations

from fastapi import APIRouter

from app.pages import (
    console,
    console_bot,
    console_care,
    console_conversation,
    console_groups,
    console_hours,
    console_recall,
    console_safety,
    console_trends,
    console_webhooks,
    views,
)

router = APIRouter(include_in_schema=False)
router.include_router(views.router)
router.include_router(console.router)
router.include_router(console_recall.router)
router.include_router(console_groups.router)
router.include_router(console_webhooks.router)
router.include_router(console_care.router)
router.include_router(console_hours.router)
router.include_router(console_trends.router)
router.include_router(console_safety.router)
router.include_router(console_conversation.router)
router.include_router(console_bot.router)
