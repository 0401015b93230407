"""message path: the group commit indexes SQLite's FTS table once per batch

Revision ID: 0021_message_path
Revises: 0014_bot
Create Date: 2026-12-02

SQLite. 0012's row trigger `messages_fts_ai` indexed each new message with its own
statement into the FTS5 table, and FTS5 (3.40) writes its pending terms out as a new
segment at every statement's savepoint: a group commit of N messages (an `executemany`,
N statements) wrote N tiny segments and merged them, the largest single cost of the
steady message path (issue 20). The trigger now stands aside while the table
`messages_fts_hold` has a row, which only the group commit writes, inside its own
transaction: hold, insert the batch, index it with one `INSERT INTO messages_fts ...
SELECT` over the new rowids, drop the hold, commit. The hold row is never committed (one
writer at a time on SQLite), so every other append path (the full path, notes, the bot,
bulk loads, plain SQL) is still indexed by the trigger without knowing of it, and search
stays exact: a message is in the index in the transaction that stores it. (A later
migration that rebuilds `messages` on SQLite recreates this trigger, with its WHEN, as
0012 says of its three.)

PostgreSQL: nothing changes (the pg_trgm GIN index is kept as 0012 made it; see the
README's performance section for what it costs per insert).
"""

from __future__ import annotations

from alembic import op

revision = "0021_message_path"
down_revision = "0014_bot"
branch_labels = None
depends_on = None

_INDEX_ROW = "INSERT INTO messages_fts(rowid, body) VALUES (new.rowid, new.body)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE TABLE messages_fts_hold (id INTEGER PRIMARY KEY CHECK (id = 1))"  # never committed
    )
    op.execute("DROP TRIGGER IF EXISTS messages_fts_ai")
    op.execute(
        "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages "
        "WHEN NOT EXISTS (SELECT 1 FROM messages_fts_hold) "
        f"BEGIN {_INDEX_ROW}; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS messages_fts_ai")
    op.execute(f"CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN {_INDEX_ROW}; END")
    op.execute("DROP TABLE IF EXISTS messages_fts_hold")
