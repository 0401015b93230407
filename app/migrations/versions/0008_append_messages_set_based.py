"""PostgreSQL: homing_append_messages writes a batch with set-based statements

Revision ID: 0008_append_messages_set_based
Revises: 0007_append_messages_fn
Create Date: 2026-11-22

Same signature, same rows returned, same rules as 0007; the body no longer loops over the
batch. 0007 ran three to four statements per message (each an executor start-up inside
PL/pgSQL, about 200 us a message); this runs three statements per batch:

1. messages into open conversations: lock the batch's conversations in id order, keep the
   messages whose sender belongs to theirs and that are not resends, number them from
   the conversation's `last_seq` in batch order, move `last_seq` (and the buyer's last
   message time) on, insert them;
2. openings: insert the new conversations (in batch order, which the caller sorts by
   buyer) unless the buyer has an open one (the partial unique index) or the first
   message is a resend, and their first messages;
3. the place of each new conversation in its queue, once all of them are in.

The caller passes no message twice (`app.chat.appender._candidates`). A message it does
not get back takes the full path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0008_append_messages_set_based"
down_revision = "0007_append_messages_fn"
branch_labels = None
depends_on = None

INPUT = """
    SELECT t.* FROM unnest(p_ids, p_shop_ids, p_conversation_ids, p_senders, p_sender_ids, p_kinds,
                           p_bodies, p_payloads, p_client_msg_ids, p_created_at, p_open_queues,
                           p_open_elder) WITH ORDINALITY
        AS t(id, shop_id, conversation_id, sender, sender_id, kind, body, payload, client_msg_id,
             created_at, open_queue, open_elder, idx)
"""

FUNCTION = rf"""
CREATE OR REPLACE FUNCTION homing_append_messages(
    p_ids text[], p_shop_ids text[], p_conversation_ids text[], p_senders text[],
    p_sender_ids text[], p_kinds text[], p_bodies text[], p_payloads text[],
    p_client_msg_ids text[], p_created_at timestamptz[], p_open_queues text[], p_open_elder boolean[])
RETURNS TABLE (out_index integer, out_seq integer, out_agent_id text, out_buyer_id text,
               out_ahead integer)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_opened bigint[];
BEGIN
    -- 1. Into open conversations.
    RETURN QUERY
    WITH input AS ({INPUT}),
    appends AS (SELECT * FROM input WHERE open_queue IS NULL),
    locked AS (
        SELECT c.id, c.shop_id, c.buyer_id, c.agent_id, c.last_seq FROM conversations c
         WHERE c.id IN (SELECT conversation_id FROM appends) AND c.status <> 'closed'
         ORDER BY c.id
           FOR UPDATE
    ),
    accepted AS (
        -- A buyer writes into their own conversation, an agent into the one they serve.
        SELECT a.*, l.agent_id AS c_agent_id, l.buyer_id AS c_buyer_id,
               l.last_seq + row_number() OVER (PARTITION BY a.conversation_id ORDER BY a.idx) AS seq
          FROM appends a JOIN locked l ON l.id = a.conversation_id AND l.shop_id = a.shop_id
         WHERE a.sender_id = CASE WHEN a.sender = 'buyer' THEN l.buyer_id ELSE l.agent_id END
           AND NOT EXISTS (SELECT 1 FROM messages m
                            WHERE m.shop_id = a.shop_id AND m.sender = a.sender
                              AND m.sender_id = a.sender_id AND m.client_msg_id = a.client_msg_id)
    ),
    moved AS (
        UPDATE conversations c
           SET last_seq = g.last_seq,
               last_buyer_message_at = coalesce(g.buyer_at, c.last_buyer_message_at)
          FROM (SELECT conversation_id, max(seq) AS last_seq,
                       (array_agg(created_at ORDER BY idx DESC)
                            FILTER (WHERE sender = 'buyer'))[1] AS buyer_at
                  FROM accepted GROUP BY conversation_id) g
         WHERE c.id = g.conversation_id
    ),
    stored AS (
        INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind, body,
                              payload, client_msg_id, created_at)
        SELECT id, shop_id, conversation_id, seq, sender, sender_id, kind, body, payload::json,
               client_msg_id, created_at
          FROM accepted ORDER BY idx
    )
    SELECT idx::integer, seq::integer, c_agent_id::text, c_buyer_id::text, NULL::integer
      FROM accepted;

    -- 2. Openings, in the caller's order (by buyer: the lock order of the unique index).
    WITH input AS ({INPUT}),
    opens AS (
        SELECT i.* FROM input i
         WHERE i.open_queue IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM messages m
                            WHERE m.shop_id = i.shop_id AND m.sender = 'buyer'
                              AND m.sender_id = i.sender_id AND m.client_msg_id = i.client_msg_id)
    ),
    opened AS (
        -- The partial unique index on open conversations turns away a buyer who has one.
        INSERT INTO conversations (id, shop_id, buyer_id, queue, status, agent_id, elder, last_seq,
                                   buyer_read_seq, agent_read_seq, opened_at, queued_at,
                                   last_buyer_message_at)
        SELECT conversation_id, shop_id, sender_id, open_queue, 'queued', NULL, open_elder, 1, 0, 0,
               created_at, created_at, created_at
          FROM opens ORDER BY idx
        ON CONFLICT DO NOTHING
        RETURNING id
    ),
    first AS (
        INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind, body,
                              payload, client_msg_id, created_at)
        SELECT o.id, o.shop_id, o.conversation_id, 1, 'buyer', o.sender_id, o.kind, o.body,
               o.payload::json, o.client_msg_id, o.created_at
          FROM opens o JOIN opened n ON n.id = o.conversation_id
    )
    SELECT array_agg(o.idx) INTO v_opened FROM opens o JOIN opened n ON n.id = o.conversation_id;

    -- 3. Who waits ahead of each new conversation, counted once all of them are in.
    RETURN QUERY
    WITH input AS ({INPUT})
    SELECT i.idx::integer, 1, NULL::text, i.sender_id,
           (SELECT count(*)::integer FROM conversations c
             WHERE c.shop_id = i.shop_id AND c.queue = i.open_queue AND c.status = 'queued'
               AND (c.queued_at < i.created_at
                    OR (c.queued_at = i.created_at AND c.id < i.conversation_id)))
      FROM input i
     WHERE i.idx = ANY(coalesce(v_opened, '{{}}'));
END
$fn$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function_of("0007_append_messages_fn.py"))


def _function_of(migration: str) -> str:
    """The function as an earlier migration made it (its module name starts with a digit)."""
    spec = importlib.util.spec_from_file_location(
        "homing_migration", Path(__file__).with_name(migration)
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.FUNCTION)
