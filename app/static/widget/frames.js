// @ts-check
/* The wire frames of the buyer socket that the widget sends and reads, as JSDoc types
 * (shared/spec/PROTOCOL.md, with the extensions in docs/protocol-notes.md). Types only:
 * other modules name them as import("./frames.js").Name. Fields the widget does not read
 * are listed when the contract names them, so a reader sees the whole frame. */

/** @typedef {"buyer" | "agent" | "system" | "bot"} Sender */

/** @typedef {"queued" | "assigned" | "closed"} ConversationStatus */

/**
 * A product card's payload (also `data-product` on the embedding tag).
 * @typedef {object} ProductPayload
 * @property {string} product_id
 * @property {string} [title]
 * @property {string | null} [category]
 * @property {number} [price_cents]
 */

/**
 * A coupon inside a `coupon_card` payload or a giveaway.
 * @typedef {object} Coupon
 * @property {string} [id]
 * @property {string} [title]
 * @property {number} [amount_cents]
 * @property {number} [min_spend_cents]
 * @property {"recall" | "late_shipment" | string} [reason]
 */

/**
 * `coupon_card` payload: `{"coupon", "campaign_id"?, "opt_out"}`.
 * @typedef {object} CouponCardPayload
 * @property {Coupon} [coupon]
 * @property {string} [campaign_id]
 * @property {boolean} [opt_out]
 */

/** @typedef {"refund_only" | "return_refund" | "exchange" | "damaged" | "price_protection"} AfterSaleType */

/**
 * `aftersale_card` payload: an after-sales request and its status when the card was sent.
 * @typedef {object} AfterSaleCardPayload
 * @property {string} aftersale_id
 * @property {string} order_id
 * @property {AfterSaleType} type
 * @property {number} amount_cents
 * @property {"pending" | "approved" | "declined" | "completed"} status
 * @property {boolean} auto approved at once (极速退款, 价保 within the shop's authority)
 * @property {string | null} [note] the agent's note with a decision
 */

/**
 * `care_card` payload (主动服务): a notice code and parameters; a 回访 (`visit`) asks for
 * 1-5 stars for the goods and the service, answered at POST /care/visits/{care_id}/rating.
 * @typedef {object} CareCardPayload
 * @property {string} care_id
 * @property {"logistics_stalled" | "follow_up_visit" | "refund_apology"} rule
 * @property {string} order_id
 * @property {string} notice
 * @property {Record<string, any>} [params]
 * @property {boolean} [visit]
 * @property {Coupon} [coupon]
 */

/**
 * What `GET /aftersales/orders/{order_id}` says the buyer may still ask for.
 * @typedef {object} OrderRoom
 * @property {string} order_id
 * @property {number} amount_cents
 * @property {number} room_cents
 * @property {string} status
 * @property {string | null} delivered_at
 * @property {boolean} damage_window_open
 * @property {number} price_protection_cents
 * @property {string | null} tracking_line
 */

/**
 * A group giveaway (payload `{"giveaway": GIVEAWAY}` of a `giveaway` group message).
 * @typedef {object} Giveaway
 * @property {string} id
 * @property {string} [title]
 * @property {number} quantity
 * @property {Coupon} [coupon]
 */

/**
 * MSG: one stored message. `payload` depends on `kind` (product, order, image, coupon and
 * compensation cards; `{"csat_invite": true}` on the closing system message).
 * @typedef {object} Message
 * @property {string} id
 * @property {string} conversation_id
 * @property {number} seq
 * @property {Sender} sender
 * @property {string | null} [sender_id]
 * @property {string} kind
 * @property {string} body
 * @property {Record<string, any> | null} [payload]
 * @property {string} created_at
 * @property {string | null} [client_msg_id]
 * @property {string | null} [group_id] a group message (then `conversation_id` is null)
 */

/**
 * Group MSG: a message of a fan group (`conversation_id` null, per-group `seq`).
 * @typedef {object} GroupMessage
 * @property {string} id
 * @property {string} group_id
 * @property {null} [conversation_id]
 * @property {number} seq
 * @property {Sender} sender
 * @property {string | null} [sender_id]
 * @property {string} kind `text`, `giveaway` or `system`
 * @property {string} body
 * @property {{giveaway?: Giveaway} & Record<string, any> | null} [payload]
 * @property {string} created_at
 * @property {string | null} [client_msg_id]
 */

