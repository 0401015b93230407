/* The workbench's quick phrases (快捷短语, kept on the server: mine and the shop's, in
 * groups) with the composer's "/" picker, the internal-note switch, and @mentions
 * received from colleagues. workbench.js tells us which conversation is open
 * ("homing:active") and passes every socket frame on ("homing:frame"). Text goes on the
 * page with textContent only (Homing.el). */
(function () {
  "use strict";
  const { el, csrfHeader, gettext, format, clockTime } = window.Homing;
  const wb = window.HomingWorkbench;
  const me = wb.boot.agent;
  const may = (permission) => (wb.boot.permissions || []).includes(permission);
  const PICKER_SIZE = 8;
  // Where the workbench used to keep canned replies (one browser only); offered for upload once.
  const OLD_KEY = `homing.canned.${me.id}`;
  const OFFERED_KEY = `homing.canned.${me.id}.offered`;

  const $ = (id) => document.getElementById(id);
  const ui = {
    composer: $("composer"), input: $("composer-input"), picker: $("phrase-picker"),
    noteMode: $("note-mode"), list: $("canned-list"), form: $("canned-form"),
    text: $("canned-input"), group: $("phrase-group"), scopes: document.querySelectorAll(".phrase-scopes [data-scope]"),
    offer: $("phrase-offer"), offerText: $("phrase-offer-text"), offerUpload: $("phrase-offer-upload"),
    offerDismiss: $("phrase-offer-dismiss"), importFile: $("phrase-import"),
    mentions: $("mentions-panel"), mentionList: $("mention-list"),
  };

  let current = null; // the conversation on screen ({conv, open}), from workbench.js
  let scope = null; // the list the panel shows (at first: mine if I have any, else the shop's)
  let phrases = []; // PHRASE, mine first, each list in its order

  document.addEventListener("homing:active", (e) => { current = e.detail; });

  async function api(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { ...csrfHeader() } };
    if (body instanceof FormData) opts.body = body;
    else if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(`/api/v1${path}`, opts);
    } catch (err) {
      wb.toast(gettext("Connection lost, reconnecting…"));
      return null;
    }
    if (res.status === 401) { location.assign("/login"); return null; }
    if (res.status === 204) return {};
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      wb.toast((data && data.error && data.error.message) || String(res.status));
      return null;
    }
    return data;
  }

  // ---- the panel: my phrases and the shop's, by group --------------------------------
  async function loadPhrases() {
    const data = await api("GET", "/phrases");
    if (!data) return;
    phrases = data;
    if (scope === null) scope = phrases.some((p) => p.scope === "mine") ? "mine" : "shop";
    renderPanel();
  }

  function editable(p) { return p.scope === "mine" || may("manage_phrases"); }

  function renderPanel() {
    for (const b of ui.scopes) b.setAttribute("aria-selected", String(b.dataset.scope === scope));
    ui.form.hidden = scope === "shop" && !may("manage_phrases");
    const shown = phrases.filter((p) => p.scope === scope);
    const groups = new Map(); // group -> phrases, groups in the order of their first phrase
    for (const p of shown) {
      if (!groups.has(p.group)) groups.set(p.group, []);
      groups.get(p.group).push(p);
    }
    const nodes = [];
    for (const [group, items] of groups) {
      nodes.push(el("li", { className: "phrase-group", text: group || gettext("Ungrouped") }));
      for (const p of items) nodes.push(phraseItem(p, shown));
    }
    if (!shown.length) nodes.push(el("li", { className: "empty", text: gettext("No phrases yet") }));
    ui.list.replaceChildren(...nodes);
  }

  function phraseItem(p, shown) {
    const tools = [];
    if (editable(p)) {
      const i = shown.indexOf(p);
      if (i > 0) {
        tools.push(el("button", {
          type: "button", className: "phrase-up", text: "↑", title: gettext("Move up"),
          "aria-label": gettext("Move up"), onclick: () => moveUp(p, shown[i - 1]),
        }));
      }
      tools.push(el("button", {
        type: "button", className: "phrase-edit", text: "✎", title: gettext("Edit"),
        "aria-label": gettext("Edit"), onclick: (e) => startEdit(e.target.closest("li"), p),
      }));
      tools.push(el("button", {
        type: "button", className: "canned-remove", text: "×", title: gettext("Remove"),
        "aria-label": gettext("Remove"), onclick: () => removePhrase(p),
      }));
    }
    return el("li", { dataset: { id: p.id } }, [
      el("button", {
        type: "button", className: "canned-use", text: p.text, title: p.text,
        onclick: () => insertPhrase(p, null),
      }),
      ...tools,
    ]);
  }

  function startEdit(li, p) {
    const text = el("input", { maxlength: "500", value: p.text, className: "phrase-edit-text" });
    const group = el("input", { maxlength: "32", value: p.group, className: "phrase-group-input", placeholder: gettext("Group") });
    const form = el("form", { className: "phrase-edit-form" }, [
      text, group, el("button", { type: "submit", text: gettext("Save") }),
      el("button", { type: "button", className: "link-button", text: gettext("Cancel"), onclick: renderPanel }),
    ]);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (await api("PATCH", `/phrases/${encodeURIComponent(p.id)}`, { text: text.value, group: group.value })) loadPhrases();
    });
    li.replaceChildren(form);
    text.focus();
  }

  async function moveUp(p, before) {
    // Swap the two places (a tie, after an import, is broken by going one below).
    const upper = Math.min(p.position, before.position);
    const lower = Math.max(p.position, before.position, upper + 1);
    await api("PATCH", `/phrases/${encodeURIComponent(p.id)}`, { position: upper });
    await api("PATCH", `/phrases/${encodeURIComponent(before.id)}`, { position: lower });
    loadPhrases();
  }

  async function removePhrase(p) {
    if (await api("DELETE", `/phrases/${encodeURIComponent(p.id)}`)) loadPhrases();
  }

  for (const b of ui.scopes) {
    b.addEventListener("click", () => { scope = b.dataset.scope; renderPanel(); });
  }

  ui.form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = ui.text.value.trim();
    if (!text) return;
    if (await api("POST", "/phrases", { text, group: ui.group.value, scope })) {
      ui.text.value = "";
      loadPhrases();
    }
  });

  ui.importFile.addEventListener("change", async () => {
    const file = ui.importFile.files && ui.importFile.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("file", file);
    const done = await api("POST", "/phrases/import", body);
    ui.importFile.value = "";
    if (done) {
      wb.toast(format(gettext("Imported: %(created)s new, %(skipped)s already there"), done));
      loadPhrases();
    }
  });

  // ---- inserting: the phrase with its variables filled for the open conversation ------
  async function rendered(p) {
    const conv = current && current.conv;
    const query = conv ? `?conversation_id=${encodeURIComponent(conv.id)}` : "";
    const out = await api("POST", `/phrases/${encodeURIComponent(p.id)}/render${query}`);
    if (out && out.missing.length) {
      wb.toast(format(gettext("No value here for: %(names)s"), { names: out.missing.join(", ") }));
    }
    return out && out.text;
  }

  /* Put the phrase in the box: over `range` (the "/..." typed), else at the caret. */
  async function insertPhrase(p, range) {
    const text = await rendered(p);
    if (text === null || text === undefined) return;
    const start = range ? range[0] : (ui.input.selectionStart ?? ui.input.value.length);
    const end = range ? range[1] : (ui.input.selectionEnd ?? start);
    ui.input.setRangeText(text, start, end, "end");
    ui.input.focus();
    ui.input.dispatchEvent(new Event("input", { bubbles: true })); // typing, as if typed
  }

  // ---- the "/" picker ------------------------------------------------------------------
  let picked = 0;
  let choices = [];
  let slash = null; // [start, end] of the "/query" being typed
  let asked = 0; // the newest search (older answers are dropped)
  let searchTimer = null;

  /* The "/query" just before the caret: a "/" at the start or after a space, no space after it. */
  function slashQuery() {
    const caret = ui.input.selectionStart;
    if (caret !== ui.input.selectionEnd) return null;
    const before = ui.input.value.slice(0, caret);
    const m = /(^|\s)\/([^\s/]{0,30})$/.exec(before);
    return m ? { start: caret - m[2].length - 1, end: caret, q: m[2] } : null;
  }

  function closePicker() {
    ui.picker.hidden = true;
    ui.picker.replaceChildren();
    choices = [];
    slash = null;
  }

  function renderPicker() {
    if (!choices.length) {
      ui.picker.replaceChildren(el("li", { className: "empty", text: gettext("No matching phrase") }));
    } else {
      ui.picker.replaceChildren(...choices.map((p, i) => el("li", {
        role: "option", className: `phrase-option${i === picked ? " active" : ""}`,
        "aria-selected": String(i === picked), dataset: { id: p.id },
        onmousedown: (e) => { e.preventDefault(); choose(i); },
      }, [
        p.group ? el("span", { className: "phrase-option-group", text: p.group }) : null,
        el("span", { className: "phrase-option-text", text: p.text }),
        p.scope === "shop" ? el("span", { className: "phrase-option-scope", text: gettext("Shop-wide") }) : null,
      ])));
    }
    ui.picker.hidden = false;
  }

  async function search(found) {
    const ask = ++asked;
    const data = await api("GET", `/phrases?q=${encodeURIComponent(found.q)}`);
    if (ask !== asked || !data) return;
    const now = slashQuery();
    if (!now || now.q !== found.q) return; // typed on meanwhile: its own search follows
    slash = [now.start, now.end];
    choices = data.slice(0, PICKER_SIZE);
    picked = 0;
    renderPicker();
  }

  function choose(i) {
    const p = choices[i];
    const range = slash;
    closePicker();
    if (p && range) insertPhrase(p, range);
  }

  ui.input.addEventListener("input", () => {
    const found = slashQuery();
    if (!found) { closePicker(); return; }
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => search(found), found.q ? 120 : 0);
  });
  ui.input.addEventListener("blur", () => setTimeout(closePicker, 150));

  // Capture on the form: ahead of the composer's own Enter-sends handler on the box.
  ui.composer.addEventListener("keydown", (e) => {
    if (ui.picker.hidden || e.target !== ui.input || e.isComposing) return;
    const keys = { ArrowDown: 1, ArrowUp: -1 };
    if (e.key in keys && choices.length) {
      picked = (picked + keys[e.key] + choices.length) % choices.length;
      renderPicker();
    } else if ((e.key === "Enter" || e.key === "Tab") && choices.length) {
      choose(picked);
    } else if (e.key === "Escape" || e.key === "Enter") {
      closePicker();
      if (e.key === "Enter") return; // nothing to pick: Enter sends, as always
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
  }, true);

  // ---- internal notes ------------------------------------------------------------------
  ui.noteMode.addEventListener("change", () => {
    ui.composer.classList.toggle("note-mode", ui.noteMode.checked);
    ui.input.focus();
  });

  // A mention (the live note.mention frame, or a stored MENTION loaded at start: the same
  // fields) as an item of the list, with its button to mark it read.
  function mentionItem(f) {
    const who = f.by.display_name || f.by.username;
    const read = el("button", { type: "button", className: "link-button mention-read", text: gettext("Mark read") });
    const item = el("li", { className: "mention", dataset: { conversation: f.conversation_id, mention: f.mention_id || "" } }, [
      el("div", { className: "mention-head" }, [
        el("strong", { text: who }),
        el("span", { text: ` · ${f.buyer_name || f.buyer_id} · ` }),
        el("time", { datetime: f.message.created_at, text: clockTime(f.message.created_at) }),
        read,
      ]),
      el("p", { className: "mention-text", text: f.message.body }),
    ]);
    read.addEventListener("click", async () => {
      if (f.mention_id && !(await api("POST", `/mentions/${encodeURIComponent(f.mention_id)}/read`))) return;
      item.remove();
      ui.mentions.hidden = !ui.mentionList.children.length;
    });
    return item;
  }

  function listed(id) {
    return id && [...ui.mentionList.children].some((li) => li.dataset.mention === id);
  }

  document.addEventListener("homing:frame", (e) => {
    const f = e.detail;
    if (f.type !== "note.mention" || listed(f.mention_id)) return;
    const who = f.by.display_name || f.by.username;
    wb.toast(format(gettext("%(name)s mentioned you in a note: %(text)s"), { name: who, text: f.message.body }));
    ui.mentions.hidden = false;
    ui.mentionList.prepend(mentionItem(f));
  });

  // Mentions made while I was away (stored until read): listed at start, newest first.
  async function loadMentions() {
    const stored = await api("GET", "/mentions");
    if (!stored) return;
    for (const m of stored) if (!listed(m.mention_id)) ui.mentionList.append(mentionItem(m));
    ui.mentions.hidden = !ui.mentionList.children.length;
  }
  loadMentions();

  // ---- canned replies this browser kept before they lived on the server: offered once ---
  function browserPhrases() {
    try {
      if (localStorage.getItem(OFFERED_KEY)) return [];
      const saved = JSON.parse(localStorage.getItem(OLD_KEY));
      return Array.isArray(saved) ? saved.filter((s) => typeof s === "string" && s.trim()) : [];
    } catch (err) {
      return []; // unreadable or no storage: nothing to offer
    }
  }

  function offered() {
    try { localStorage.setItem(OFFERED_KEY, new Date().toISOString()); } catch (err) { /* private mode */ }
    ui.offer.hidden = true;
  }

  const kept = browserPhrases();
  if (kept.length) {
    ui.offerText.textContent = format(
      gettext("This browser keeps %(n)s canned replies. Upload them to my quick phrases?"), { n: kept.length });
    ui.offer.hidden = false;
  }
  ui.offerDismiss.addEventListener("click", offered);
  ui.offerUpload.addEventListener("click", async () => {
    const done = await api("POST", "/phrases/bulk", { phrases: kept.map((text) => ({ text: text.slice(0, 500) })) });
    if (!done) return;
    offered();
    wb.toast(format(gettext("Imported: %(created)s new, %(skipped)s already there"), done));
    scope = "mine";
    loadPhrases();
  });

  loadPhrases();
})();
