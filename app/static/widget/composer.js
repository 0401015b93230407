// @ts-check
/* What the buyer sends: text (Enter sends, Shift+Enter and IME composition do not), a
 * photo (uploaded over HTTP first), the product on the page. Sent messages show at once as
 * pending and are resent after a reconnect's hello with the same client id (no duplicate). */

import { errorText } from "./api.js";
import { pendingNode } from "./messages.js";
import { openPanel, scrollDown } from "./view.js";

/**
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").MessageSendFrame} frame
 */
function send(widget, frame) {
  widget.state.pending.set(frame.client_msg_id, frame);
  widget.ui.messages.append(pendingNode(widget, frame));
  scrollDown(widget);
  widget.socket.send(frame); // offline: resent after the reconnect's hello (same id: no duplicate)
}

/** @param {import("./state.js").Widget} widget */
function sendText(widget) {
  const { ui, H } = widget;
  const body = ui.input.value;
  if (!body.trim()) return;
  ui.input.value = "";
  autosize(widget);
  send(widget, { type: "message.send", client_msg_id: H.newClientId(), kind: "text", body });
}

/**
 * A photo: uploaded over HTTP first, then sent as an image message with its upload id.
 * @param {import("./state.js").Widget} widget
 * @param {File} file
 */
async function sendPhoto(widget, file) {
  const { ui, H, w, api } = widget;
  const { el } = H;
  const clientId = H.newClientId();
  const note = el("span", { className: "state", text: w("sending") });
  const waiting = el("li", { className: "msg from-buyer pending uploading", dataset: { client: clientId } }, [
    el("div", { className: "bubble" }, el("p", { className: "text", text: w("uploading") })),
    el("div", { className: "meta" }, note),
  ]);
  ui.messages.append(waiting);
  scrollDown(widget);
  const form = new FormData();
  form.append("file", file);
  /** @type {{upload_id: string}} */
  let uploaded;
  try {
    uploaded = await api("POST", "/uploads", form);
  } catch (err) {
    waiting.classList.add("failed");
    note.textContent = `${w("failed")}: ${errorText(err)}`;
    return;
  }
  waiting.remove();
  send(widget, { type: "message.send", client_msg_id: clientId, kind: "image", body: "", payload: { upload_id: uploaded.upload_id } });
}

/**
 * The product on the shop's page, as a card (opens the panel).
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").ProductPayload | null | undefined} p
 */
export function sendProduct(widget, p) {
  if (!p) return;
  openPanel(widget);
  send(widget, {
    type: "message.send", client_msg_id: widget.H.newClientId(), kind: "product_card", body: "",
    payload: { product_id: p.product_id, title: p.title, category: p.category || null, price_cents: p.price_cents },
  });
}

/**
 * One of the buyer's orders, as a card (the shop's order page calls it; opens the panel).
 * @param {import("./state.js").Widget} widget
 * @param {string} orderId
 */
export function sendOrder(widget, orderId) {
  if (!orderId) return;
  openPanel(widget);
  send(widget, {
    type: "message.send", client_msg_id: widget.H.newClientId(), kind: "order_card", body: "",
    payload: { order_id: String(orderId) },
  });
}

/** @param {import("./state.js").Widget} widget */
function autosize({ ui }) {
  ui.input.style.height = "auto";
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 120)}px`;
}

/** @param {import("./state.js").Widget} widget */
export function bindComposer(widget) {
  const { ui, state, config } = widget;
  const { product } = config;
  if (ui.productSend) ui.productSend.addEventListener("click", () => sendProduct(widget, product));
  ui.composer.addEventListener("submit", (e) => { e.preventDefault(); sendText(widget); });
  ui.photo.addEventListener("click", () => ui.file.click());
  ui.file.addEventListener("change", () => {
    const file = ui.file.files && ui.file.files[0];
    ui.file.value = "";
    if (file) sendPhoto(widget, file);
  });
  ui.input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sendText(widget);
    }
  });
  ui.input.addEventListener("input", () => {
    autosize(widget);
    const c = state.conv;
    if (c && c.status !== "closed" && Date.now() - state.lastTyping > 3000) {
      state.lastTyping = Date.now();
      widget.socket.send({ type: "typing", conversation_id: c.id });
    }
  });
}
