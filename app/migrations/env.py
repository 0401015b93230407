"""Alembic environment: runs migrations on the async engine the app uses."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import app.aftersales.models
import app.bot.models
import app.care.models
import app.chat.models
import app.compliance.models
import app.groups.models
import app.notes.models
import app.payouts.models
import app.phrases.models
import app.quality.models
import app.recall.models
import app.routing.hours_models
import app.routing.models
import app.shops.models
import app.tags.models
import app.webhooks.models  # noqa: F401
from app.config import Settings
from app.db import metadata

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or Settings().database_url
    return Settings(DATABASE_URL=url).async_database_url


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two nodes starting at once must not both migrate.
            connection.execute(text("SELECT pg_advisory_xact_lock(7201001)"))
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run against a database.")
asyncio.run(_main())
