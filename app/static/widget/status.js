// @ts-check
/* The status line under the title: hello, connecting, the buyer's place in the queue, the
 * agent serving them, or closed. Queue positions count from 1 and are resent whenever
 * they change (`conversation.queued`); a transfer to a queue means waiting again. */

import { renderAway, onAway } from "./away.js";
import { renderHandoff } from "./bot.js";
import { renderTyping } from "./view.js";

/** @param {import("./state.js").Widget} widget */
export function renderStatus(widget) {
  const { state, ui, w } = widget;
  const c = state.conv;
  let text;
  if (!c) text = w("hello");
  else if (c.status === "closed") text = w("closed");
  else if (c.status === "assigned") text = w("assigned", { name: c.agent_name || "" });
  else if (c.handled_by === "bot") text = w("botHolds");
  else if (c.position) text = w("queued", { n: c.position });
  else text = w("connecting");
  ui.status.textContent = text;
  ui.status.dataset.state = c ? c.status : "none";
  renderAway(widget);
  renderHandoff(widget);
}

/**
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").ConversationQueuedFrame} f
 */
export function onQueued(widget, f) {
  const { state } = widget;
  if (state.conv && state.conv.id === f.conversation_id) {
    state.conv.position = f.position;
    if (f.reason) onAway(widget, f);
    renderStatus(widget);
  }
}

/**
 * To an agent: conversation.assigned follows. To a queue: we wait again.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").ConversationTransferredFrame} f
 */
export function onTransferred(widget, f) {
  const { state } = widget;
  if (state.conv && state.conv.id === f.conversation_id && f.to_queue) {
    Object.assign(state.conv, { status: "queued", agent_name: null, position: null, queue: f.to_queue });
    renderStatus(widget);
  }
}

/**
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").ConversationClosedFrame} f
 */
export function onClosed(widget, f) {
  const { state } = widget;
  if (state.conv && state.conv.id === f.conversation_id) {
    state.conv.status = "closed";
    renderStatus(widget);
    renderTyping(widget);
  }
}
