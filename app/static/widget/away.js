// @ts-check
/* The 留言 banner: while the buyer waits and nobody can answer (outside the shop's service
 * hours, or no agent of the queue online), the server says so at once
 * (`conversation.queued` with `reason` and `opens_at`, or `left_message` on the
 * conversation after a reload). The banner asks the buyer to leave a message and, outside
 * the hours, says when the shop opens, on the shop's clock (`time_zone`). It goes when an
 * agent takes the conversation or it closes. */

/**
 * When the shop opens, on its own clock, in the widget's language ("12月3日 09:00").
 * @param {string} iso
 * @param {string | null | undefined} zone IANA zone of the shop
 * @param {"zh" | "en"} lang
 * @returns {string}
 */
export function openingTime(iso, zone, lang) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const options = /** @type {Intl.DateTimeFormatOptions} */ ({
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
  });
  try {
    return new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", { ...options, timeZone: zone || undefined }).format(at);
  } catch {
    return new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", options).format(at);
  }
}

/**
 * The buyer's conversation waits while nobody can answer: remember why, show the banner.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").ConversationQueuedFrame} f
 */
export function onAway(widget, f) {
  const conv = widget.state.conv;
  if (!conv || conv.id !== f.conversation_id || !f.reason) return;
  conv.left_message = { reason: f.reason, opens_at: f.opens_at || null, time_zone: f.time_zone || null };
  renderAway(widget);
}

/**
 * Show or hide the banner for the conversation as it is now.
 * @param {import("./state.js").Widget} widget
 */
export function renderAway(widget) {
  const { state, ui, w, H, config } = widget;
  const conv = state.conv;
  const away = conv && conv.status === "queued" ? conv.left_message : null;
  let banner = /** @type {HTMLDivElement | null} */ (ui.chatPane.querySelector(".away"));
  if (!away) {
    if (banner) banner.hidden = true;
    return;
  }
  if (!banner) {
    banner = /** @type {HTMLDivElement} */ (H.el("div", { className: "away", role: "status" }));
    ui.chatPane.prepend(banner);
  }
  const lines = [w("away")];
  if (away.opens_at) lines.push(w("awayOpens", { t: openingTime(away.opens_at, away.time_zone, config.lang) }));
  banner.textContent = lines.join(" ");
  banner.dataset.reason = away.reason;
  banner.hidden = false;
}
