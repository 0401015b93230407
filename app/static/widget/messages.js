// @ts-check
/* The conversation's messages on screen: each as a bubble (cards for the card kinds) in
 * seq order, sent ones waiting for their ack, notice cards the shop sent outside this chat,
 * read receipts both ways. */

import { imageUrl } from "./api.js";
import { orderActions, visitActions } from "./aftersales.js";
import { botExtras } from "./bot.js";
import { couponActions, ratingRow } from "./cards.js";
import { renderStatus } from "./status.js";
import { renderBadge, renderTyping, scrollDown } from "./view.js";

/* Cards the shop sends in a notice conversation (born closed to carry them). */
const NOTICE_KINDS = new Set(["coupon_card", "compensation_card", "care_card", "aftersale_card"]);

/**
 * "Read" or "Unread" under one of the buyer's messages, by the agent's read mark.
 * @param {import("./state.js").Widget} widget
 * @param {HTMLElement} node
 */
export function setReceipt({ state, w }, node) {
  const receipt = node.querySelector(".receipt");
  if (!receipt) return;
  const read = state.conv && Number(node.dataset.seq) <= (state.conv.agent_read_seq || 0);
  receipt.textContent = read ? w("read") : w("unread");
  receipt.classList.toggle("is-read", Boolean(read));
}

/**
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").Message} msg
 * @returns {HTMLLIElement}
 */
export function messageNode(widget, msg) {
  const { H, config } = widget;
  const { el } = H;
  /** @type {HTMLElement[]} */
  const meta = [el("time", { text: H.clockTime(msg.created_at) })];
  if (msg.sender === "buyer") meta.push(el("span", { className: "receipt" }));
  const node = el("li", {
    className: `msg from-${msg.sender} kind-${msg.kind}`,
    dataset: { seq: String(msg.seq), conv: msg.conversation_id, client: msg.client_msg_id || "" },
  }, [
    el("div", { className: "bubble" }, H.messageContent(msg, config.lang, (id) => imageUrl(config, id))),
    el("div", { className: "meta" }, meta),
  ]);
  setReceipt(widget, node);
  if (msg.kind === "system" && msg.payload && msg.payload.csat_invite) node.append(ratingRow(widget, msg.conversation_id));
  if (msg.kind === "coupon_card") node.append(couponActions(widget, msg.payload || {}));
  const extra = msg.kind === "order_card" ? orderActions(widget, msg)
    : msg.kind === "care_card" ? visitActions(widget, msg.payload || {}) : null;
  if (extra) node.append(extra);
  if (msg.sender === "bot") node.append(...botExtras(widget, msg));
  return node;
}

/**
 * A message sent and not yet acknowledged.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").MessageSendFrame} frame
 * @returns {HTMLLIElement}
 */
export function pendingNode({ H, config, w }, frame) {
  const { el } = H;
  const body = frame.kind === "text"
    ? el("p", { className: "text", text: frame.body })
    : H.messageContent({ kind: frame.kind || "text", payload: frame.payload, body: frame.body }, config.lang, (id) => imageUrl(config, id));
  return el("li", { className: "msg from-buyer pending", dataset: { client: frame.client_msg_id } }, [
    el("div", { className: "bubble" }, body),
    el("div", { className: "meta" }, el("span", { className: "state", text: w("sending") })),
  ]);
}

/**
 * The conversation the frames talk about; a different one replaces the old on screen.
 * @param {import("./state.js").Widget} widget
 * @param {import("./state.js").ConversationView} data
 */
export function useConversation(widget, data) {
  const { state, ui, H, w } = widget;
  if (state.conv && state.conv.id === data.id) {
    Object.assign(state.conv, data);
  } else {
    const hadOne = Boolean(state.conv);
    state.conv = { ...data };
    state.msgs = new Map();
    state.upto = 0;
    state.readSent = 0;
    // Unsent messages and the shop's notice cards stay; the old conversation goes.
    for (const node of [...ui.messages.children]) {
      if (!node.classList.contains("pending") && !node.classList.contains("notice")) node.remove();
    }
    if (hadOne) ui.messages.prepend(H.el("li", { className: "msg from-system divider", text: w("newConversation") }));
    // History of this conversation (a reload, or a second tab), from the start.
    widget.socket.send({ type: "sync", conversation_id: data.id, after_seq: 0 });
  }
  renderStatus(widget);
  renderTyping(widget);
}

/**
 * A card the shop sent outside this chat (a notice conversation, born closed to carry
 * it): shown at the end without leaving the conversation on screen.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").Message} msg
 */
