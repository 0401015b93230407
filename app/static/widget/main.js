// @ts-check
/* The storefront widget's entry: widget.js (the one tag a shop pastes) imports this module
 * and calls start() with its own tag. Loads homing.js and the fan-group pane in parallel,
 * waits for the page's body, and mounts one widget per page. */

import { buyerApi } from "./api.js";
import { bindComposer, sendOrder, sendProduct } from "./composer.js";
import { readConfig } from "./config.js";
import { connect } from "./connection.js";
import { bindElderToggle, wordsFor } from "./elder.js";
import { loadShared } from "./shared.js";
import { LOCALES, useTranslations } from "./strings.js";
import { newState } from "./state.js";
import { bindView, buildUi, closePanel, openPanel, renderOffline, renderWords, showTab } from "./view.js";

/**
 * What the page can call: `window.HomingWidget`.
 * @typedef {object} PageApi
 * @property {() => void} open
 * @property {() => void} close
 * @property {(product: import("./frames.js").ProductPayload) => void} sendProduct
 * @property {(orderId: string) => void} sendOrder an order card (its 申请售后 under it)
 * @property {(tab: "chat" | "groups") => void} showTab
 */

/** @typedef {typeof import("./groups.js")} GroupsModule */

/**
 * @param {HTMLScriptElement} script the widget.js tag, with its data- attributes
 */
export function start(script) {
  const config = readConfig(script);
  /** @type {import("./shared.js").HomingShared | null} */
  let homing = null;
  /** @type {GroupsModule | null} */
  let groupsModule = null;
  /** @type {Record<string, string | string[]>} */
  let catalog = {};
  let left = 3;
  const loaded = () => {
    left -= 1;
    if (left || !homing) return;
    const shared = homing;
    // The widget's words and homing.js's cards and notices, in the tag's language.
    shared.setCatalog(catalog);
    useTranslations(shared);
    whenBodyReady(() => {
      // One widget per page, however many times the tag was pasted in.
      if (!document.getElementById("homing-widget")) mount(config, shared, groupsModule);
    });
  };
  loadShared(config.server, (h) => { homing = h; loaded(); });
  // The groups pane is optional: a failed load still mounts the chat.
  import("./groups.js").then((m) => { groupsModule = m; }, () => {}).then(loaded);
  // The catalog, compiled from app/locale/<lang>/LC_MESSAGES/widget.po; without it the
  // widget shows the English source text.
  fetch(`${config.server}/static/locale/widget.${LOCALES[config.lang]}.json`)
    .then((res) => (res.ok ? res.json() : {}))
    .then((found) => { catalog = found; }, () => {})
    .then(loaded);
}

/** @param {() => void} done */
function whenBodyReady(done) {
  if (document.body) done();
  else document.addEventListener("DOMContentLoaded", done, { once: true });
}

/**
 * @param {import("./config.js").Config} config
 * @param {import("./shared.js").HomingShared} H
 * @param {GroupsModule | null} groupsModule
 */
function mount(config, H, groupsModule) {
  const state = newState();
  const w = wordsFor(state);
  const { host, ui } = buildUi(H, config, w);
  /** @type {import("./state.js").Widget} */
  const widget = {
    config, H, state, host, ui, w,
    api: buyerApi(config, () => w("offline")),
    socket: /** @type {any} */ (null), // just below: its handlers need the widget
    groups: null,
  };
  widget.socket = connect(widget);

  bindView(widget);
  bindComposer(widget);
  bindElderToggle(widget);

  // The fan-group pane: same socket, same token, same words switch.
  widget.groups = groupsModule
    ? groupsModule.mount({ pane: ui.groupsPane, Homing: H, lang: config.lang, api: widget.api, socket: widget.socket })
    : null;
  if (!widget.groups) ui.groupsTab.hidden = true;
  showTab(widget, "chat");

  /** @type {PageApi} */
  const page = {
    open: () => openPanel(widget),
    close: () => closePanel(widget),
    sendProduct: (product) => sendProduct(widget, product),
    sendOrder: (orderId) => sendOrder(widget, orderId),
    showTab: (tab) => showTab(widget, tab),
  };
  /** @type {Window & {HomingWidget?: PageApi}} */ (window).HomingWidget = page;
  renderWords(widget);
  renderOffline(widget);
  ui.offline.hidden = true; // not "offline" before the first attempt has had its chance
  widget.socket.start();
}
