// @ts-check
/* The shop's assistant in the chat (智能接待): its answers carry a badge and 有帮助 / 没帮助
 * buttons (frame `bot.feedback`), and while it holds the chat a 转人工 button is at hand
 * (frame `handoff.request`); `conversation.handed_off` ends that. */

/**
 * The badge and the feedback buttons under one of the assistant's answers.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").Message} msg
 * @returns {HTMLElement[]}
 */
export function botExtras(widget, msg) {
  const { H, w } = widget;
  const { el } = H;
  const badge = el("span", { className: "bot-badge", text: w("botBadge") });
  const payload = msg.payload || {};
  if (!payload.bot || payload.bot.greeting) return [badge];
  /** @param {boolean} helpful */
  const vote = (helpful) => () => {
    widget.socket.send({ type: "bot.feedback", message_id: msg.id, helpful });
  };
  const row = el("div", { className: "bot-feedback", dataset: { message: msg.id } }, [
    el("button", { type: "button", className: "bot-helpful", text: w("helpful"), onclick: vote(true) }),
    el("button", { type: "button", className: "bot-not-helpful", text: w("notHelpful"), onclick: vote(false) }),
  ]);
  return [badge, row];
}

/**
 * The server stored the buyer's vote: say thanks in place of the buttons.
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").BotFeedbackFrame} f
 */
export function onFeedback({ ui, w }, f) {
  const row = ui.panel.querySelector(`.bot-feedback[data-message="${CSS.escape(f.message_id)}"]`);
  if (row) {
    row.textContent = w("feedbackThanks");
    row.classList.add("done");
  }
}

/**
 * Show the 转人工 button while the assistant holds the chat, and only then.
 * @param {import("./state.js").Widget} widget
 */
export function renderHandoff(widget) {
  const { state, ui, H, w } = widget;
  const holds = Boolean(state.conv && state.conv.handled_by === "bot" && state.conv.status !== "closed");
  let button = /** @type {HTMLButtonElement | null} */ (ui.panel.querySelector(".handoff"));
  if (!button) {
    button = /** @type {HTMLButtonElement} */ (H.el("button", { type: "button", className: "handoff", text: w("handoff") }));
    button.addEventListener("click", () => {
      if (state.conv) widget.socket.send({ type: "handoff.request", conversation_id: state.conv.id });
    });
    ui.status.after(button);
  }
  button.hidden = !holds;
}

/**
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").HandedOffFrame} f
 */
export function onHandedOff(widget, f) {
  const { state } = widget;
  if (state.conv && state.conv.id === f.conversation_id) {
    state.conv.handled_by = "human";
    if (f.queue) state.conv.queue = f.queue;
  }
  renderHandoff(widget);
}
