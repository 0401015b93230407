/* The workbench's desk tools: the conversation's tags (标签), the buyer's history (earlier
 * conversations, read-only, and 历史消息 when scrolling up in the chat), and message search.
 * workbench.js tells us which conversation is open ("homing:active") and passes every
 * socket frame on ("homing:frame"). Text goes on the page as text only; the one HTML we
 * insert is the server's search highlight, which the server escaped (only <mark> is live). */
(function () {
  "use strict";
  const { el, csrfHeader, gettext, format, messageContent, clockTime } = window.Homing;
  const wb = window.HomingWorkbench;
  const boot = wb.boot;
  const LANG = boot.lang;
  const may = (permission) => (boot.permissions || []).includes(permission);
  const $ = (id) => document.getElementById(id);
  const ui = {
    tagBar: $("tag-bar"), tagList: $("tag-list"), tagPick: $("tag-pick"),
    history: $("history-list"), historyNone: $("history-none"),
    viewer: $("history-view"), viewerTitle: $("history-view-title"), viewerMessages: $("history-view-messages"),
    viewerClose: $("history-view-close"), messages: $("messages"),
    searchOpen: $("search-open"), search: $("search-panel"), searchForm: $("search-form"),
    searchQ: $("search-q"), searchTag: $("search-tag"), searchBuyer: $("search-buyer"),
    searchFrom: $("search-from"), searchTo: $("search-to"), searchResults: $("search-results"),
    searchMore: $("search-more"), searchStatus: $("search-status"), searchClose: $("search-close"),
  };
  const dateFmt = new Intl.DateTimeFormat(LANG === "en" ? "en" : "zh-CN", {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
  const when = (iso) => (iso ? dateFmt.format(new Date(iso)) : "");
  const QUEUE_LABELS = { general: gettext("general"), elderly: gettext("elder care") };
  const imageUrl = (id) => `/api/v1/uploads/${encodeURIComponent(id)}`;

  async function getJSON(url) {
    const res = await fetch(url, { credentials: "same-origin" });
    if (!res.ok) throw new Error(String(res.status));
    return res.json();
  }

  // ---- tags -------------------------------------------------------------------------
  let shopTags = []; // names
  let current = null; // the CONV on screen
  let tagsOf = new Map(); // conversation id -> names (latest known)

  async function loadShopTags() {
    try { shopTags = (await getJSON("/api/v1/tags")).map((t) => t.name); } catch (err) { shopTags = []; }
    ui.searchTag.replaceChildren(el("option", { value: "", text: gettext("Any tag") }), ...shopTags.map((n) => el("option", { value: n, text: n })));
    renderTags();
  }

  function renderTags() {
    if (!current) { ui.tagBar.hidden = true; return; }
    ui.tagBar.hidden = false;
    const mine = tagsOf.get(current.id) || current.tags || [];
    ui.tagList.replaceChildren(...mine.map((name) => el("li", { className: "tag" }, [
      name,
      el("button", { type: "button", className: "tag-remove", title: gettext("Remove tag"), "aria-label": format(gettext("Remove tag %(name)s"), { name }), text: "×", onclick: () => saveTags(mine.filter((n) => n !== name)) }),
    ])));
    const left = shopTags.filter((n) => !mine.includes(n));
    ui.tagPick.replaceChildren(el("option", { value: "", text: gettext("+ Tag") }), ...left.map((n) => el("option", { value: n, text: n })));
    ui.tagPick.disabled = left.length === 0;
  }

  async function saveTags(names) {
    if (!current) return;
    const id = current.id;
    const res = await fetch(`/api/v1/conversations/${encodeURIComponent(id)}/tags`, {
      method: "PUT", credentials: "same-origin",
      headers: { "Content-Type": "application/json", ...csrfHeader() },
      body: JSON.stringify({ tags: names }),
    });
    if (!res.ok) { wb.toast(gettext("Could not save the tags")); return; }
    tagsOf.set(id, (await res.json()).tags);
    renderTags();
  }

  ui.tagPick.addEventListener("change", () => {
    const name = ui.tagPick.value;
    if (!name || !current) return;
    saveTags([...(tagsOf.get(current.id) || current.tags || []), name]);
  });

  // ---- the buyer's history ------------------------------------------------------------
  let historyBuyer = null; // buyer id whose list is shown
  let history = []; // HistoryEntry[], newest first, the open conversation left out
  const earlier = new Map(); // conversation id -> {entry, nodes} loaded above the chat

  async function loadHistory(conv) {
    historyBuyer = conv.buyer_id;
    history = [];
    earlier.clear();
    ui.history.replaceChildren();
    ui.historyNone.hidden = true;
    let page;
    try {
      page = await getJSON(`/api/v1/buyers/${encodeURIComponent(conv.buyer_id)}/conversations?limit=20`);
    } catch (err) {
      return;
    }
    if (historyBuyer !== conv.buyer_id) return;
    history = page.conversations.filter((c) => c.id !== conv.id);
    ui.historyNone.hidden = history.length > 0;
    ui.history.replaceChildren(...history.map(historyItem));
  }

  function historyItem(h) {
    const stars = h.rating ? "★".repeat(h.rating) + "☆".repeat(5 - h.rating) : gettext("not rated");
    return el("li", { className: "history-item" }, el("button", {
      type: "button", className: "history-open", dataset: { conv: h.id }, onclick: () => openViewer(h),
    }, [
      el("div", { className: "history-row" }, [
        el("time", { datetime: h.opened_at, text: when(h.opened_at) }),
        el("span", { className: "history-agent", text: h.agent_name || gettext("unassigned") }),
      ]),
      el("div", { className: "history-line", text: h.first_line || "—" }),
      el("div", { className: "history-row sub" }, [
        el("span", { text: `${gettext("queue")}: ${QUEUE_LABELS[h.queue] || h.queue}` }),
        el("span", { className: "history-rating", text: stars }),
      ]),
      h.tags.length ? el("ul", { className: "tag-list small" }, h.tags.map((t) => el("li", { className: "tag", text: t }))) : null,
    ]));
  }

  function readOnlyNode(msg) {
    return el("li", { className: `msg from-${msg.sender} kind-${msg.kind} history`, dataset: { seq: String(msg.seq), id: msg.id } }, [
      el("div", { className: "bubble" }, messageContent(msg, LANG, imageUrl)),
      el("div", { className: "msg-meta" }, el("time", { datetime: msg.created_at, text: clockTime(msg.created_at) })),
    ]);
  }

  async function openViewer(h, atSeq) {
    ui.viewerTitle.textContent = format(gettext("Conversation of %(date)s · %(agent)s (read-only)"), {
      date: when(h.opened_at), agent: h.agent_name || gettext("unassigned"),
    });
    ui.viewerMessages.replaceChildren(el("li", { className: "empty", text: gettext("Loading…") }));
    ui.viewer.hidden = false;
    const after = atSeq ? Math.max(0, atSeq - 30) : 0;
    let msgs;
    try {
      msgs = await getJSON(`/api/v1/history/conversations/${encodeURIComponent(h.id)}/messages?after_seq=${after}&limit=200`);
    } catch (err) {
      ui.viewerMessages.replaceChildren(el("li", { className: "empty", text: gettext("Not allowed") }));
      return;
    }
    ui.viewerMessages.replaceChildren(...msgs.map(readOnlyNode));
    const target = atSeq && ui.viewerMessages.querySelector(`[data-seq="${atSeq}"]`);
    if (target) {
      target.classList.add("hit");
      target.scrollIntoView({ block: "center" });
    } else {
      ui.viewerMessages.scrollTop = 0;
    }
  }

  ui.viewerClose.addEventListener("click", () => { ui.viewer.hidden = true; });

  /* 历史消息: at the top of the chat, load the conversation before the ones shown. */
  async function loadEarlier() {
    const next = history.find((h) => !earlier.has(h.id));
    if (!next || !current) return;
    earlier.set(next.id, { entry: next, nodes: null });
    let msgs;
    try {
      msgs = await getJSON(`/api/v1/history/conversations/${encodeURIComponent(next.id)}/messages?limit=200`);
    } catch (err) {
      earlier.delete(next.id);
      return;
    }
    const divider = el("li", { className: "msg from-system notice history-divider", text: format(gettext("Earlier conversation · %(date)s · %(agent)s"), { date: when(next.opened_at), agent: next.agent_name || gettext("unassigned") }) });
    earlier.get(next.id).nodes = [divider, ...msgs.map(readOnlyNode)];
    const before = ui.messages.scrollHeight;
    placeEarlier();
    ui.messages.scrollTop = ui.messages.scrollHeight - before;
  }

  /* workbench.js redraws the chat now and then; put the loaded history back on top. */
  function placeEarlier() {
    for (const node of ui.messages.querySelectorAll(".history, .history-divider")) node.remove();
    const blocks = [...earlier.values()].filter((b) => b.nodes);
    for (const block of blocks) ui.messages.prepend(...block.nodes);
  }

  ui.messages.addEventListener("scroll", () => {
    if (ui.messages.scrollTop <= 0 && current) loadEarlier();
  });

  document.addEventListener("homing:active", (event) => {
    const detail = event.detail;
    const conv = detail ? detail.conv : null;
    const changed = (conv && conv.id) !== (current && current.id);
    current = conv;
    if (conv && conv.tags && !tagsOf.has(conv.id)) tagsOf.set(conv.id, conv.tags);
    renderTags();
    if (!conv) { ui.history.replaceChildren(); historyBuyer = null; return; }
    if (changed) loadHistory(conv);
    else if (earlier.size) queueMicrotask(placeEarlier);
  });

  document.addEventListener("homing:frame", (event) => {
    const f = event.detail;
    if (f.type === "conversation.tags") {
      tagsOf.set(f.conversation_id, f.tags);
      if (current && current.id === f.conversation_id) renderTags();
    } else if (f.type === "error" && f.code === "tag_required") {
      wb.toast(gettext("Tag this conversation before closing it"));
      ui.tagPick.focus();
    }
  });

  // ---- search ---------------------------------------------------------------------------
  let searchCursor = null;
  let searchParams = null;

  function hitNode(hit) {
    const mark = el("div", { className: "hit-text" });
    mark.innerHTML = hit.highlight; // escaped by the server; only <mark> is markup
    return el("li", { className: "search-hit" }, el("button", {
      type: "button", className: "hit-open", dataset: { conv: hit.conversation_id, seq: String(hit.seq) },
      onclick: () => openViewer({ id: hit.conversation_id, opened_at: hit.created_at, agent_name: hit.agent_name }, hit.seq),
    }, [
      el("div", { className: "history-row" }, [
        el("time", { datetime: hit.created_at, text: when(hit.created_at) }),
        el("span", { className: "hit-who", text: `${hit.buyer_name || hit.buyer_id} · ${hit.agent_name || gettext("unassigned")}` }),
      ]),
      mark,
      hit.tags.length ? el("ul", { className: "tag-list small" }, hit.tags.map((t) => el("li", { className: "tag", text: t }))) : null,
    ]));
  }

  async function runSearch(more) {
    if (!more) {
      const p = new URLSearchParams({ q: ui.searchQ.value.trim() });
      if (ui.searchTag.value) p.set("tag", ui.searchTag.value);
      if (ui.searchBuyer.value.trim()) p.set("buyer_id", ui.searchBuyer.value.trim());
      if (ui.searchFrom.value) p.set("from", new Date(`${ui.searchFrom.value}T00:00:00`).toISOString());
      if (ui.searchTo.value) p.set("to", new Date(`${ui.searchTo.value}T23:59:59`).toISOString());
      searchParams = p;
      searchCursor = null;
      ui.searchResults.replaceChildren();
    }
    if (!searchParams.get("q")) return;
    const p = new URLSearchParams(searchParams);
    if (searchCursor) p.set("cursor", searchCursor);
    ui.searchStatus.textContent = gettext("Searching…");
    let page;
    try {
      page = await getJSON(`/api/v1/search/messages?${p}`);
    } catch (err) {
      ui.searchStatus.textContent = gettext("Search failed");
      return;
    }
    ui.searchResults.append(...page.hits.map(hitNode));
    searchCursor = page.next_cursor;
    ui.searchMore.hidden = !searchCursor;
    ui.searchMore.textContent = page.partial ? gettext("Search older messages") : gettext("More results");
    const n = ui.searchResults.children.length;
    ui.searchStatus.textContent = n ? format(gettext("%(n)s results"), { n }) : (searchCursor ? gettext("Nothing in the newest messages yet") : gettext("No results"));
  }

  ui.searchOpen.addEventListener("click", () => { ui.search.hidden = false; ui.searchQ.focus(); });
  ui.searchClose.addEventListener("click", () => { ui.search.hidden = true; });
  ui.searchForm.addEventListener("submit", (e) => { e.preventDefault(); runSearch(false); });
  ui.searchMore.addEventListener("click", () => runSearch(true));

  loadShopTags();
})();
