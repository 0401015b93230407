// @ts-check
/* The storefront widget's fan-group pane (粉丝群): find and join a group, chat in it, check in
 * once a day, claim giveaways. It shares the widget's socket (group.send / group.sync /
 * group.message frames) and its buyer token for HTTP. Everything people typed goes on the
 * page with textContent. */

import { errorText } from "./api.js";
import { GROUP_WORDS, fill } from "./strings.js";

/** @typedef {import("./frames.js").Group} Group */
/** @typedef {import("./frames.js").GroupMessage} GroupMessage */
/** @typedef {import("./frames.js").Giveaway} Giveaway */

/**
 * What the widget calls on the pane.
 * @typedef {object} GroupsPane
 * @property {(frame: import("./frames.js").ServerFrame) => void} onFrame
 * @property {() => void} show the tab was opened
 * @property {() => void} renderWords
 */

/**
 * Build the pane into `pane`.
 * @param {object} parts
 * @param {HTMLElement} parts.pane
 * @param {import("./shared.js").HomingShared} parts.Homing
 * @param {import("./strings.js").Lang} parts.lang
 * @param {import("./api.js").Api} parts.api
 * @param {import("./shared.js").HomingSocket} parts.socket
 * @returns {GroupsPane}
 */
export function mount({ pane, Homing, lang, api, socket }) {
  const { el, newClientId, money, clockTime, insertBySeq } = Homing;
  const words = GROUP_WORDS[lang] || GROUP_WORDS.zh;
  /** @type {(key: string, vars?: Record<string, string | number>) => string} */
  const w = (key, vars) => fill(words[key], vars);

  const state = {
    /** @type {string | null} this buyer */
    me: null,
    /** @type {Map<string, Group>} */
    groups: new Map(),
    /** @type {string | null} the group open on screen */
    room: null,
    /** @type {Map<string, number>} the highest seq seen per group */
    seen: new Map(),
    /** @type {Set<string>} ids of the messages on screen */
    ids: new Set(),
    /** @type {Map<string, HTMLLIElement>} sent, not acknowledged, by client_msg_id */
    pending: new Map(),
    /** @type {Map<string, number>} check-in streaks */
    streak: new Map(),
  };

  const ui = {
    list: el("ol", { className: "group-list" }),
    listHead: el("p", { className: "group-list-head" }),
    room: el("div", { className: "room", hidden: true }),
    back: el("button", { type: "button", className: "back" }),
    roomName: el("strong", { className: "room-name" }),
    checkin: el("button", { type: "button", className: "checkin" }),
    roomStatus: el("p", { className: "room-status", role: "status", hidden: true }),
    messages: el("ol", { className: "group-messages", "aria-live": "polite" }),
    input: el("input", { className: "group-input", maxlength: "4000" }),
    send: el("button", { type: "submit", className: "group-send" }),
  };
  const composer = el("form", { className: "group-composer", autocomplete: "off" }, [ui.input, ui.send]);
  ui.room.append(
    el("div", { className: "room-head" }, [ui.back, ui.roomName, ui.checkin]),
    ui.roomStatus, ui.messages, composer,
  );
  const lobby = el("div", { className: "lobby" }, [ui.listHead, ui.list]);
  pane.append(lobby, ui.room);

  // ---- the list of groups ----------------------------------------------------------
  /**
   * What the server said about a group, over what was known.
   * @param {Group} g
   */
  function remember(g) {
    state.groups.set(g.id, { ...(state.groups.get(g.id) || {}), ...g });
  }

  async function loadList() {
    ui.listHead.textContent = w("loading");
    try {
      for (const g of await api("GET", "/groups?all=true")) remember(g);
      ui.listHead.textContent = state.groups.size ? w("groups") : w("none");
    } catch (err) {
      ui.listHead.textContent = w("failedAction", { reason: errorText(err) });
    }
    renderList();
  }

  function renderList() {
    ui.list.replaceChildren(...[...state.groups.values()].map((g) => {
      /** @type {HTMLElement} */
      let action;
      if (g.member_status === "active") {
        action = el("button", { type: "button", className: "enter", text: w("enter"), onclick: () => enter(g.id) });
      } else if (g.member_status === "removed") {
        action = el("span", { className: "removed", text: w("removed") });
      } else {
        action = el("button", { type: "button", className: "join primary", text: w("join"), onclick: () => join(g.id, /** @type {HTMLButtonElement} */ (action)) });
      }
      return el("li", { className: "group-item", dataset: { group: g.id } }, [
        el("div", { className: "group-text" }, [
          el("strong", { className: "group-name", text: g.name }),
          el("span", { className: "group-count", text: w("members", { n: g.member_count }) }),
        ]),
        action,
      ]);
    }));
  }

  /**
   * @param {string} groupId
   * @param {HTMLButtonElement} button
   */
  async function join(groupId, button) {
    button.disabled = true;
    try {
      remember({ ...(await api("POST", `/groups/${encodeURIComponent(groupId)}/join`)), member_status: "active" });
      enter(groupId);
    } catch (err) {
      button.disabled = false;
      ui.listHead.textContent = w("failedAction", { reason: errorText(err) });
    }
  }

  // ---- one group -------------------------------------------------------------------
  /** @param {string} groupId */
  function enter(groupId) {
    const g = state.groups.get(groupId);
    if (!g) return;
    state.room = groupId;
    lobby.hidden = true;
    ui.room.hidden = false;
    ui.room.dataset.group = groupId;
    ui.roomName.textContent = g.name;
    ui.messages.replaceChildren();
    state.ids = new Set();
    state.seen.set(groupId, 0);
    renderRoom();
    // Everything so far (the server pages it), then live group.message frames.
    socket.send({ type: "group.sync", group_id: groupId, after_seq: 0 });
    ui.input.focus();
  }

  /* Back to the list of groups. */
  function leaveRoom() {
    state.room = null;
    ui.room.hidden = true;
    lobby.hidden = false;
    loadList();
  }

  /**
   * The mute in force (this buyer's own or the whole group's, whichever ends later), if any.
   * @param {Group} g
   * @returns {{at: string, mine: boolean} | null}
   */
  function mutedUntil(g) {
    const now = Date.now();
    const mine = g.my_muted_until && Date.parse(g.my_muted_until) > now ? Date.parse(g.my_muted_until) : 0;
    const all = g.muted_until && Date.parse(g.muted_until) > now ? Date.parse(g.muted_until) : 0;
    if (!mine && !all) return null;
    return mine >= all ? { at: String(g.my_muted_until), mine: true } : { at: String(g.muted_until), mine: false };
  }

  function renderRoom() {
    const g = state.room ? state.groups.get(state.room) : undefined;
    if (!g) return;
    const streak = state.streak.get(g.id);
    ui.checkin.textContent = streak ? w("checkedIn", { n: streak }) : w("checkin");
    ui.checkin.classList.toggle("done", Boolean(streak));
    const mute = mutedUntil(g);
    const removed = g.member_status !== "active";
    let note = "";
    if (removed) note = w("removedNote");
    else if (mute) note = w(mute.mine ? "mutedMe" : "mutedAll", { t: clockTime(mute.at) });
    ui.roomStatus.textContent = note;
    ui.roomStatus.hidden = !note;
    ui.input.disabled = removed || Boolean(mute);
    ui.send.disabled = ui.input.disabled;
    ui.checkin.disabled = removed;
  }

  /**
   * The sender's name as this buyer sees it.
   * @param {GroupMessage} msg
   */
  function who(msg) {
    if (msg.sender === "agent") return w("shop");
    if (msg.sender === "system") return "";
    if (msg.sender_id === state.me) return w("me");
    return w("member", { id: String(msg.sender_id || "").slice(-4) });
  }

  /**
   * @param {Giveaway} gw
   * @returns {HTMLDivElement}
   */
  function giveawayCard(gw) {
    const coupon = gw.coupon || {};
    const result = el("span", { className: "card-note", role: "status" });
    const claim = el("button", { type: "button", className: "claim-giveaway", text: w("claim") });
    claim.addEventListener("click", async () => {
      claim.disabled = true;
      try {
        await api("POST", `/giveaways/${encodeURIComponent(gw.id)}/claim`);
        claim.textContent = w("claimed");
        claim.classList.add("done");
      } catch (err) {
        const { code } = /** @type {import("./api.js").ApiError} */ (err);
        if (code === "sold_out" || code === "already_claimed") {
          claim.textContent = w(code === "sold_out" ? "soldOut" : "alreadyClaimed");
        } else {
          claim.disabled = false;
          result.textContent = w("failedAction", { reason: errorText(err) });
        }
      }
    });
    return el("div", { className: "card card-giveaway", dataset: { giveaway: gw.id } }, [
      el("span", { className: "card-label", text: w("giveaway") }),
      el("strong", { className: "card-title", text: gw.title || "" }),
      coupon.amount_cents ? el("span", { className: "card-price", text: money(coupon.amount_cents) }) : null,
      el("span", { className: "card-sub", text: w("giveawayLeft", { q: gw.quantity }) }),
      el("div", { className: "card-actions" }, [claim, result]),
    ]);
  }

  /**
   * @param {GroupMessage} msg
   * @returns {HTMLLIElement}
   */
  function messageNode(msg) {
    const gw = msg.kind === "giveaway" && msg.payload && msg.payload.giveaway;
    return el("li", {
      className: `gmsg from-${msg.sender} kind-${msg.kind}${msg.sender_id === state.me ? " mine" : ""}`,
      dataset: { seq: String(msg.seq), id: msg.id },
    }, [
      el("span", { className: "who", text: who(msg) }),
      gw ? giveawayCard(gw) : el("span", { className: "text", text: msg.body || "" }),
      el("time", { text: clockTime(msg.created_at) }),
    ]);
  }

  /**
   * A message of the open group (acknowledged, live or synced), once.
   * @param {GroupMessage} msg
   */
  function receive(msg) {
    if (msg.group_id !== state.room || state.ids.has(msg.id)) return;
    state.ids.add(msg.id);
    state.seen.set(msg.group_id, Math.max(state.seen.get(msg.group_id) || 0, msg.seq));
    const waiting = msg.client_msg_id && state.pending.get(msg.client_msg_id);
    if (msg.client_msg_id && waiting) {
      state.pending.delete(msg.client_msg_id);
      waiting.replaceWith(messageNode(msg));
    } else {
      insertBySeq(ui.messages, messageNode(msg), msg.seq);
    }
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function sendText() {
    const body = ui.input.value.trim();
    if (!body || !state.room) return;
    const clientId = newClientId();
    const node = el("li", { className: "gmsg mine pending" }, [
      el("span", { className: "who", text: w("me") }),
      el("span", { className: "text", text: body }),
      el("span", { className: "state", text: w("sending") }),
    ]);
    state.pending.set(clientId, node);
    ui.messages.append(node);
    ui.messages.scrollTop = ui.messages.scrollHeight;
    ui.input.value = "";
    if (!socket.send({ type: "group.send", group_id: state.room, client_msg_id: clientId, body })) {
      failed(clientId, w("failed"));
    }
  }

  /**
   * A group message not sent: it stays, marked, with the reason.
   * @param {string} clientId
   * @param {string} reason
   */
  function failed(clientId, reason) {
    const node = state.pending.get(clientId);
    if (!node) return;
    state.pending.delete(clientId);
    node.classList.add("failed");
    const note = node.querySelector(".state");
    if (note) note.textContent = `${w("failed")}: ${reason}`;
  }

  async function checkIn() {
    const groupId = /** @type {string} */ (state.room); // the button is in the open group
    ui.checkin.disabled = true;
    try {
      const done = await api("POST", `/groups/${encodeURIComponent(groupId)}/checkin`);
      state.streak.set(groupId, done.streak);
    } catch (err) {
      ui.roomStatus.textContent = w("failedAction", { reason: errorText(err) });
      ui.roomStatus.hidden = false;
    }
    renderRoom();
  }

  // ---- frames from the widget's socket ----------------------------------------------
  /** @type {import("./frames.js").FrameHandlers} */
  const handlers = {
    hello(f) {
      state.me = f.buyer_id;
      for (const g of f.groups || []) remember(g);
      // Reconnected inside a group: whatever was missed.
      if (state.room) socket.send({ type: "group.sync", group_id: state.room, after_seq: state.seen.get(state.room) || 0 });
      if (!pane.hidden && !state.room) renderList();
    },
    // Only a group message's ack comes here (the widget keeps the chat's).
    "message.ack"(f) { receive(/** @type {GroupMessage} */ (/** @type {unknown} */ (f.message))); },
    "group.message"(f) { receive(f.message); },
    "group.joined"(f) { remember(f.group); if (!state.room) renderList(); },
    "group.left"(f) {
      const g = state.groups.get(f.group_id);
      if (g) g.member_status = f.reason === "removed" ? "removed" : "left";
      if (state.room === f.group_id) renderRoom();
      else renderList();
    },
    "group.muted"(f) {
      const g = state.groups.get(f.group_id);
      if (!g) return;
      if (f.buyer_id) g.my_muted_until = f.until;
      else g.muted_until = f.until;
      if (state.room === f.group_id) renderRoom();
    },
    error(f) { if (f.ref && state.pending.has(f.ref)) failed(f.ref, f.message); },
  };

  ui.back.addEventListener("click", leaveRoom);
  ui.checkin.addEventListener("click", checkIn);
  composer.addEventListener("submit", (e) => { e.preventDefault(); sendText(); });
  // A mute ends by itself: look again every few seconds while one is shown.
  setInterval(() => { if (state.room && !ui.roomStatus.hidden) renderRoom(); }, 5000);

  function renderWords() {
    ui.back.textContent = `‹ ${w("back")}`;
    ui.input.placeholder = w("placeholder");
    ui.send.textContent = w("send");
    if (state.room) renderRoom();
  }
  renderWords();

  return {
    onFrame(frame) {
      const h = /** @type {((f: import("./frames.js").ServerFrame) => void) | undefined} */ (handlers[frame.type]);
      if (h) h(frame);
    },
    show() { if (!state.room) loadList(); },
    renderWords,
  };
}