/**
 * CONV: the buyer's conversation.
 * @typedef {object} Conversation
 * @property {string} id
 * @property {string} [shop]
 * @property {string} [buyer_id]
 * @property {string | null} [queue]
 * @property {ConversationStatus} status
 * @property {string | null} [agent_id]
 * @property {string | null} [agent_name] the assigned agent's display name
 * @property {boolean} [elder]
 * @property {string} [opened_at]
 * @property {number} [last_seq]
 * @property {number} [agent_read_seq] the agent's read mark
 * @property {LeftMessage | null} [left_message] waited as 留言 (see away.js)
 * @property {"bot" | "human"} [handled_by] "bot" while the shop's assistant holds the chat
 */

/**
 * GROUP, as `GET /groups` and the group frames carry it (buyer's view).
 * @typedef {object} Group
 * @property {string} id
 * @property {string} name
 * @property {number} member_count
 * @property {number} [last_seq]
 * @property {"active" | "left" | "removed" | null} [member_status]
 * @property {string | null} [muted_until] a whole-group mute
 * @property {string | null} [my_muted_until] this buyer's own mute
 */

// ---- client → server -----------------------------------------------------------------

/**
 * @typedef {object} MessageSendFrame
 * @property {"message.send"} type
 * @property {string} client_msg_id
 * @property {string} body
 * @property {"text" | "image" | "product_card" | "order_card"} [kind]
 * @property {ProductPayload | {upload_id: string} | {order_id: string}} [payload]
 */

/**
 * Resend every message after `after_seq` as `message.new`, in order.
 * @typedef {object} SyncFrame
 * @property {"sync"} type
 * @property {string} conversation_id
 * @property {number} after_seq
 */

/**
 * @typedef {object} TypingSendFrame
 * @property {"typing"} type
 * @property {string} conversation_id
 */

/**
 * @typedef {object} ReadSendFrame
 * @property {"read"} type
 * @property {string} conversation_id
 * @property {number} seq
 */

/**
 * @typedef {object} ElderModeSendFrame
 * @property {"elder_mode"} type
 * @property {boolean} on
 */

/**
 * @typedef {object} CsatSubmitFrame
 * @property {"csat.submit"} type
 * @property {string} conversation_id
 * @property {number} score 1..5
 * @property {string} [comment]
 */

/**
 * @typedef {object} GroupSendFrame
 * @property {"group.send"} type
 * @property {string} group_id
 * @property {string} client_msg_id
 * @property {string} body
 */

/**
 * @typedef {object} GroupSyncFrame
 * @property {"group.sync"} type
 * @property {string} group_id
 * @property {number} after_seq
 */

/**
 * Every frame the widget sends.
 * @typedef {MessageSendFrame | SyncFrame | TypingSendFrame | ReadSendFrame | ElderModeSendFrame
 *   | CsatSubmitFrame | GroupSendFrame | GroupSyncFrame | HandoffRequestFrame | BotFeedbackFrame} ClientFrame
 */

/**
 * 转人工: the assistant hands the chat over to a person.
 * @typedef {object} HandoffRequestFrame
 * @property {"handoff.request"} type
 * @property {string} conversation_id
 */

/**
 * 有帮助 / 没帮助 on one of the assistant's answers (the server echoes it back).
 * @typedef {object} BotFeedbackFrame
 * @property {"bot.feedback"} type
 * @property {string} message_id
 * @property {boolean} helpful
 */

/**
 * The assistant let go of the chat; it waits for a person in `queue` from now on.
 * @typedef {object} HandedOffFrame
 * @property {"conversation.handed_off"} type
 * @property {string} conversation_id
 * @property {string} reason asked, button, low_confidence, complaint, order_action, elder
 * @property {string} [queue]
 */

// ---- server → client -----------------------------------------------------------------

/**
 * The first frame on the buyer socket.
 * @typedef {object} HelloFrame
 * @property {"hello"} type
 * @property {string} buyer_id
 * @property {Conversation | null} conversation the open one, if any
 * @property {boolean} [elder_mode]
 * @property {Group[]} [groups] the buyer's active groups
 */

/**
 * The sender's own message, after it is stored (a group message carries `group_id`).
 * @typedef {object} MessageAckFrame
 * @property {"message.ack"} type
 * @property {string} client_msg_id
 * @property {Message} message
 */

/**
 * @typedef {object} MessageNewFrame
 * @property {"message.new"} type
 * @property {Message} message
 */

/**
 * @typedef {object} ConversationOpenedFrame
 * @property {"conversation.opened"} type
 * @property {Conversation} conversation
 */

