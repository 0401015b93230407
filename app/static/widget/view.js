// @ts-check
/* The widget's DOM, in a shadow root (the shop's CSS cannot reach in, ours cannot leak
 * out), and the parts of it that change: the words (with elder mode), the offline bar,
 * the typing notice, the unread badge, the open panel and the tabs. */

import { setReceipt, scheduleRead } from "./messages.js";
import { renderStatus } from "./status.js";

/**
 * A one-path SVG icon (aria-hidden: the button it sits in carries the words).
 * @param {string} d
 * @param {string} [className]
 * @returns {SVGSVGElement}
 */
function icon(d, className) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  if (className) svg.setAttribute("class", className);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", d);
  svg.append(path);
  return svg;
}
const chatIcon = () => icon("M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2h-9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z", "launcher-icon");
const cameraIcon = () => icon("M9 4h6l1.5 2H20a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h3.5L9 4zm3 4.5a4.5 4.5 0 1 0 0 9 4.5 4.5 0 0 0 0-9zm0 2a2.5 2.5 0 1 1 0 5 2.5 2.5 0 0 1 0-5z");

/**
 * Draw the launcher and the (hidden) panel into the page's body.
 * @param {import("./shared.js").HomingShared} H
 * @param {import("./config.js").Config} config
 * @param {import("./state.js").Widget["w"]} w
 * @returns {{host: HTMLDivElement, ui: import("./state.js").UI}}
 */
export function buildUi(H, config, w) {
  const { el, money } = H;
  const { product } = config;
  const host = el("div", { id: "homing-widget" });
  host.style.visibility = "hidden"; // until our stylesheet is in
  const root = host.attachShadow({ mode: "open" });
  const sheet = el("link", { rel: "stylesheet", href: `${config.server}/static/widget.css` });
  sheet.onload = sheet.onerror = () => { host.style.visibility = ""; };

  const badge = el("span", { className: "badge", hidden: true });
  const launcherText = el("span", { text: w("launcher") });
  const messages = el("ol", { className: "messages", "aria-live": "polite" });
  const typing = el("div", { className: "typing", hidden: true });
  const productBar = el("div", { className: "product-bar", hidden: !product });
  const input = el("textarea", { rows: "1", maxlength: "4000", className: "input" });
  const send = el("button", { type: "submit", className: "send" });
  const file = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp", className: "file", hidden: true });
  const photo = el("button", { type: "button", className: "photo" }, cameraIcon());
  const composer = el("form", { className: "composer", autocomplete: "off" }, [photo, file, input, send]);
  /** @type {import("./state.js").UI} */
  const ui = {
    badge,
    launcherText,
    launcher: el("button", { type: "button", className: "launcher", "aria-expanded": "false" },
      [chatIcon(), launcherText, badge]),
    title: el("strong", { className: "title", text: w("title") }),
    status: el("span", { className: "status-line", role: "status" }),
    elder: el("button", { type: "button", className: "elder-toggle", "aria-pressed": "false" }),
    closeBtn: el("button", { type: "button", className: "close", text: "×" }),
    offline: el("div", { className: "offline", role: "alert", hidden: true }),
    messages,
    typing,
    productBar,
    input,
    send,
    file,
    photo,
    composer,
    chatTab: el("button", { type: "button", className: "tab tab-chat", role: "tab" }),
    groupsTab: el("button", { type: "button", className: "tab tab-groups", role: "tab" }),
    chatPane: el("div", { className: "pane chat-pane" }, [messages, typing, productBar, composer]),
    groupsPane: el("div", { className: "pane groups-pane", hidden: true }),
    panel: el("section", { className: "panel", role: "dialog", hidden: true }),
  };
  ui.panel.append(
    el("header", { className: "head" }, [
      el("div", { className: "head-text" }, [ui.title, ui.status]),
      ui.elder, ui.closeBtn,
    ]),
    el("nav", { className: "tabs", role: "tablist" }, [ui.chatTab, ui.groupsTab]),
    ui.offline, ui.chatPane, ui.groupsPane,
  );
  root.append(sheet, ui.panel, ui.launcher);
  document.body.append(host);

  if (product) {
    ui.productSend = el("button", { type: "button", className: "product-send" });
    ui.productBar.append(
      el("div", { className: "product-mini" }, [
        el("span", { className: "product-label" }),
        el("strong", { className: "product-title", text: product.title || "" }),
        el("span", { className: "product-price", text: money(product.price_cents) }),
      ]),
      ui.productSend,
    );
  }
  return { host, ui };
}

