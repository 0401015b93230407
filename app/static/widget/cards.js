// @ts-check
/* What a buyer can do under a card: claim a recall coupon, opt out of recalls, rate the
 * chat (1-5 stars under the closing notice). */

import { errorText } from "./api.js";

/**
 * Under a coupon card: claim a recall coupon; say a late-shipment coupon is already given;
 * the one-tap opt-out of recalls on cards that offer it.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").CouponCardPayload} payload
 * @returns {HTMLDivElement}
 */
export function couponActions(widget, payload) {
  const { H, state, w, api } = widget;
  const { el } = H;
  const coupon = payload.coupon || {};
  const row = el("div", { className: "card-actions" });
  const note = el("span", { className: "card-note", role: "status" });
  if (coupon.reason === "recall" && coupon.id) {
    const couponId = coupon.id;
    const claim = el("button", { type: "button", className: "claim", text: w("claim"), dataset: { coupon: couponId } });
    if (state.claimed.has(couponId)) showClaimed(widget, claim);
    claim.addEventListener("click", async () => {
      claim.disabled = true;
      claim.textContent = w("claiming");
      note.textContent = "";
      try {
        await api("POST", `/recall/coupons/${encodeURIComponent(couponId)}/claim`);
        state.claimed.add(couponId);
        showClaimed(widget, claim);
      } catch (err) {
        claim.disabled = false;
        claim.textContent = w("claim");
        note.textContent = w("actionFailed", { reason: errorText(err) });
      }
    });
    row.append(claim);
  } else if (coupon.reason === "late_shipment") {
    note.textContent = w("autoIssued");
  }
  row.append(note);
  if (payload.opt_out) {
    const optOut = el("button", { type: "button", className: "opt-out", text: w("optOut") });
    optOut.addEventListener("click", async () => {
      optOut.disabled = true;
      try {
        await api("POST", "/recall/opt-out");
        state.optedOut = true;
        showOptedOut(widget);
      } catch (err) {
        optOut.disabled = false;
        note.textContent = w("actionFailed", { reason: errorText(err) });
      }
    });
    row.append(optOut);
    if (state.optedOut) queueMicrotask(() => showOptedOut(widget));
  }
  return row;
}

/**
 * @param {import("./state.js").Widget} widget
 * @param {HTMLButtonElement} button
 */
function showClaimed({ w }, button) {
  button.disabled = true;
  button.textContent = w("claimed");
  button.classList.add("done");
}

/**
 * What this buyer already did with recall cards (claimed, opted out), so cards loaded
 * again after a reload show it; a card can still be claimed if this cannot be asked.
 * @param {import("./state.js").Widget} widget
 */
export async function loadRecallState(widget) {
  const { state, ui, api } = widget;
  /** @type {{claimed?: string[], opted_out?: boolean}} */
  let mine;
  try {
    mine = await api("GET", "/recall/me");
  } catch (err) {
    return;
  }
  for (const id of mine.claimed || []) state.claimed.add(id);
  for (const button of ui.messages.querySelectorAll("button.claim")) {
    const claim = /** @type {HTMLButtonElement} */ (button);
    if (state.claimed.has(claim.dataset.coupon || "")) showClaimed(widget, claim);
  }
  if (mine.opted_out) {
    state.optedOut = true;
    showOptedOut(widget);
  }
}

/** @param {import("./state.js").Widget} widget */
function showOptedOut({ H, ui, w }) {
  for (const link of ui.messages.querySelectorAll(".opt-out")) {
    link.replaceWith(H.el("span", { className: "opted-out", text: w("optedOut") }));
  }
}

/**
 * 1-5 stars under the closing notice; the server answers csat.received (once per conversation).
 * @param {import("./state.js").Widget} widget
 * @param {string} conversationId
 * @returns {HTMLDivElement}
 */
export function ratingRow(widget, conversationId) {
  const { H, w } = widget;
  const { el } = H;
  const row = el("div", { className: "csat", dataset: { conv: conversationId } }, [
    el("span", { className: "csat-label", text: w("rate") }),
  ]);
  const stars = el("div", { className: "stars", role: "group" });
  for (let n = 1; n <= 5; n += 1) {
    stars.append(el("button", {
      type: "button", className: "star", text: "★", dataset: { score: String(n) },
      "aria-label": w("stars", { n }),
      onclick: () => {
        if (widget.socket.send({ type: "csat.submit", conversation_id: conversationId, score: n })) {
          for (const b of stars.children) b.classList.toggle("on", Number(/** @type {HTMLElement} */ (b).dataset.score) <= n);
        }
      },
    }));
  }
  row.append(stars);
  return row;
}

/**
 * The rating arrived (or was already given): thanks instead of the stars.
 * @param {import("./state.js").Widget} widget
 * @param {string} conversationId
 */
export function thankForRating({ H, ui, w }, conversationId) {
  for (const row of ui.messages.querySelectorAll(`.csat[data-conv="${CSS.escape(conversationId)}"]`)) {
    row.replaceChildren(H.el("span", { className: "csat-thanks", text: w("thanks") }));
  }
}
