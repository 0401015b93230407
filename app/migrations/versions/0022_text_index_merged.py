"""text index: SQLite's FTS5 index of message text merged into one segment

Revision ID: 0022_text_index_merged
Revises: 0021_message_path
Create Date: 2026-12-03

SQLite. 0012 indexed the messages a shop already had with `'rebuild'`, and FTS5 writes
a rebuild out as several large segments on its lowest levels. From then on every write's
automatic merge work (FTS5 merges the segments of a level incrementally as new ones
arrive) joined those large segments: on a file of 5,000,000 messages, one group commit in
a hundred spent 20-240 ms merging, and every message of that batch waited for it (issue
20: message path p99 70-120 ms at 150 messages a second, against 4 ms once merged).
`'optimize'` merges the whole index into one segment once (5 s for 5,000,000 messages;
nothing for a new database), after which new segments merge among themselves and only
rarely, incrementally, into the large one. Anything that rebuilds the index again (a
later migration that rebuilds `messages`, a bulk load) optimizes after its rebuild too.

PostgreSQL: nothing here (its text index's pending list is emptied by the search
domain's job, `app.search.jobs`).
"""

from __future__ import annotations

from alembic import op

revision = "0022_text_index_merged"
down_revision = "0021_message_path"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")


def downgrade() -> None:
    pass  # the merged index is the same index; nothing to undo
