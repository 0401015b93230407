/* The agent workbench: my conversations live over /ws/agent, history over HTTP.
 * Everything people typed is put on the page with textContent (see Homing.el). */
(function () {
  "use strict";
  const { Socket, el, newClientId, messageContent, messageText, insertBySeq, clockTime, elapsed } = window.Homing;
  const { gettext, format } = window.Homing;

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const LANG = boot.lang;
  // The workbench catalog (the same as /static/locale/workbench.<lang>.json), before any gettext.
  window.Homing.setCatalog(boot.catalog);
  const QUEUE_LABELS = { general: gettext("general"), elderly: gettext("elder care") };
  const TYPING_EVERY_MS = 3000; // send `typing` at most this often
  const TYPING_SHOWN_MS = 4000; // how long the buyer's typing indicator stays up
  const SLOW_REPLY_S = 180; // the 3-minute reply target (体验分)

  const $ = (id) => document.getElementById(id);
  const ui = {
    banner: $("offline-banner"), list: $("conv-list"), empty: $("conv-empty"), count: $("conv-count"),
    placeholder: $("chat-placeholder"), body: $("chat-body"), buyer: $("chat-buyer"),
    badges: $("chat-badges"), meta: $("chat-meta"), messages: $("messages"), typing: $("typing"),
    composer: $("composer"), input: $("composer-input"), send: $("send"), close: $("close-conv"),
    toast: $("toast"), noteMode: $("note-mode"),
  };

  /* One conversation as this page knows it. */
  class Conv {
    constructor(data) {
      this.data = data; // CONV from the server
      this.msgs = new Map(); // seq -> MSG
      this.pending = new Map(); // client_msg_id -> frame, not yet acknowledged
      this.readSent = data.agent_read_seq || 0; // my read mark, as last sent
      this.buyerRead = data.buyer_read_seq || 0; // the buyer's read mark
      this.typingUntil = 0;
      this.upto = 0; // every seq in 1..upto is here
      this.gone = null; // why it left me while still open (transferred, back to its queue)
    }

    /* What the list and the chat say about a conversation I can no longer answer. */
    get endNote() { return this.gone || gettext("Conversation closed"); }

    get id() { return this.data.id; }
    get open() { return this.data.status !== "closed" && !this.gone; }

    add(msg) {
      if (this.msgs.has(msg.seq)) return false;
      this.msgs.set(msg.seq, msg);
      while (this.msgs.has(this.upto + 1)) this.upto += 1;
      return true;
    }

    sorted() { return [...this.msgs.values()].sort((a, b) => a.seq - b.seq); }
    get maxSeq() { let m = 0; for (const s of this.msgs.keys()) m = Math.max(m, s); return m; }
    get last() { return this.msgs.get(this.maxSeq); }

    get unread() {
      let n = 0;
      for (const m of this.msgs.values()) if (m.sender === "buyer" && m.seq > this.readSent) n += 1;
      return n;
    }

    /* Since when the buyer has waited for an answer (their first unanswered message), or null. */
    get waitingSince() {
      if (!this.open) return null;
      if (!this.msgs.size) return this.data.opened_at;
      let since = null;
      for (const m of this.sorted().reverse()) {
        if (m.sender === "agent" && m.kind !== "note") break; // a note is no answer
        if (m.sender === "buyer") since = m.created_at;
      }
      return since;
    }

    get lastActivity() {
      const last = this.last;
      return Date.parse((last && last.created_at) || this.data.assigned_at || this.data.opened_at) || 0;
    }
  }

  const convs = new Map();
  let activeId = null; // never set by itself: a read receipt means the agent opened it
  let myStatus = boot.agent.status;
  let lastTypingSent = 0;
  const readTimers = new Map();

  // ---- the socket --------------------------------------------------------------------
  // No token in the address: the socket goes by the session cookie (same origin only).
  const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/agent`;
  const socket = new Socket(wsUrl, {
    onFrame: handleFrame,
    onDown: () => { ui.banner.hidden = false; },
    onUnauthorized: () => {
      ui.banner.hidden = false;
      ui.banner.textContent = gettext("Your session has ended; log in again.");
      setTimeout(() => location.assign("/login"), 1500);
    },
  });

  const handlers = {
    hello(f) {
      ui.banner.hidden = true;
      document.body.dataset.connected = "true"; // the socket said hello (tests wait for it)
      setStatus(f.status);
      const present = new Set();
      for (const data of f.conversations) {
        present.add(data.id);
        const known = convs.get(data.id);
        if (known) {
          known.data = { ...known.data, ...data };
          // Reconnected: ask for what we missed while away, then resend what was never acked.
          socket.send({ type: "sync", conversation_id: data.id, after_seq: known.upto });
          for (const frame of known.pending.values()) socket.send(frame);
        } else {
          const conv = new Conv(data);
          convs.set(data.id, conv);
          loadHistory(conv);
        }
      }
      // Closed or moved away while we were disconnected.
      for (const conv of convs.values()) {
        if (!present.has(conv.id) && conv.open) conv.data = { ...conv.data, status: "closed" };
      }
      renderAll();
    },
    "agent.status"(f) { setStatus(f.status); },
    "conversation.assigned"(f) {
      const known = convs.get(f.conversation.id);
      if (known) {
        known.data = { ...known.data, ...f.conversation };
        known.gone = null;
      }
      else convs.set(f.conversation.id, new Conv(f.conversation));
      renderAll();
    },
    "conversation.closed"(f) {
      const conv = convs.get(f.conversation_id);
      if (!conv) return;
      conv.data = { ...conv.data, status: "closed" };
      conv.pending.clear();
      renderAll();
    },
    "conversation.transferred"(f) {
      const conv = convs.get(f.conversation_id);
      if (!conv) return;
      if (f.to_agent_id === boot.agent.id) {
        conv.gone = null;
        conv.data = { ...conv.data, status: "assigned", agent_id: boot.agent.id };
      } else if (f.from_agent_id === boot.agent.id) {
        conv.gone = gettext("Transferred to someone else");
        conv.pending.clear();
      }
      renderAll();
    },
    "conversation.requeued"(f) {
      const conv = convs.get(f.conversation_id);
      if (!conv) return;
      conv.gone = gettext("Sent back to the queue");
      conv.pending.clear();
      renderAll();
    },
    "csat.received"(f) {
      const conv = convs.get(f.conversation_id);
      if (!conv) return;
      conv.rating = f.score;
      renderAll();
    },
    "message.new"(f) { receive(f.message); },
    "message.ack"(f) { receive(f.message); },
    typing(f) {
      const conv = convs.get(f.conversation_id);
      if (!conv || f.by !== "buyer") return;
      conv.typingUntil = Date.now() + TYPING_SHOWN_MS;
      if (conv.id === activeId) renderTyping();
    },
    read(f) {
      const conv = convs.get(f.conversation_id);
      if (!conv) return;
      if (f.by === "buyer") {
        conv.buyerRead = Math.max(conv.buyerRead, f.seq);
        if (conv.id === activeId) renderReceipts();
      } else {
        conv.readSent = Math.max(conv.readSent, f.seq); // read in another tab
        renderList();
      }
    },
    error(f) {
      for (const conv of convs.values()) {
        const frame = f.ref && conv.pending.get(f.ref);
        if (frame) {
          conv.pending.delete(f.ref);
          markFailed(f.ref, f.message);
          return;
        }
      }
      toast(f.message || f.code);
    },
  };

  // Other scripts of the page send frames on this socket (e.g. ending a chat for abuse).
  document.addEventListener("homing:send", (e) => socket.send(e.detail));

  function handleFrame(frame) {
    const handler = handlers[frame.type];
    if (handler) handler(frame);
    // The buyer panel (workbench-panel.js) listens too, e.g. for payout.updated.
    document.dispatchEvent(new CustomEvent("homing:frame", { detail: frame }));
  }

  function receive(msg) {
    const conv = convs.get(msg.conversation_id);
    if (!conv) return;
    if (msg.client_msg_id) conv.pending.delete(msg.client_msg_id);
    const isNew = conv.add(msg);
    if (conv.id === activeId) {
      const waiting = msg.client_msg_id && ui.messages.querySelector(`[data-client="${CSS.escape(msg.client_msg_id)}"]`);
      if (waiting) waiting.replaceWith(messageNode(conv, msg));
      else if (isNew) showMessage(conv, msg);
      if (msg.sender === "buyer") conv.typingUntil = 0;
      renderTyping();
      scheduleRead(conv);
    }
    renderList();
  }

  async function loadHistory(conv) {
    // Pages of up to 500; live frames arriving meanwhile merge by seq.
    for (;;) {
      let res;
      try {
        res = await fetch(`/api/v1/conversations/${encodeURIComponent(conv.id)}/messages?after_seq=${conv.upto}`,
          { credentials: "same-origin" });
      } catch (err) {
        return; // offline: the reconnect's sync fills it in
      }
      if (res.status === 401) { location.assign("/login"); return; }
      if (!res.ok) return;
      const batch = await res.json();
      for (const msg of batch) conv.add(msg);
      if (batch.length < 500) break;
    }
    if (conv.id === activeId) renderChat();
    renderList();
  }

  // ---- status ------------------------------------------------------------------------
  function setStatus(status) {
    myStatus = status;
    for (const b of document.querySelectorAll(".status-switch [data-status]")) {
      b.setAttribute("aria-checked", String(b.dataset.status === status));
    }
  }

  for (const b of document.querySelectorAll(".status-switch [data-status]")) {
    b.addEventListener("click", () => {
      if (b.dataset.status === myStatus) return;
      if (!socket.send({ type: "agent.status", status: b.dataset.status })) toast(gettext("Connection lost, reconnecting…"));
    });
  }

  // ---- the conversation list ---------------------------------------------------------
  function badgeNodes(conv) {
    const out = [];
    if (conv.data.elder) out.push(el("span", { className: "badge badge-elder", text: gettext("Elder") }));
    const vip = conv.data.buyer_vip;
    if (vip) out.push(el("span", { className: "badge badge-vip", text: `${gettext("VIP")}${vip}` }));
    const left = conv.data.left_message;
    if (left) out.push(leftMessageBadge(left, conv.data.assigned_at));
    return out;
  }

  // 留言: the buyer wrote while nobody could answer; how long they waited for someone.
  function leftMessageBadge(left, assignedAt) {
    const since = Date.parse(left.since);
    const until = assignedAt ? Date.parse(assignedAt) : Date.now();
    const minutes = Math.max(0, Math.round((until - since) / 60000));
    const waited = minutes >= 60
      ? format(gettext("waited %(h)s h %(m)s min"), { h: Math.floor(minutes / 60), m: minutes % 60 })
      : format(gettext("waited %(m)s min"), { m: minutes });
    const why = left.reason === "outside_hours" ? gettext("left outside service hours") : gettext("left while nobody was online");
    return el("span", { className: "badge badge-left", title: why, text: `${gettext("Left message")} · ${waited}` });
  }

  function buyerName(conv) {
    return conv.data.buyer_name || conv.data.buyer_id;
  }

  function preview(msg) {
    if (!msg) return gettext("No messages yet");
    const card = {
      product_card: gettext("[product]"), order_card: gettext("[order]"), image: gettext("[image]"),
      coupon_card: gettext("[coupon]"), compensation_card: gettext("[compensation]"),
      note: gettext("[internal note]"),
    };
    const label = card[msg.kind];
    const text = messageText(msg);
    return label ? `${label} ${text || (msg.payload && msg.payload.title) || ""}` : text;
  }

  function renderList() {
    const items = [...convs.values()].sort((a, b) => (b.open - a.open) || (b.lastActivity - a.lastActivity));
    const open = items.filter((c) => c.open).length;
    ui.count.textContent = open ? String(open) : "";
    ui.empty.hidden = items.length > 0;
    const nodes = items.map((conv) => {
      const unread = conv.unread;
      return el("li", null, el("button", {
        type: "button",
        className: `conv-item${conv.id === activeId ? " active" : ""}${conv.open ? "" : " closed"}${conv.data.elder ? " elder" : ""}`,
        dataset: { id: conv.id, buyer: conv.data.buyer_id },
        "aria-current": conv.id === activeId ? "true" : null,
        onclick: () => activate(conv.id),
      }, [
        el("div", { className: "row" }, [
          el("span", { className: "buyer", text: buyerName(conv) }),
          ...badgeNodes(conv),
          unread ? el("span", { className: "unread", text: String(unread), title: gettext("Unread") }) : null,
        ]),
        el("div", { className: "row sub" }, [
          el("span", { className: "preview", text: conv.open ? preview(conv.last) : conv.endNote }),
          el("span", { className: "wait", dataset: { id: conv.id } }),
        ]),
      ]));
    });
    ui.list.replaceChildren(...nodes);
    renderWaits();
    const total = items.reduce((n, c) => n + c.unread, 0);
    document.title = `${total ? `(${total}) ` : ""}${gettext("Workbench")} · ${gettext("Homing service desk")}`;
  }

  function renderWaits() {
    const now = Date.now();
    for (const span of ui.list.querySelectorAll(".wait")) {
      const conv = convs.get(span.dataset.id);
      const since = conv && conv.waitingSince;
      span.textContent = since ? `${gettext("waiting")} ${elapsed(since, now)}` : "";
      span.classList.toggle("late", Boolean(since) && now - Date.parse(since) > SLOW_REPLY_S * 1000);
    }
  }

  function activate(id) {
    activeId = id;
    ui.input.value = "";
    renderAll();
    ui.input.focus();
  }

  // ---- the chat pane -----------------------------------------------------------------
  function renderAll() {
    renderList();
    renderChat();
  }

  function renderChat() {
    const conv = convs.get(activeId);
    ui.placeholder.hidden = Boolean(conv);
    ui.body.hidden = !conv;
    document.dispatchEvent(new CustomEvent("homing:active", {
      detail: conv ? { conv: conv.data, open: conv.open } : null,
    }));
    if (!conv) return;
    ui.buyer.textContent = buyerName(conv);
    ui.badges.replaceChildren(...badgeNodes(conv));
    ui.meta.textContent = `${gettext("queue")}: ${QUEUE_LABELS[conv.data.queue] || conv.data.queue}`;
    const nodes = conv.sorted().map((m) => messageNode(conv, m));
    for (const [clientId, frame] of conv.pending) nodes.push(pendingNode(clientId, frame.body, frame.kind));
    if (!conv.open) nodes.push(el("li", { className: "msg from-system notice", text: conv.endNote }));
    if (conv.rating) {
      nodes.push(el("li", { className: "msg from-system notice rating", text: `${gettext("Buyer's rating")} ${"★".repeat(conv.rating)}${"☆".repeat(5 - conv.rating)}` }));
    }
    ui.messages.replaceChildren(...nodes);
    ui.messages.scrollTop = ui.messages.scrollHeight;
    ui.input.disabled = ui.send.disabled = ui.close.disabled = !conv.open;
    ui.close.textContent = gettext("Close");
    delete ui.close.dataset.armed;
    renderTyping();
    scheduleRead(conv);
  }

  function messageNode(conv, msg) {
    const meta = [el("time", { datetime: msg.created_at, text: clockTime(msg.created_at) })];
    if (msg.kind === "note") meta.unshift(el("span", { className: "note-label", text: gettext("Internal note · buyer cannot see") }));
    else if (msg.sender === "agent") meta.push(el("span", { className: "receipt" }));
    if (msg.sender === "bot") meta.push(el("span", { className: "bot-badge", text: gettext("Smart assistant") }));
    const node = el("li", {
      className: `msg from-${msg.sender} kind-${msg.kind}`,
      dataset: { seq: String(msg.seq), client: msg.client_msg_id || "" },
    }, [el("div", { className: "bubble" }, messageContent(msg, LANG, imageUrl)), el("div", { className: "msg-meta" }, meta)]);
    setReceipt(node, conv);
    if (msg.sender === "buyer" && msg.kind === "text" && conv.open) node.append(suggestionsNode(msg));
    return node;
  }

  /* Assist mode (辅助): up to 3 answers from the shop's knowledge base under a buyer's
   * message; one click puts one in the composer to edit and send. Asked once per message;
   * the server answers [] when the conversation's queue is not in assist mode. */
  const suggestions = new Map();
  function suggestionsNode(msg) {
    const box = el("div", { className: "suggestions", dataset: { message: msg.id } });
    const show = (list) => box.replaceChildren(...list.map((s) => el("button", {
      type: "button", className: "suggestion", title: s.question, text: s.answer,
      onclick: () => { ui.input.value = s.answer; ui.input.focus(); },
    })));
    if (!suggestions.has(msg.id)) {
      const q = `conversation_id=${encodeURIComponent(msg.conversation_id)}&message_id=${encodeURIComponent(msg.id)}`;
      suggestions.set(msg.id, fetch(`/api/v1/bot/suggestions?${q}`, { credentials: "same-origin" })
        .then((res) => (res.ok ? res.json() : [])).catch(() => []));
    }
    suggestions.get(msg.id).then(show);
    return box;
  }

  /* Uploaded images load with the session cookie (no token in the address). */
  function imageUrl(uploadId) {
    return `/api/v1/uploads/${encodeURIComponent(uploadId)}`;
  }

  function pendingNode(clientId, body, kind) {
    return el("li", { className: `msg from-agent pending kind-${kind || "text"}`, dataset: { client: clientId } }, [
      el("div", { className: "bubble" }, el("p", { className: "text", text: body })),
      el("div", { className: "msg-meta" }, el("span", { className: "state", text: gettext("Sending…") })),
    ]);
  }

  function setReceipt(node, conv) {
    const receipt = node.querySelector(".receipt");
    if (!receipt) return;
    const read = Number(node.dataset.seq) <= conv.buyerRead;
    receipt.textContent = read ? gettext("Read") : gettext("Unread");
    receipt.classList.toggle("is-read", read);
  }

  function renderReceipts() {
    const conv = convs.get(activeId);
    if (conv) for (const node of ui.messages.querySelectorAll(".msg.from-agent[data-seq]")) setReceipt(node, conv);
  }

  function showMessage(conv, msg) {
    const stick = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 80;
    insertBySeq(ui.messages, messageNode(conv, msg), msg.seq);
    if (stick || msg.sender === "agent") ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function markFailed(clientId, reason) {
    const node = ui.messages.querySelector(`[data-client="${CSS.escape(clientId)}"]`);
    if (!node) { toast(reason); return; }
    node.classList.add("failed");
    node.querySelector(".state").textContent = `${gettext("Not sent")}: ${reason}`;
  }

  function renderTyping() {
    const conv = convs.get(activeId);
    const on = Boolean(conv && conv.open && conv.typingUntil > Date.now());
    ui.typing.hidden = !on;
  }

  /* Tell the buyer we read up to the newest message, once things settle (frames cost budget). */
  function scheduleRead(conv) {
    if (readTimers.has(conv.id)) return;
    readTimers.set(conv.id, setTimeout(() => {
      readTimers.delete(conv.id);
      const top = conv.maxSeq;
      if (conv.id !== activeId || document.hidden || top <= conv.readSent || !conv.open) return;
      if (socket.send({ type: "read", conversation_id: conv.id, seq: top })) {
        conv.readSent = top;
        renderList();
      }
    }, 250));
  }

  document.addEventListener("visibilitychange", () => {
    const conv = convs.get(activeId);
    if (conv && !document.hidden) scheduleRead(conv);
  });

  // ---- composing ---------------------------------------------------------------------
  function sendReply() {
    const conv = convs.get(activeId);
    const body = ui.input.value;
    if (!conv || !conv.open || !body.trim()) return;
    const clientId = newClientId();
    const frame = { type: "message.send", conversation_id: conv.id, client_msg_id: clientId, body };
    if (ui.noteMode && ui.noteMode.checked) frame.kind = "note"; // staff only, never the buyer
    conv.pending.set(clientId, frame);
    ui.messages.append(pendingNode(clientId, body, frame.kind));
    ui.messages.scrollTop = ui.messages.scrollHeight;
    ui.input.value = "";
    socket.send(frame); // if offline, it goes out again after the reconnect's hello
  }

  ui.composer.addEventListener("submit", (e) => { e.preventDefault(); sendReply(); });
  ui.input.addEventListener("keydown", (e) => {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME candidate is neither.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sendReply();
    }
  });
  ui.input.addEventListener("input", () => {
    const conv = convs.get(activeId);
    const now = Date.now();
    const note = ui.noteMode && ui.noteMode.checked; // the buyer must not even see a note being typed
    if (conv && conv.open && ui.input.value && !note && now - lastTypingSent > TYPING_EVERY_MS) {
      lastTypingSent = now;
      socket.send({ type: "typing", conversation_id: conv.id });
    }
  });

  ui.close.addEventListener("click", () => {
    const conv = convs.get(activeId);
    if (!conv || !conv.open) return;
    if (!ui.close.dataset.armed) {
      // Ask once more inline (no confirm() dialog): a closed conversation cannot be reopened.
      ui.close.dataset.armed = "1";
      ui.close.textContent = gettext("Really close?");
      setTimeout(() => {
        if (ui.close.dataset.armed) { delete ui.close.dataset.armed; ui.close.textContent = gettext("Close"); }
      }, 3000);
      return;
    }
    delete ui.close.dataset.armed;
    ui.close.textContent = gettext("Close");
    if (!socket.send({ type: "conversation.close", conversation_id: conv.id })) toast(gettext("Connection lost, reconnecting…"));
  });

  // ---- small things ------------------------------------------------------------------
  let toastTimer = null;
  function toast(text) {
    ui.toast.textContent = text;
    ui.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { ui.toast.hidden = true; }, 4000);
  }

  // What the buyer panel and the transfer form use from here.
  window.HomingWorkbench = { boot, send: (frame) => socket.send(frame), toast };

  setInterval(() => { renderWaits(); renderTyping(); }, 1000);
  renderAll();
  socket.start();
})();
