/* The storefront widget's fan-group pane (粉丝群): find and join a group, chat in it, check in
 * once a day, claim giveaways. Loaded by widget.js next to homing.js; it shares the widget's
 * socket (group.send / group.sync / group.message frames) and its buyer token for HTTP.
 * Everything people typed goes on the page with textContent. */
(function () {
  "use strict";
  if (window.HomingGroups) return;

  const WORDS = {
    zh: {
      groups: "粉丝群", none: "本店还没有粉丝群", join: "加入", enter: "进入", removed: "已被移出",
      members: "{n} 人", back: "全部群", checkin: "签到", checkedIn: "已签到 · 连续 {n} 天",
      placeholder: "和群友聊聊", send: "发送", sending: "发送中…", failed: "发送失败",
      giveaway: "群福利", giveawayLeft: "共 {q} 份", claim: "领取", claimed: "已领取",
      soldOut: "已抢完", alreadyClaimed: "您已领过", mutedMe: "您被禁言到 {t}", mutedAll: "全员禁言中,到 {t}",
      removedNote: "您已被移出这个群", shop: "店铺", member: "群友 {id}", me: "我", loading: "加载中…",
      failedAction: "没有成功:{reason}",
    },
    en: {
      groups: "Fan groups", none: "This shop has no fan groups yet", join: "Join", enter: "Open",
      removed: "Removed", members: "{n} members", back: "All groups", checkin: "Check in",
      checkedIn: "Checked in · {n}-day streak", placeholder: "Say something to the group", send: "Send",
      sending: "Sending…", failed: "Not sent", giveaway: "Giveaway", giveawayLeft: "{q} in total",
      claim: "Claim", claimed: "Claimed", soldOut: "All gone", alreadyClaimed: "You already claimed it",
      mutedMe: "You are muted until {t}", mutedAll: "The group is muted until {t}",
      removedNote: "You were removed from this group", shop: "Shop", member: "Member {id}", me: "Me",
      loading: "Loading…", failedAction: "That did not work: {reason}",
    },
  };

  function mount({ pane, Homing, lang, api, socket }) {
    const { el, newClientId, money, clockTime, insertBySeq } = Homing;
    const words = WORDS[lang] || WORDS.zh;
    const w = (key, vars) => {
      let text = words[key];
      for (const [k, v] of Object.entries(vars || {})) text = text.replace(`{${k}}`, v);
      return text;
    };

    const state = {
      me: null, groups: new Map(), room: null, seen: new Map(), ids: new Set(),
      pending: new Map(), streak: new Map(),
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
    ui.composer = el("form", { className: "group-composer", autocomplete: "off" }, [ui.input, ui.send]);
    ui.room.append(
      el("div", { className: "room-head" }, [ui.back, ui.roomName, ui.checkin]),
      ui.roomStatus, ui.messages, ui.composer,
    );
    const lobby = el("div", { className: "lobby" }, [ui.listHead, ui.list]);
    pane.append(lobby, ui.room);

    // ---- the list of groups ----------------------------------------------------------
    function remember(g) {
      state.groups.set(g.id, { ...(state.groups.get(g.id) || {}), ...g });
      return state.groups.get(g.id);
    }

    async function loadList() {
      ui.listHead.textContent = w("loading");
      try {
        for (const g of await api("GET", "/groups?all=true")) remember(g);
        ui.listHead.textContent = state.groups.size ? w("groups") : w("none");
      } catch (err) {
        ui.listHead.textContent = w("failedAction", { reason: err.message });
      }
      renderList();
    }

    function renderList() {
      ui.list.replaceChildren(...[...state.groups.values()].map((g) => {
        let action;
        if (g.member_status === "active") {
          action = el("button", { type: "button", className: "enter", text: w("enter"), onclick: () => enter(g.id) });
        } else if (g.member_status === "removed") {
          action = el("span", { className: "removed", text: w("removed") });
        } else {
          action = el("button", { type: "button", className: "join primary", text: w("join"), onclick: () => join(g.id, action) });
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

    async function join(groupId, button) {
      button.disabled = true;
      try {
        remember({ ...(await api("POST", `/groups/${encodeURIComponent(groupId)}/join`)), member_status: "active" });
        enter(groupId);
      } catch (err) {
        button.disabled = false;
        ui.listHead.textContent = w("failedAction", { reason: err.message });
      }
    }

    // ---- one group -------------------------------------------------------------------
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

    function leaveRoom() {
      state.room = null;
      ui.room.hidden = true;
      lobby.hidden = false;
      loadList();
    }

    function mutedUntil(g) {
      const now = Date.now();
      const mine = g.my_muted_until && Date.parse(g.my_muted_until) > now ? Date.parse(g.my_muted_until) : 0;
      const all = g.muted_until && Date.parse(g.muted_until) > now ? Date.parse(g.muted_until) : 0;
      if (!mine && !all) return null;
      return mine >= all ? { at: g.my_muted_until, mine: true } : { at: g.muted_until, mine: false };
    }

    function renderRoom() {
      const g = state.groups.get(state.room);
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

    function who(msg) {
      if (msg.sender === "agent") return w("shop");
      if (msg.sender === "system") return "";
      if (msg.sender_id === state.me) return w("me");
      return w("member", { id: String(msg.sender_id || "").slice(-4) });
    }

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
          if (err.code === "sold_out" || err.code === "already_claimed") {
            claim.textContent = w(err.code === "sold_out" ? "soldOut" : "alreadyClaimed");
          } else {
            claim.disabled = false;
            result.textContent = w("failedAction", { reason: err.message });
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

    function receive(msg) {
      if (msg.group_id !== state.room || state.ids.has(msg.id)) return;
      state.ids.add(msg.id);
      state.seen.set(msg.group_id, Math.max(state.seen.get(msg.group_id) || 0, msg.seq));
      const waiting = msg.client_msg_id && state.pending.get(msg.client_msg_id);
      if (waiting) {
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

    function failed(clientId, reason) {
      const node = state.pending.get(clientId);
      if (!node) return;
      state.pending.delete(clientId);
      node.classList.add("failed");
      node.querySelector(".state").textContent = `${w("failed")}: ${reason}`;
    }

    async function checkIn() {
      const groupId = state.room;
      ui.checkin.disabled = true;
      try {
        const done = await api("POST", `/groups/${encodeURIComponent(groupId)}/checkin`);
        state.streak.set(groupId, done.streak);
      } catch (err) {
        ui.roomStatus.textContent = w("failedAction", { reason: err.message });
        ui.roomStatus.hidden = false;
      }
      renderRoom();
    }

    // ---- frames from the widget's socket ----------------------------------------------
    const handlers = {
      hello(f) {
        state.me = f.buyer_id;
        for (const g of f.groups || []) remember(g);
        // Reconnected inside a group: whatever was missed.
        if (state.room) socket.send({ type: "group.sync", group_id: state.room, after_seq: state.seen.get(state.room) || 0 });
        if (!pane.hidden && !state.room) renderList();
      },
      "message.ack"(f) { receive(f.message); },
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
    ui.composer.addEventListener("submit", (e) => { e.preventDefault(); sendText(); });
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
      onFrame(frame) { const h = handlers[frame.type]; if (h) h(frame); },
      show() { if (!state.room) loadList(); },
      renderWords,
    };
  }

  window.HomingGroups = { mount };
})();