/**
 * The buyer's place in the queue (from 1); resent when it changes.
 * @typedef {object} ConversationQueuedFrame
 * @property {"conversation.queued"} type
 * @property {string} conversation_id
 * @property {string} [queue]
 * @property {number} position
 * @property {"no_agent_online" | "outside_hours"} [reason] nobody can answer now (留言)
 * @property {string | null} [opens_at] outside the hours: when the shop opens (ISO, shop's offset)
 * @property {string} [time_zone] the shop's IANA time zone
 */

/**
 * Why a conversation waited as 留言 (CONV `left_message`; null when it did not).
 * @typedef {object} LeftMessage
 * @property {"no_agent_online" | "outside_hours" | string} reason
 * @property {string | null} [opens_at]
 * @property {string | null} [time_zone]
 * @property {string} [since]
 */

/**
 * @typedef {object} ConversationAssignedFrame
 * @property {"conversation.assigned"} type
 * @property {Conversation} conversation with `agent_name`
 */

/**
 * @typedef {object} ConversationTransferredFrame
 * @property {"conversation.transferred"} type
 * @property {string} conversation_id
 * @property {string | null} [from_agent_id]
 * @property {string | null} [to_agent_id]
 * @property {string | null} [to_agent_name]
 * @property {string | null} [to_queue]
 * @property {string | null} [note]
 */

/**
 * @typedef {object} ConversationClosedFrame
 * @property {"conversation.closed"} type
 * @property {string} conversation_id
 * @property {string} [reason] `agent` or `inactive`
 * @property {boolean} [csat_invited]
 */

/**
 * @typedef {object} TypingFrame
 * @property {"typing"} type
 * @property {string} conversation_id
 * @property {"buyer" | "agent"} by
 */

/**
 * The read mark in force (never moves back).
 * @typedef {object} ReadFrame
 * @property {"read"} type
 * @property {string} conversation_id
 * @property {number} seq
 * @property {"buyer" | "agent"} by
 */

/**
 * @typedef {object} ElderModeFrame
 * @property {"elder_mode"} type
 * @property {boolean} on
 */

/**
 * @typedef {object} CsatReceivedFrame
 * @property {"csat.received"} type
 * @property {string} conversation_id
 * @property {number} score
 */

/**
 * The socket stays open; `ref` is the offending frame's `client_msg_id`, if it had one.
 * @typedef {object} ErrorFrame
 * @property {"error"} type
 * @property {string} code
 * @property {string} message
 * @property {string | null} [ref]
 */

/**
 * @typedef {object} GroupMessageFrame
 * @property {"group.message"} type
 * @property {GroupMessage} message
 */

/**
 * @typedef {object} GroupJoinedFrame
 * @property {"group.joined"} type
 * @property {Group} group
 */

/**
 * @typedef {object} GroupLeftFrame
 * @property {"group.left"} type
 * @property {string} group_id
 * @property {"left" | "removed"} reason
 */

/**
 * A member mute (`buyer_id`) or a whole-group mute (`buyer_id` null); `until` null: lifted.
 * @typedef {object} GroupMutedFrame
 * @property {"group.muted"} type
 * @property {string} group_id
 * @property {string | null} [buyer_id]
 * @property {string | null} until
 */

/**
 * The end of the answer to a `sync`: every message this socket may see up to `upto` has
 * been sent (a staff note's seq is never sent to a buyer, so the widget moves past it here).
 * @typedef {object} SyncDoneFrame
 * @property {"sync.done"} type
 * @property {string} conversation_id
 * @property {number} upto
 */

/**
 * Every frame the widget reads.
 * @typedef {HelloFrame | MessageAckFrame | MessageNewFrame | ConversationOpenedFrame
 *   | ConversationQueuedFrame | ConversationAssignedFrame | ConversationTransferredFrame
 *   | ConversationClosedFrame | TypingFrame | ReadFrame | ElderModeFrame | CsatReceivedFrame
 *   | ErrorFrame | GroupMessageFrame | GroupJoinedFrame | GroupLeftFrame | GroupMutedFrame
 *   | SyncDoneFrame | HandedOffFrame | BotFeedbackFrame} ServerFrame
 */

/**
 * A handler per frame type, each given its own frame type.
 * @typedef {{[T in ServerFrame["type"]]?: (frame: Extract<ServerFrame, {type: T}>) => void}} FrameHandlers
 */

export {};
