// @ts-check
/* After-sales in the widget: 申请售后 (and 一键价保 when a price drop is owed) under the
 * buyer's order cards, the sheet where the buyer picks the type, the reason, the amount
 * and photos; and the 1-5 answers to a follow-up visit (回访) under its card. The request
 * goes over HTTP; its card comes back over the socket like any message. */

import { errorText } from "./api.js";

/** @typedef {import("./frames.js").AfterSaleType} AfterSaleType */

/** @type {AfterSaleType[]} */
const TYPES = ["refund_only", "return_refund", "exchange", "damaged", "price_protection"];

/**
 * What the buyer may still ask for on each order, asked once per order per page.
 * @type {Map<string, Promise<import("./frames.js").OrderRoom | null>>}
 */
const rooms = new Map();

/**
 * @param {import("./state.js").Widget} widget
 * @param {string} orderId
 * @returns {Promise<import("./frames.js").OrderRoom | null>}
 */
function roomOf(widget, orderId) {
  let found = rooms.get(orderId);
  if (!found) {
    found = widget.api("GET", `/aftersales/orders/${encodeURIComponent(orderId)}`).catch(() => null);
    rooms.set(orderId, found);
  }
  return found;
}

/**
 * Under one of the buyer's own order cards: its latest tracking line (到哪了), 申请售后,
 * and 一键价保 if a drop is owed.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").Message} msg
 * @returns {HTMLDivElement | null}
 */
export function orderActions(widget, msg) {
  const { H, w } = widget;
  const orderId = msg.payload && msg.payload.order_id;
  if (msg.sender !== "buyer" || typeof orderId !== "string" || !orderId) return null;
  const row = H.el("div", { className: "card-actions aftersale-actions" });
  const ask = H.el("button", { type: "button", className: "aftersale-open", text: w("afterSales") });
  ask.addEventListener("click", () => openSheet(widget, msg.conversation_id, orderId));
  row.append(ask);
  roomOf(widget, orderId).then((room) => {
    if (room && room.tracking_line) {
      row.prepend(H.el("span", { className: "card-note tracking-line", text: w("tracking", { line: room.tracking_line }) }));
    }
    if (!room || room.price_protection_cents <= 0) return;
    const claim = H.el("button", {
      type: "button", className: "price-protect",
      text: w("priceProtect", { amount: H.money(room.price_protection_cents) }),
    });
    const note = H.el("span", { className: "card-note", role: "status" });
    claim.addEventListener("click", async () => {
      claim.disabled = true;
      try {
        await widget.api("POST", "/aftersales", {
          conversation_id: msg.conversation_id, order_id: orderId, type: "price_protection",
          amount_cents: room.price_protection_cents, reason: w("priceProtectReason"),
        });
        rooms.delete(orderId);
        claim.remove();
      } catch (err) {
        claim.disabled = false;
        note.textContent = w("actionFailed", { reason: errorText(err) });
      }
    });
    row.append(claim, note);
  });
  return row;
}

/**
 * The 申请售后 sheet, over the chat: type, reason, amount (up to what is left), photos.
 * @param {import("./state.js").Widget} widget
 * @param {string} conversationId
 * @param {string} orderId
 */
