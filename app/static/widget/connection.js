// @ts-check
/* The buyer socket (`/ws/buyer?token=JWT`): one connection that reconnects by itself with
 * back-off (homing.js's Socket), and what each server frame does to the widget. After every
 * (re)connect's hello the widget syncs what it missed and resends what is still pending;
 * a refused token (close 4401) stops it for good. */

import { onFeedback, onHandedOff } from "./bot.js";
import { loadRecallState, thankForRating } from "./cards.js";
import { onElderMode } from "./elder.js";
import { markFailed, onRead, onTyping, receive, syncedUpTo, useConversation } from "./messages.js";
import { onClosed, onQueued, onTransferred } from "./status.js";
import { renderOffline, renderWords } from "./view.js";

/**
 * @param {import("./state.js").Widget} widget
 * @returns {import("./frames.js").FrameHandlers}
 */
function handlers(widget) {
  const { state } = widget;
  return {
    hello(f) {
      state.connected = true;
      state.elder = Boolean(f.elder_mode);
      if (f.conversation) {
        const same = state.conv && state.conv.id === f.conversation.id;
        useConversation(widget, f.conversation);
        // Reconnected to the same conversation: only what we missed.
        if (same) widget.socket.send({ type: "sync", conversation_id: f.conversation.id, after_seq: state.upto });
      } else if (state.conv && state.conv.status !== "closed") {
        state.conv.status = "closed"; // ended while we were away
      }
      for (const frame of state.pending.values()) widget.socket.send(frame);
      renderWords(widget);
      renderOffline(widget);
      loadRecallState(widget);
    },
    "message.ack"(f) {
      if (f.message && f.message.group_id) { if (widget.groups) widget.groups.onFrame(f); return; }
      receive(widget, f.message);
    },
    "message.new"(f) { receive(widget, f.message); },
    "sync.done"(f) { syncedUpTo(widget, f.conversation_id, f.upto); },
    "conversation.opened"(f) { useConversation(widget, f.conversation); },
    "conversation.queued"(f) { onQueued(widget, f); },
    "conversation.assigned"(f) { useConversation(widget, f.conversation); },
    "conversation.transferred"(f) { onTransferred(widget, f); },
    "conversation.closed"(f) { onClosed(widget, f); },
    typing(f) { onTyping(widget, f); },
    read(f) { onRead(widget, f); },
    elder_mode(f) { onElderMode(widget, f); },
    "csat.received"(f) { thankForRating(widget, f.conversation_id); },
    "conversation.handed_off"(f) { onHandedOff(widget, f); },
    "bot.feedback"(f) { onFeedback(widget, f); },
    error(f) {
      if (f.code === "already_rated" && state.conv) thankForRating(widget, state.conv.id);
      if (f.ref && state.pending.has(f.ref)) {
        state.pending.delete(f.ref);
        markFailed(widget, f.ref, f.message);
      }
    },
  };
}

/**
 * The frames the fan-group pane reads: its own, hello, and errors about frames it sent.
 * @param {import("./state.js").State} state
 * @param {import("./frames.js").ServerFrame} frame
 * @returns {boolean}
 */
function forGroups(state, frame) {
  return frame.type.startsWith("group.") || frame.type === "hello" ||
    (frame.type === "error" && Boolean(frame.ref) && !state.pending.has(frame.ref || ""));
}

/**
 * The buyer socket, not started yet.
 * @param {import("./state.js").Widget} widget
 * @returns {import("./shared.js").HomingSocket}
 */
export function connect(widget) {
  const { state, config, w } = widget;
  const on = handlers(widget);
  const wsBase = config.server.replace(/^http/, "ws");
  return new widget.H.Socket(`${wsBase}/ws/buyer?token=${encodeURIComponent(config.token || "")}`, {
    onFrame: (frame) => {
      if (widget.groups && forGroups(state, frame)) widget.groups.onFrame(frame);
      const h = /** @type {((f: import("./frames.js").ServerFrame) => void) | undefined} */ (on[frame.type]);
      if (h) h(frame);
    },
    onDown: () => { state.connected = false; renderOffline(widget); },
    onUnauthorized: () => { state.connected = false; state.fatal = w("badToken"); renderOffline(widget); },
  });
}
