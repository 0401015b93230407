"""Apply the Alembic migrations (run by `homing serve` and `homing worker` on start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revisions; concurrent starters wait on a lock (PostgreSQL).

    "heads": domains may add migrations side by side from the same parent (branches).
    """
    command.upgrade(alembic_config(database_url), "heads")