/**
 * Words on screen (they change with elder mode).
 * @param {import("./state.js").Widget} widget
 */
export function renderWords(widget) {
  const { state, ui, w, host, groups } = widget;
  host.classList.toggle("elder", state.elder);
  ui.panel.classList.toggle("elder", state.elder);
  ui.launcher.classList.toggle("elder", state.elder);
  ui.launcherText.textContent = w("launcher");
  ui.title.textContent = w("title");
  ui.elder.textContent = state.elder ? w("elderOff") : w("elderOn");
  ui.elder.setAttribute("aria-pressed", String(state.elder));
  ui.closeBtn.setAttribute("aria-label", w("close"));
  ui.panel.setAttribute("aria-label", w("title"));
  ui.input.placeholder = w("placeholder");
  ui.send.textContent = w("send");
  ui.photo.setAttribute("aria-label", w("photo"));
  ui.photo.title = w("photo");
  ui.chatTab.textContent = w("chatTab");
  ui.groupsTab.textContent = w("groupsTab");
  for (const link of ui.messages.querySelectorAll(".opt-out")) link.textContent = w("optOut");
  if (groups) groups.renderWords();
  ui.offline.textContent = state.fatal || w("offline");
  ui.typing.textContent = w("typing");
  if (ui.productSend) {
    ui.productSend.textContent = w("sendProduct");
    const label = ui.productBar.querySelector(".product-label");
    if (label) label.textContent = w("browsing");
  }
  for (const node of ui.messages.querySelectorAll(".msg.from-buyer[data-seq]")) setReceipt(widget, /** @type {HTMLElement} */ (node));
  renderStatus(widget);
}

/** @param {import("./state.js").Widget} widget */
export function renderOffline({ state, ui, w }) {
  ui.offline.hidden = state.connected && !state.fatal;
  ui.offline.textContent = state.fatal || w("offline");
}

/** @param {import("./state.js").Widget} widget */
export function renderTyping({ state, ui }) {
  ui.typing.hidden = !(state.conv && state.conv.status === "assigned" && state.typingUntil > Date.now());
}

/** @param {import("./state.js").Widget} widget */
export function renderBadge({ state, ui }) {
  ui.badge.hidden = state.open || !state.unseen;
  ui.badge.textContent = String(state.unseen);
}

/** @param {import("./state.js").Widget} widget */
export function scrollDown({ ui }) {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

/** @param {import("./state.js").Widget} widget */
export function openPanel(widget) {
  const { state, ui } = widget;
  state.open = true;
  state.unseen = 0;
  ui.panel.hidden = false;
  ui.launcher.hidden = true;
  ui.launcher.setAttribute("aria-expanded", "true");
  renderBadge(widget);
  scrollDown(widget);
  scheduleRead(widget);
  ui.input.focus();
}

/** @param {import("./state.js").Widget} widget */
export function closePanel(widget) {
  const { state, ui } = widget;
  state.open = false;
  ui.panel.hidden = true;
  ui.launcher.hidden = false;
  ui.launcher.setAttribute("aria-expanded", "false");
  renderBadge(widget);
}

/**
 * The chat or the fan groups.
 * @param {import("./state.js").Widget} widget
 * @param {"chat" | "groups"} tab
 */
export function showTab({ state, ui, groups }, tab) {
  state.tab = tab;
  ui.chatPane.hidden = tab !== "chat";
  ui.groupsPane.hidden = tab !== "groups";
  ui.chatTab.setAttribute("aria-selected", String(tab === "chat"));
  ui.groupsTab.setAttribute("aria-selected", String(tab === "groups"));
  if (tab === "groups" && groups) groups.show();
}

/**
 * The buttons of the frame around the chat.
 * @param {import("./state.js").Widget} widget
 */
export function bindView(widget) {
  const { ui } = widget;
  ui.launcher.addEventListener("click", () => openPanel(widget));
  ui.closeBtn.addEventListener("click", () => closePanel(widget));
  ui.chatTab.addEventListener("click", () => showTab(widget, "chat"));
  ui.groupsTab.addEventListener("click", () => showTab(widget, "groups"));
  document.addEventListener("visibilitychange", () => scheduleRead(widget));
  setInterval(() => renderTyping(widget), 1000);
}
