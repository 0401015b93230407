"""PostgreSQL: write a whole group-commit batch of messages in one round trip

Revision ID: 0007_append_messages_fn
Revises: 0006_recall_scale
Create Date: 2026-11-22

`homing_append_messages` does, server-side and in one statement's transaction, what
`app.chat.appender._plan` does statement by statement on SQLite: for each message in the
order given, take the conversation's next `seq` with the same conditional UPDATE (open,
the sender belongs to it, not a resend) and insert the message; or, for a buyer's first
message (`p_open_queues[i]` set), open the conversation in that queue with it, unless it
is a resend or the buyer has an open conversation already. It returns one row per
message stored: its index in the arrays (1-based), its seq, the conversation's agent and
buyer as locked, and for an opening how many wait ahead of it in its queue. A message it
does not return is handed to the full path.
SQLite has no stored functions; there the appender runs the statements itself.
"""

from __future__ import annotations

from alembic import op

revision = "0007_append_messages_fn"
down_revision = "0006_recall_scale"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE OR REPLACE FUNCTION homing_append_messages(
    p_ids text[], p_shop_ids text[], p_conversation_ids text[], p_senders text[],
    p_sender_ids text[], p_kinds text[], p_bodies text[], p_payloads text[],
    p_client_msg_ids text[], p_created_at timestamptz[], p_open_queues text[], p_open_elder boolean[])
RETURNS TABLE (out_index integer, out_seq integer, out_agent_id text, out_buyer_id text,
               out_ahead integer)
LANGUAGE plpgsql AS $fn$
DECLARE
    i integer;
    v_seq integer;
    v_agent text;
    v_buyer text;
    v_opened integer[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        IF p_open_queues[i] IS NOT NULL THEN
            CONTINUE WHEN EXISTS (SELECT 1 FROM messages m
                                   WHERE m.shop_id = p_shop_ids[i] AND m.sender = 'buyer'
                                     AND m.sender_id = p_sender_ids[i]
                                     AND m.client_msg_id = p_client_msg_ids[i]);
            -- The partial unique index on open conversations turns away a buyer who has one.
            INSERT INTO conversations (id, shop_id, buyer_id, queue, status, agent_id, elder, last_seq,
                                       buyer_read_seq, agent_read_seq, opened_at, queued_at,
                                       last_buyer_message_at)
            VALUES (p_conversation_ids[i], p_shop_ids[i], p_sender_ids[i], p_open_queues[i], 'queued',
                    NULL, p_open_elder[i], 1, 0, 0, p_created_at[i], p_created_at[i], p_created_at[i])
            ON CONFLICT DO NOTHING;
            CONTINUE WHEN NOT FOUND;
            INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind, body,
                                  payload, client_msg_id, created_at)
            VALUES (p_ids[i], p_shop_ids[i], p_conversation_ids[i], 1, 'buyer', p_sender_ids[i],
                    p_kinds[i], p_bodies[i], p_payloads[i]::json, p_client_msg_ids[i], p_created_at[i]);
            v_opened := v_opened || i;  -- its place is counted once every opening is in
            CONTINUE;
        END IF;
        -- A buyer writes into their own conversation and stamps it; an agent into the
        -- one they serve.
        UPDATE conversations c
           SET last_seq = c.last_seq + 1,
               last_buyer_message_at = CASE WHEN p_senders[i] = 'buyer' THEN p_created_at[i]
                                            ELSE c.last_buyer_message_at END
         WHERE c.id = p_conversation_ids[i] AND c.shop_id = p_shop_ids[i]
           AND CASE WHEN p_senders[i] = 'buyer' THEN c.buyer_id ELSE c.agent_id END = p_sender_ids[i]
           AND c.status <> 'closed'
           AND NOT EXISTS (SELECT 1 FROM messages m
                            WHERE m.shop_id = p_shop_ids[i] AND m.sender = p_senders[i]
                              AND m.sender_id = p_sender_ids[i]
                              AND m.client_msg_id = p_client_msg_ids[i])
        RETURNING c.last_seq, c.agent_id, c.buyer_id INTO v_seq, v_agent, v_buyer;
        IF FOUND THEN
            INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind, body,
                                  payload, client_msg_id, created_at)
            VALUES (p_ids[i], p_shop_ids[i], p_conversation_ids[i], v_seq, p_senders[i],
                    p_sender_ids[i], p_kinds[i], p_bodies[i], p_payloads[i]::json,
                    p_client_msg_ids[i], p_created_at[i]);
            out_index := i;
            out_seq := v_seq;
            out_agent_id := v_agent;
            out_buyer_id := v_buyer;
            out_ahead := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;
    -- The batch is in lock order, not arrival order: count who waits ahead of each new
    -- conversation once all of them are in.
    FOREACH i IN ARRAY v_opened LOOP
        out_index := i;
        out_seq := 1;
        out_agent_id := NULL;
        out_buyer_id := p_sender_ids[i];
        SELECT count(*) INTO out_ahead FROM conversations c
         WHERE c.shop_id = p_shop_ids[i] AND c.queue = p_open_queues[i] AND c.status = 'queued'
           AND (c.queued_at < p_created_at[i]
                OR (c.queued_at = p_created_at[i] AND c.id < p_conversation_ids[i]));
        RETURN NEXT;
    END LOOP;
END
$fn$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS homing_append_messages(text[], text[], text[], text[], text[], "
            "text[], text[], text[], text[], timestamptz[], text[], boolean[])"
        )