function showNotice(widget, msg) {
  const { state, ui } = widget;
  if (state.notices.has(msg.id)) return;
  state.notices.add(msg.id);
  const node = messageNode(widget, msg);
  node.classList.add("notice");
  node.dataset.seq = "0"; // never reorders the conversation's own messages
  ui.messages.append(node);
  if (!state.open) { state.unseen += 1; renderBadge(widget); }
  scrollDown(widget);
}

/**
 * A message of the conversation (new, acknowledged or synced), or a notice card.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").Message} msg
 */
export function receive(widget, msg) {
  const { state, ui } = widget;
  const elsewhere = !state.conv || state.conv.id !== msg.conversation_id;
  if (elsewhere && msg.sender === "system" && NOTICE_KINDS.has(msg.kind)) {
    showNotice(widget, msg);
    return;
  }
  if (elsewhere) {
    useConversation(widget, { id: msg.conversation_id, status: "queued" });
  }
  if (msg.client_msg_id) state.pending.delete(msg.client_msg_id);
  const waiting = msg.client_msg_id && ui.messages.querySelector(`.pending[data-client="${CSS.escape(msg.client_msg_id)}"]`);
  if (state.msgs.has(msg.seq)) {
    if (waiting) waiting.remove();
    return;
  }
  state.msgs.set(msg.seq, msg);
  while (state.msgs.has(state.upto + 1)) state.upto += 1;
  if (waiting) waiting.replaceWith(messageNode(widget, msg));
  else {
    const divider = ui.messages.querySelector(".divider");
    widget.H.insertBySeq(ui.messages, messageNode(widget, msg), msg.seq);
    if (divider) ui.messages.prepend(divider);
  }
  if (msg.sender === "agent") {
    state.typingUntil = 0;
    renderTyping(widget);
    if (!state.open) { state.unseen += 1; renderBadge(widget); }
  }
  scrollDown(widget);
  scheduleRead(widget);
}

/**
 * A sync was answered up to `upto`: every message the buyer may see up to there is here,
 * so a seq still missing below it is a staff note (never sent to buyers), not a gap to
 * ask for again after the next reconnect.
 * @param {import("./state.js").Widget} widget
 * @param {string} conversationId
 * @param {number} upto
 */
export function syncedUpTo(widget, conversationId, upto) {
  const { state } = widget;
  if (!state.conv || state.conv.id !== conversationId) return;
  state.upto = Math.max(state.upto, upto);
  while (state.msgs.has(state.upto + 1)) state.upto += 1;
}

/**
 * Send the read mark soon (once for a burst), while the panel is open and the page seen.
 * @param {import("./state.js").Widget} widget
 */
export function scheduleRead(widget) {
  const { state } = widget;
  if (state.readTimer) return;
  state.readTimer = setTimeout(() => {
    state.readTimer = null;
    const c = state.conv;
    if (!c || !state.open || document.hidden || c.status === "closed") return;
    let top = 0;
    for (const m of state.msgs.values()) if (m.sender !== "buyer") top = Math.max(top, m.seq);
    if (top > state.readSent && widget.socket.send({ type: "read", conversation_id: c.id, seq: top })) {
      state.readSent = top;
    }
  }, 250);
}

/**
 * The agent read up to `seq`: receipts under the buyer's messages.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").ReadFrame} f
 */
export function onRead(widget, f) {
  const { state, ui } = widget;
  if (f.by !== "agent" || !state.conv || state.conv.id !== f.conversation_id) return;
  state.conv.agent_read_seq = Math.max(state.conv.agent_read_seq || 0, f.seq);
  for (const node of ui.messages.querySelectorAll(".msg.from-buyer[data-seq]")) setReceipt(widget, /** @type {HTMLElement} */ (node));
}

/**
 * The agent is typing: a notice for a few seconds.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").TypingFrame} f
 */
export function onTyping(widget, f) {
  if (f.by !== "agent") return;
  widget.state.typingUntil = Date.now() + 4000;
  renderTyping(widget);
}

/**
 * A sent message the server refused: it stays, marked, with the reason.
 * @param {import("./state.js").Widget} widget
 * @param {string} clientId
 * @param {string} reason
 */
export function markFailed({ ui, w }, clientId, reason) {
  const node = ui.messages.querySelector(`.pending[data-client="${CSS.escape(clientId)}"]`);
  if (!node) return;
  node.classList.add("failed");
  const note = node.querySelector(".state");
  if (note) note.textContent = `${w("failed")}: ${reason}`;
}