export async function openSheet(widget, conversationId, orderId) {
  const { H, ui, w, api } = widget;
  const { el } = H;
  const old = ui.panel.querySelector(".aftersale-sheet");
  if (old) old.remove();
  const room = await roomOf(widget, orderId);
  /** @type {string[]} */
  const photos = [];
  const amount = el("input", {
    className: "aftersale-amount", inputmode: "decimal", maxlength: "12",
    value: room ? (room.room_cents / 100).toFixed(2) : "",
  });
  const reason = el("textarea", { className: "aftersale-reason", rows: "2", maxlength: "500" });
  const file = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp", hidden: true });
  const photoNote = el("span", { className: "card-note aftersale-photos" });
  const addPhoto = el("button", { type: "button", className: "aftersale-photo", text: w("addPhoto") });
  const error = el("p", { className: "aftersale-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", className: "aftersale-submit", text: w("submitAfterSales") });
  const cancel = el("button", { type: "button", className: "aftersale-cancel", text: w("cancel") });
  const choices = el("div", { className: "aftersale-types", role: "radiogroup" },
    TYPES.map((t, i) => el("label", { className: "aftersale-type" }, [
      el("input", { type: "radio", name: "aftersale-type", value: t, checked: i === 0 }),
      el("span", { text: H.aftersaleType(t) }),
    ])));
  const left = room
    ? el("p", { className: "aftersale-left", text: w("leftOnOrder", { amount: H.money(room.room_cents) }) })
    : null;
  const form = el("form", { className: "aftersale-sheet", autocomplete: "off" }, [
    el("strong", { className: "sheet-title", text: `${w("afterSales")} · #${orderId}` }),
    choices,
    el("label", { className: "sheet-field" }, [el("span", { text: w("reason") }), reason]),
    el("label", { className: "sheet-field" }, [el("span", { text: w("amount") }), amount]),
    left,
    el("div", { className: "sheet-row" }, [addPhoto, file, photoNote]),
    error,
    el("div", { className: "sheet-row" }, [cancel, submit]),
  ]);
  addPhoto.addEventListener("click", () => file.click());
  file.addEventListener("change", async () => {
    const picked = file.files && file.files[0];
    file.value = "";
    if (!picked) return;
    const data = new FormData();
    data.append("file", picked);
    photoNote.textContent = w("uploading");
    try {
      /** @type {{upload_id: string}} */
      const up = await api("POST", "/uploads", data);
      photos.push(up.upload_id);
      photoNote.textContent = w("photos", { n: photos.length });
    } catch (err) {
      photoNote.textContent = w("actionFailed", { reason: errorText(err) });
    }
  });
  cancel.addEventListener("click", () => form.remove());
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const picked = /** @type {HTMLInputElement | null} */ (form.querySelector("input[name=aftersale-type]:checked"));
    const type = picked ? picked.value : "refund_only";
    const cents = type === "exchange" && !amount.value.trim() ? 0 : Math.round(Number(amount.value) * 100);
    if (!Number.isFinite(cents) || cents < 0) { showError(w("badAmount")); return; }
    submit.disabled = true;
    try {
      await api("POST", "/aftersales", {
        conversation_id: conversationId, order_id: orderId, type, amount_cents: cents,
        reason: reason.value, upload_ids: photos,
      });
      rooms.delete(orderId);
      form.remove();
    } catch (err) {
      submit.disabled = false;
      showError(errorText(err));
    }
  });
  /** @param {string} text */
  function showError(text) {
    error.textContent = text;
    error.hidden = false;
  }
  ui.chatPane.append(form);
  reason.focus();
}

/**
 * Under a 回访 card: goods and service, 1-5 stars each, sent once both are picked.
 * @param {import("./state.js").Widget} widget
 * @param {Record<string, any>} payload the care card's payload
 * @returns {HTMLDivElement | null}
 */
export function visitActions(widget, payload) {
  const { H, w, api } = widget;
  const { el } = H;
  if (!payload.visit || typeof payload.care_id !== "string") return null;
  /** @type {{goods: number, service: number}} */
  const scores = { goods: 0, service: 0 };
  const note = el("span", { className: "card-note", role: "status" });
  const row = el("div", { className: "card-actions visit", dataset: { care: payload.care_id } });
  for (const part of /** @type {("goods" | "service")[]} */ (["goods", "service"])) {
    const stars = el("div", { className: `stars visit-${part}`, role: "group", "aria-label": w(part) });
    for (let n = 1; n <= 5; n += 1) {
      stars.append(el("button", {
        type: "button", className: "star", text: "★", dataset: { score: String(n) },
        "aria-label": w("stars", { n }),
        onclick: () => {
          scores[part] = n;
          for (const b of stars.children) b.classList.toggle("on", Number(/** @type {HTMLElement} */ (b).dataset.score) <= n);
          if (scores.goods && scores.service) sendVisit();
        },
      }));
    }
    row.append(el("div", { className: "visit-part" }, [el("span", { text: w(part) }), stars]));
  }
  row.append(note);
  async function sendVisit() {
    try {
      await api("POST", `/care/visits/${encodeURIComponent(payload.care_id)}/rating`, scores);
      row.replaceChildren(el("span", { className: "csat-thanks", text: w("thanks") }));
    } catch (err) {
      note.textContent = /** @type {import("./api.js").ApiError} */ (err).code === "already_answered"
        ? w("thanks") : w("actionFailed", { reason: errorText(err) });
    }
  }
  return row;
}
