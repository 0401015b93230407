/* Homing storefront widget. Embed with one tag:
 *   <script src="https://HOST/static/widget.js" data-token="BUYER_JWT" data-server="https://HOST"></script>
 * Optional: data-lang="en", data-product='{"product_id","title","category","price_cents"}'.
 * Opens a floating chat panel in a shadow root (the shop's CSS cannot reach in, ours cannot
 * leak out). Everything people typed is put on the page with textContent. */
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || window.HomingWidget) return;
  const token = script.dataset.token;
  const server = (script.dataset.server || new URL(script.src).origin).replace(/\/+$/, "");
  const lang = script.dataset.lang === "en" ? "en" : "zh";
  let product = null;
  try {
    product = script.dataset.product ? JSON.parse(script.dataset.product) : null;
  } catch (err) {
    product = null;
  }

  const WORDS = {
    zh: {
      launcher: "咨询客服", title: "在线客服", close: "关闭", elderOn: "长辈模式", elderOff: "退出长辈模式",
      hello: "您好,请问有什么可以帮您?", connecting: "正在为您接入客服…",
      queued: "正在排队,您是第 {n} 位", assigned: "客服 {name} 为您服务",
      closed: "本次会话已结束,发消息可以再次咨询", offline: "网络断开了,正在重新连接…",
      placeholder: "请输入消息,Enter 发送", send: "发送", sendProduct: "发送商品", browsing: "您正在看",
      typing: "客服正在输入…", read: "已读", unread: "未读", sending: "发送中…", failed: "发送失败",
      badToken: "身份验证失败,请刷新页面", newConversation: "新的会话",
      rate: "为本次服务打分", stars: "{n} 星", thanks: "感谢您的评价!",
      claim: "领取", claiming: "领取中…", claimed: "已领取", optOut: "不再接收推荐",
      optedOut: "已退订,以后不再给您发送推荐", autoIssued: "已自动发放到您的账户",
      actionFailed: "没有成功:{reason}", photo: "发送图片", uploading: "图片上传中…",
      chatTab: "客服", groupsTab: "粉丝群",
    },
    en: {
      launcher: "Chat with us", title: "Customer service", close: "Close", elderOn: "Easy mode",
      elderOff: "Leave easy mode", hello: "Hello! How can we help?", connecting: "Finding an agent for you…",
      queued: "In the queue: you are number {n}", assigned: "{name} is helping you",
      closed: "This chat has ended; send a message to start again", offline: "Connection lost, reconnecting…",
      placeholder: "Type a message; Enter sends", send: "Send", sendProduct: "Send product", browsing: "You are viewing",
      typing: "Agent is typing…", read: "Read", unread: "Unread", sending: "Sending…", failed: "Not sent",
      badToken: "Could not verify you; please reload the page", newConversation: "New conversation",
      rate: "Rate this chat", stars: "{n} stars", thanks: "Thank you for your rating!",
      claim: "Claim", claiming: "Claiming…", claimed: "Claimed", optOut: "No more offers",
      optedOut: "Unsubscribed: no more offers from this shop", autoIssued: "Already in your account",
      actionFailed: "That did not work: {reason}", photo: "Send a photo", uploading: "Uploading the photo…",
      chatTab: "Chat", groupsTab: "Fan groups",
    },
  };
  // 长辈模式: the same screens in fewer, simpler words.
  const ELDER_WORDS = {
    zh: {
      hello: "您好,有事请说", connecting: "正在找客服,请稍等", queued: "请稍等,您排在第 {n} 位",
      assigned: "客服 {name} 来帮您了", closed: "聊天结束了。有事再打字就行", placeholder: "在这里打字",
      typing: "客服在打字…", offline: "网络断了,正在连接…", rate: "给客服打个分",
      optOut: "以后别给我发了", optedOut: "好的,以后不发了", groupsTab: "群",
    },
    en: {
      hello: "Hello, just type your question", connecting: "Finding someone to help, please wait",
      queued: "Please wait: you are number {n}", assigned: "{name} is here to help",
      closed: "The chat has ended. Type again any time", placeholder: "Type here",
      typing: "Typing…", offline: "No connection, trying again…", rate: "How did we do?",
      optOut: "Stop sending me offers", optedOut: "OK, no more offers", groupsTab: "Groups",
    },
  };

  /* homing.js (shared pieces) and widget-groups.js (the fan-group pane), in parallel. */
  const NOTICE_KINDS = new Set(["coupon_card", "compensation_card"]);

  function loadShared(done) {
    const needed = [["Homing", "homing.js"], ["HomingGroups", "widget-groups.js"]].filter(([name]) => !window[name]);
    let left = needed.length;
    if (!left) { done(); return; }
    for (const [, file] of needed) {
      const tag = document.createElement("script");
      tag.src = `${server}/static/${file}`;
      // The groups pane is optional: a failed load still mounts the chat.
      tag.onload = tag.onerror = () => { left -= 1; if (!left && window.Homing) done(); };
      (document.head || document.documentElement).append(tag);
    }
  }

  function whenBodyReady(done) {
    if (document.body) done();
    else document.addEventListener("DOMContentLoaded", done, { once: true });
  }

  loadShared(() => whenBodyReady(() => {
    // One widget per page, however many times the tag was pasted in.
    if (!document.getElementById("homing-widget")) mount(window.Homing, window.HomingGroups);
  }));

  function mount(Homing, HomingGroups) {
    const { Socket, el, newClientId, messageContent, insertBySeq, clockTime, money } = Homing;

    const state = {
      open: false, elder: false, conv: null, msgs: new Map(), upto: 0, pending: new Map(),
      readSent: 0, unseen: 0, typingUntil: 0, connected: false, fatal: null,
      notices: new Set(), optedOut: false, claimed: new Set(), tab: "chat",
    };
    const w = (key, vars) => {
      let text = (state.elder && ELDER_WORDS[lang][key]) || WORDS[lang][key];
      for (const [k, v] of Object.entries(vars || {})) text = text.replace(`{${k}}`, v);
      return text;
    };

    // ---- the DOM (in a shadow root) ----------------------------------------------------
    /* A one-path SVG icon (aria-hidden: the button it sits in carries the words). */
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

    const host = el("div", { id: "homing-widget" });
    host.style.visibility = "hidden"; // until our stylesheet is in
    const root = host.attachShadow({ mode: "open" });
    const sheet = el("link", { rel: "stylesheet", href: `${server}/static/widget.css` });
    sheet.onload = sheet.onerror = () => { host.style.visibility = ""; };

    const ui = {};
    ui.badge = el("span", { className: "badge", hidden: true });
    ui.launcherText = el("span", { text: w("launcher") });
    ui.launcher = el("button", { type: "button", className: "launcher", "aria-expanded": "false" },
      [chatIcon(), ui.launcherText, ui.badge]);
    ui.title = el("strong", { className: "title", text: w("title") });
    ui.status = el("span", { className: "status-line", role: "status" });
    ui.elder = el("button", { type: "button", className: "elder-toggle", "aria-pressed": "false" });
    ui.closeBtn = el("button", { type: "button", className: "close", text: "×" });
    ui.offline = el("div", { className: "offline", role: "alert", hidden: true });
    ui.messages = el("ol", { className: "messages", "aria-live": "polite" });
    ui.typing = el("div", { className: "typing", hidden: true });
    ui.productBar = el("div", { className: "product-bar", hidden: !product });
    ui.input = el("textarea", { rows: "1", maxlength: "4000", className: "input" });
    ui.send = el("button", { type: "submit", className: "send" });
    ui.file = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp", className: "file", hidden: true });
    ui.photo = el("button", { type: "button", className: "photo" }, cameraIcon());
    ui.composer = el("form", { className: "composer", autocomplete: "off" }, [ui.photo, ui.file, ui.input, ui.send]);
    ui.chatTab = el("button", { type: "button", className: "tab tab-chat", role: "tab" });
    ui.groupsTab = el("button", { type: "button", className: "tab tab-groups", role: "tab" });
    ui.chatPane = el("div", { className: "pane chat-pane" }, [ui.messages, ui.typing, ui.productBar, ui.composer]);
    ui.groupsPane = el("div", { className: "pane groups-pane", hidden: true });
    ui.panel = el("section", { className: "panel", role: "dialog", hidden: true }, [
      el("header", { className: "head" }, [
        el("div", { className: "head-text" }, [ui.title, ui.status]),
        ui.elder, ui.closeBtn,
      ]),
      el("nav", { className: "tabs", role: "tablist" }, [ui.chatTab, ui.groupsTab]),
      ui.offline, ui.chatPane, ui.groupsPane,
    ]);
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
      ui.productSend.addEventListener("click", () => sendProduct(product));
    }

    // ---- words on screen (they change with elder mode) ---------------------------------
    function renderWords() {
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
        ui.productBar.querySelector(".product-label").textContent = w("browsing");
      }
      for (const node of ui.messages.querySelectorAll(".msg.from-buyer[data-seq]")) setReceipt(node);
      renderStatus();
    }

    function renderStatus() {
      const c = state.conv;
      let text;
      if (!c) text = w("hello");
      else if (c.status === "closed") text = w("closed");
      else if (c.status === "assigned") text = w("assigned", { name: c.agent_name || "" });
      else if (c.position) text = w("queued", { n: c.position });
      else text = w("connecting");
      ui.status.textContent = text;
      ui.status.dataset.state = c ? c.status : "none";
    }

    function renderOffline() {
      ui.offline.hidden = state.connected && !state.fatal;
      ui.offline.textContent = state.fatal || w("offline");
    }

    function renderTyping() {
      ui.typing.hidden = !(state.conv && state.conv.status === "assigned" && state.typingUntil > Date.now());
    }

    function renderBadge() {
      ui.badge.hidden = state.open || !state.unseen;
      ui.badge.textContent = String(state.unseen);
    }

    // ---- messages ----------------------------------------------------------------------
    function setReceipt(node) {
      const receipt = node.querySelector(".receipt");
      if (!receipt) return;
      const read = state.conv && Number(node.dataset.seq) <= (state.conv.agent_read_seq || 0);
      receipt.textContent = read ? w("read") : w("unread");
      receipt.classList.toggle("is-read", Boolean(read));
    }

    function messageNode(msg) {
      const meta = [el("time", { text: clockTime(msg.created_at) })];
      if (msg.sender === "buyer") meta.push(el("span", { className: "receipt" }));
      const node = el("li", {
        className: `msg from-${msg.sender} kind-${msg.kind}`,
        dataset: { seq: String(msg.seq), conv: msg.conversation_id, client: msg.client_msg_id || "" },
      }, [el("div", { className: "bubble" }, messageContent(msg, lang, imageUrl)), el("div", { className: "meta" }, meta)]);
      setReceipt(node);
      if (msg.kind === "system" && msg.payload && msg.payload.csat_invite) node.append(ratingRow(msg.conversation_id));
      if (msg.kind === "coupon_card") node.append(couponActions(msg.payload || {}));
      return node;
    }

    /* HTTP as this buyer (the token in the header); an answer other than 2xx throws its error. */
    async function api(method, path, body) {
      const headers = { Authorization: `Bearer ${token || ""}` };
      let data = body;
      if (body !== undefined && !(body instanceof FormData)) {
        headers["Content-Type"] = "application/json";
        data = JSON.stringify(body);
      }
      let res;
      try {
        res = await fetch(`${server}/api/v1${path}`, { method, headers, body: data });
      } catch (err) {
        throw Object.assign(new Error(w("offline")), { code: "offline" });
      }
      const answer = res.status === 204 ? null : await res.json().catch(() => null);
      if (!res.ok) {
        const e = (answer && answer.error) || {};
        throw Object.assign(new Error(e.message || `HTTP ${res.status}`), { code: e.code, status: res.status });
      }
      return answer;
    }

    /* Under a coupon card: claim a recall coupon; say a late-shipment coupon is already given;
     * the one-tap opt-out of recalls on cards that offer it. */
    function couponActions(payload) {
      const coupon = payload.coupon || {};
      const row = el("div", { className: "card-actions" });
      const note = el("span", { className: "card-note", role: "status" });
      if (coupon.reason === "recall" && coupon.id) {
        const claim = el("button", { type: "button", className: "claim", text: w("claim"), dataset: { coupon: coupon.id } });
        if (state.claimed.has(coupon.id)) showClaimed(claim);
        claim.addEventListener("click", async () => {
          claim.disabled = true;
          claim.textContent = w("claiming");
          note.textContent = "";
          try {
            await api("POST", `/recall/coupons/${encodeURIComponent(coupon.id)}/claim`);
            state.claimed.add(coupon.id);
            showClaimed(claim);
          } catch (err) {
            claim.disabled = false;
            claim.textContent = w("claim");
            note.textContent = w("actionFailed", { reason: err.message });
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
            showOptedOut();
          } catch (err) {
            optOut.disabled = false;
            note.textContent = w("actionFailed", { reason: err.message });
          }
        });
        row.append(optOut);
        if (state.optedOut) queueMicrotask(showOptedOut);
      }
      return row;
    }

    function showClaimed(button) {
      button.disabled = true;
      button.textContent = w("claimed");
      button.classList.add("done");
    }

    /* What this buyer already did with recall cards (claimed, opted out), so cards loaded
     * again after a reload show it; a card can still be claimed if this cannot be asked. */
    async function loadRecallState() {
      let mine;
      try {
        mine = await api("GET", "/recall/me");
      } catch (err) {
        return;
      }
      for (const id of mine.claimed || []) state.claimed.add(id);
      for (const button of ui.messages.querySelectorAll("button.claim")) {
        if (state.claimed.has(button.dataset.coupon)) showClaimed(button);
      }
      if (mine.opted_out) {
        state.optedOut = true;
        showOptedOut();
      }
    }

    function showOptedOut() {
      for (const link of ui.messages.querySelectorAll(".opt-out")) {
        link.replaceWith(el("span", { className: "opted-out", text: w("optedOut") }));
      }
    }

    /* 1-5 stars under the closing notice; the server answers csat.received (once per conversation). */
    function ratingRow(conversationId) {
      const row = el("div", { className: "csat", dataset: { conv: conversationId } }, [
        el("span", { className: "csat-label", text: w("rate") }),
      ]);
      const stars = el("div", { className: "stars", role: "group" });
      for (let n = 1; n <= 5; n += 1) {
        stars.append(el("button", {
          type: "button", className: "star", text: "★", dataset: { score: String(n) },
          "aria-label": w("stars", { n }),
          onclick: () => {
            if (socket.send({ type: "csat.submit", conversation_id: conversationId, score: n })) {
              for (const b of stars.children) b.classList.toggle("on", Number(b.dataset.score) <= n);
            }
          },
        }));
      }
      row.append(stars);
      return row;
    }

    function thankForRating(conversationId) {
      for (const row of ui.messages.querySelectorAll(`.csat[data-conv="${CSS.escape(conversationId)}"]`)) {
        row.replaceChildren(el("span", { className: "csat-thanks", text: w("thanks") }));
      }
    }

    /* An <img> on the shop's page cannot send our headers: the buyer token goes in the URL. */
    function imageUrl(uploadId) {
      return `${server}/api/v1/uploads/${encodeURIComponent(uploadId)}?token=${encodeURIComponent(token || "")}`;
    }

    function pendingNode(frame) {
      const body = frame.kind === "text"
        ? el("p", { className: "text", text: frame.body })
        : messageContent({ kind: frame.kind, payload: frame.payload, body: frame.body }, lang, imageUrl);
      return el("li", { className: "msg from-buyer pending", dataset: { client: frame.client_msg_id } }, [
        el("div", { className: "bubble" }, body),
        el("div", { className: "meta" }, el("span", { className: "state", text: w("sending") })),
      ]);
    }

    function scrollDown() {
      ui.messages.scrollTop = ui.messages.scrollHeight;
    }

    /* The conversation the frames talk about; a different one replaces the old on screen. */
    function useConversation(data) {
      if (state.conv && state.conv.id === data.id) {
        Object.assign(state.conv, data);
      } else {
        const hadOne = Boolean(state.conv);
        state.conv = { ...data };
        state.msgs = new Map();
        state.upto = 0;
        state.readSent = 0;
        // Unsent messages and the shop's notice cards stay; the old conversation goes.
        for (const node of [...ui.messages.children]) {
          if (!node.classList.contains("pending") && !node.classList.contains("notice")) node.remove();
        }
        if (hadOne) ui.messages.prepend(el("li", { className: "msg from-system divider", text: w("newConversation") }));
        // History of this conversation (a reload, or a second tab), from the start.
        socket.send({ type: "sync", conversation_id: data.id, after_seq: 0 });
      }
      renderStatus();
      renderTyping();
    }

    /* A card the shop sent outside this chat (a notice conversation, born closed to carry
     * it): shown at the end without leaving the conversation on screen. */
    function showNotice(msg) {
      if (state.notices.has(msg.id)) return;
      state.notices.add(msg.id);
      const node = messageNode(msg);
      node.classList.add("notice");
      node.dataset.seq = "0"; // never reorders the conversation's own messages
      ui.messages.append(node);
      if (!state.open) { state.unseen += 1; renderBadge(); }
      scrollDown();
    }

    function receive(msg) {
      const elsewhere = !state.conv || state.conv.id !== msg.conversation_id;
      if (elsewhere && msg.sender === "system" && NOTICE_KINDS.has(msg.kind)) {
        showNotice(msg);
        return;
      }
      if (elsewhere) {
        useConversation({ id: msg.conversation_id, status: "queued" });
      }
      if (msg.client_msg_id) state.pending.delete(msg.client_msg_id);
      const waiting = msg.client_msg_id && ui.messages.querySelector(`.pending[data-client="${CSS.escape(msg.client_msg_id)}"]`);
      if (state.msgs.has(msg.seq)) {
        if (waiting) waiting.remove();
        return;
      }
      state.msgs.set(msg.seq, msg);
      while (state.msgs.has(state.upto + 1)) state.upto += 1;
      if (waiting) waiting.replaceWith(messageNode(msg));
      else {
        const divider = ui.messages.querySelector(".divider");
        insertBySeq(ui.messages, messageNode(msg), msg.seq);
        if (divider) ui.messages.prepend(divider);
      }
      if (msg.sender === "agent") {
        state.typingUntil = 0;
        renderTyping();
        if (!state.open) { state.unseen += 1; renderBadge(); }
      }
      scrollDown();
      scheduleRead();
    }

    let readTimer = null;
    function scheduleRead() {
      if (readTimer) return;
      readTimer = setTimeout(() => {
        readTimer = null;
        const c = state.conv;
        if (!c || !state.open || document.hidden || c.status === "closed") return;
        let top = 0;
        for (const m of state.msgs.values()) if (m.sender !== "buyer") top = Math.max(top, m.seq);
        if (top > state.readSent && socket.send({ type: "read", conversation_id: c.id, seq: top })) {
          state.readSent = top;
        }
      }, 250);
    }

    function send(frame) {
      state.pending.set(frame.client_msg_id, frame);
      ui.messages.append(pendingNode(frame));
      scrollDown();
      socket.send(frame); // offline: resent after the reconnect's hello (same id: no duplicate)
    }

    function sendText() {
      const body = ui.input.value;
      if (!body.trim()) return;
      ui.input.value = "";
      autosize();
      send({ type: "message.send", client_msg_id: newClientId(), kind: "text", body });
    }

    /* A photo: uploaded over HTTP first, then sent as an image message with its upload id. */
    async function sendPhoto(file) {
      const clientId = newClientId();
      const waiting = el("li", { className: "msg from-buyer pending uploading", dataset: { client: clientId } }, [
        el("div", { className: "bubble" }, el("p", { className: "text", text: w("uploading") })),
        el("div", { className: "meta" }, el("span", { className: "state", text: w("sending") })),
      ]);
      ui.messages.append(waiting);
      scrollDown();
      const form = new FormData();
      form.append("file", file);
      let uploaded;
      try {
        uploaded = await api("POST", "/uploads", form);
      } catch (err) {
        waiting.classList.add("failed");
        waiting.querySelector(".state").textContent = `${w("failed")}: ${err.message}`;
        return;
      }
      waiting.remove();
      send({ type: "message.send", client_msg_id: clientId, kind: "image", body: "", payload: { upload_id: uploaded.upload_id } });
    }

    function sendProduct(p) {
      if (!p) return;
      openPanel();
      send({
        type: "message.send", client_msg_id: newClientId(), kind: "product_card", body: "",
        payload: { product_id: p.product_id, title: p.title, category: p.category || null, price_cents: p.price_cents },
      });
    }

    function markFailed(clientId, reason) {
      const node = ui.messages.querySelector(`.pending[data-client="${CSS.escape(clientId)}"]`);
      if (!node) return;
      node.classList.add("failed");
      node.querySelector(".state").textContent = `${w("failed")}: ${reason}`;
    }

    // ---- the socket --------------------------------------------------------------------
    const handlers = {
      hello(f) {
        state.connected = true;
        state.elder = Boolean(f.elder_mode);
        if (f.conversation) {
          const same = state.conv && state.conv.id === f.conversation.id;
          useConversation(f.conversation);
          // Reconnected to the same conversation: only what we missed.
          if (same) socket.send({ type: "sync", conversation_id: f.conversation.id, after_seq: state.upto });
        } else if (state.conv && state.conv.status !== "closed") {
          state.conv.status = "closed"; // ended while we were away
        }
        for (const frame of state.pending.values()) socket.send(frame);
        renderWords();
        renderOffline();
        loadRecallState();
      },
      "message.ack"(f) {
        if (f.message && f.message.group_id) { if (groups) groups.onFrame(f); return; }
        receive(f.message);
      },
      "message.new"(f) { receive(f.message); },
      "conversation.opened"(f) { useConversation(f.conversation); },
      "conversation.queued"(f) {
        if (state.conv && state.conv.id === f.conversation_id) {
          state.conv.position = f.position;
          renderStatus();
        }
      },
      "conversation.assigned"(f) { useConversation(f.conversation); },
      "conversation.transferred"(f) {
        // To an agent: conversation.assigned follows. To a queue: we wait again.
        if (state.conv && state.conv.id === f.conversation_id && f.to_queue) {
          Object.assign(state.conv, { status: "queued", agent_name: null, position: null, queue: f.to_queue });
          renderStatus();
        }
      },
      "conversation.closed"(f) {
        if (state.conv && state.conv.id === f.conversation_id) {
          state.conv.status = "closed";
          renderStatus();
          renderTyping();
        }
      },
      typing(f) {
        if (f.by !== "agent") return;
        state.typingUntil = Date.now() + 4000;
        renderTyping();
      },
      read(f) {
        if (f.by !== "agent" || !state.conv || state.conv.id !== f.conversation_id) return;
        state.conv.agent_read_seq = Math.max(state.conv.agent_read_seq || 0, f.seq);
        for (const node of ui.messages.querySelectorAll(".msg.from-buyer[data-seq]")) setReceipt(node);
      },
      elder_mode(f) {
        state.elder = Boolean(f.on);
        renderWords();
      },
      "csat.received"(f) { thankForRating(f.conversation_id); },
      error(f) {
        if (f.code === "already_rated" && state.conv) thankForRating(state.conv.id);
        if (f.ref && state.pending.has(f.ref)) {
          state.pending.delete(f.ref);
          markFailed(f.ref, f.message);
        }
      },
    };

    const wsBase = server.replace(/^http/, "ws");
    const socket = new Socket(`${wsBase}/ws/buyer?token=${encodeURIComponent(token || "")}`, {
      onFrame: (frame) => {
        if (groups && (frame.type.startsWith("group.") || frame.type === "hello" ||
            (frame.type === "error" && frame.ref && !state.pending.has(frame.ref)))) groups.onFrame(frame);
        const h = handlers[frame.type];
        if (h) h(frame);
      },
      onDown: () => { state.connected = false; renderOffline(); },
      onUnauthorized: () => { state.connected = false; state.fatal = w("badToken"); renderOffline(); },
    });

    // ---- interaction -------------------------------------------------------------------
    function openPanel() {
      state.open = true;
      state.unseen = 0;
      ui.panel.hidden = false;
      ui.launcher.hidden = true;
      ui.launcher.setAttribute("aria-expanded", "true");
      renderBadge();
      scrollDown();
      scheduleRead();
      ui.input.focus();
    }

    function closePanel() {
      state.open = false;
      ui.panel.hidden = true;
      ui.launcher.hidden = false;
      ui.launcher.setAttribute("aria-expanded", "false");
      renderBadge();
    }

    function autosize() {
      ui.input.style.height = "auto";
      ui.input.style.height = `${Math.min(ui.input.scrollHeight, 120)}px`;
    }

    let lastTyping = 0;
    ui.launcher.addEventListener("click", openPanel);
    ui.closeBtn.addEventListener("click", closePanel);
    ui.elder.addEventListener("click", () => socket.send({ type: "elder_mode", on: !state.elder }));
    ui.composer.addEventListener("submit", (e) => { e.preventDefault(); sendText(); });
    ui.photo.addEventListener("click", () => ui.file.click());
    ui.file.addEventListener("change", () => {
      const file = ui.file.files && ui.file.files[0];
      ui.file.value = "";
      if (file) sendPhoto(file);
    });
    ui.chatTab.addEventListener("click", () => showTab("chat"));
    ui.groupsTab.addEventListener("click", () => showTab("groups"));
    ui.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        sendText();
      }
    });
    ui.input.addEventListener("input", () => {
      autosize();
      const c = state.conv;
      if (c && c.status !== "closed" && Date.now() - lastTyping > 3000) {
        lastTyping = Date.now();
        socket.send({ type: "typing", conversation_id: c.id });
      }
    });
    document.addEventListener("visibilitychange", scheduleRead);
    setInterval(renderTyping, 1000);

    function showTab(tab) {
      state.tab = tab;
      ui.chatPane.hidden = tab !== "chat";
      ui.groupsPane.hidden = tab !== "groups";
      ui.chatTab.setAttribute("aria-selected", String(tab === "chat"));
      ui.groupsTab.setAttribute("aria-selected", String(tab === "groups"));
      if (tab === "groups" && groups) groups.show();
    }

    // The fan-group pane (widget-groups.js): same socket, same token, same words switch.
    const groups = HomingGroups
      ? HomingGroups.mount({ pane: ui.groupsPane, Homing, lang, api, socket })
      : null;
    if (!groups) ui.groupsTab.hidden = true;
    showTab("chat");

    window.HomingWidget = { open: openPanel, close: closePanel, sendProduct, showTab };
    renderWords();
    renderOffline();
    ui.offline.hidden = true; // not "offline" before the first attempt has had its chance
    socket.start();
  }
})();
