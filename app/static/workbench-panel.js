/* The workbench's buyer panel (profile, orders, the payout form with my remaining authority)
 * and the transfer form. workbench.js tells us which conversation is open ("homing:active")
 * and passes every socket frame on ("homing:frame"). Data goes on the page as text only. */
(function () {
  "use strict";
  const { el, money, csrfHeader, gettext, format } = window.Homing;
  const wb = window.HomingWorkbench;
  const boot = wb.boot;
  const QUEUE_LABELS = { general: gettext("general"), elderly: gettext("elder care") };
  const ORDER_STATUS = { paid: gettext("paid"), shipped: gettext("shipped"), refunded: gettext("refunded") };
  // What the payout API's error codes mean to the agent (else the server's own message).
  const ERRORS = {
    insufficient_funds: gettext("The payout fund is too low; ask an admin to top it up"),
    order_cap_exceeded: gettext("More than this order can still be compensated"),
    order_refunded: gettext("The order was refunded; no compensation on it"),
    evidence_required: gettext("A damaged claim needs the buyer's photo in this chat first"),
    order_required: gettext("Pick an order first"),
    order_mismatch: gettext("That order is not this buyer's"),
    invalid_amount: gettext("Invalid amount"),
    payout_limit_exceeded: gettext("Above my own per-payout limit"),
    daily_limit_exceeded: gettext("Above what is left of my daily total"),
    not_pending: gettext("Already decided"),
    forbidden: gettext("Not allowed"),
  };
  const me = boot.agent;
  // What the policy lets me see (app/shops/policy.py); the API decides again on every call.
  const may = (permission) => (boot.permissions || []).includes(permission);

  const $ = (id) => document.getElementById(id);
  const ui = {
    none: $("buyer-none"), info: $("buyer-info"), name: $("buyer-name"), vip: $("buyer-vip"),
    elder: $("buyer-elder"), id: $("buyer-id"), orders: $("order-list"), form: $("payout-form"),
    order: $("payout-order"), amount: $("payout-amount"), reason: $("payout-reason"),
    note: $("payout-note"), authority: $("payout-authority"), over: $("payout-over"),
    submit: $("payout-submit"), result: $("payout-result"),
    transferOpen: $("transfer-open"), transferForm: $("transfer-form"),
    transferTarget: $("transfer-target"), transferNote: $("transfer-note"),
    transferCancel: $("transfer-cancel"),
  };

  let current = null; // {conv, open} of the conversation on screen
  let usedToday = 0; // cents I authorised today (the daily total)
  let ordersFor = null; // conversation id whose orders are shown

  // ---- my remaining authority ----------------------------------------------------------
  const dayOf = new Intl.DateTimeFormat("en-CA", {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
  });

  /* The daily total counts what I authorised: my payouts paid at once, and those I approved. */
  async function loadAuthority() {
    const query = may("view_payouts") ? "status=paid&limit=500" : `status=paid&agent_id=${encodeURIComponent(me.id)}&limit=500`;
    try {
      const res = await fetch(`/api/v1/payouts?${query}`, { credentials: "same-origin" });
      if (!res.ok) return;
      const today = dayOf.format(new Date());
      usedToday = 0;
      for (const p of await res.json()) {
        const mine = p.approved_by ? p.approved_by === me.id : p.agent_id === me.id;
        if (mine && p.paid_at && dayOf.format(new Date(p.paid_at)) === today) usedToday += p.amount_cents;
      }
    } catch (err) {
      return; // offline: keep what we had
    }
    renderAuthority();
  }

  function leftToday() { return Math.max(0, me.payout_daily_cents - usedToday); }

  function renderAuthority() {
    ui.authority.textContent = format(gettext("Per payout %(limit)s · left today %(left)s of %(daily)s"), { limit: money(me.payout_limit_cents), left: money(leftToday()), daily: money(me.payout_daily_cents) });
    const cents = parseYuan(ui.amount.value);
    const over = cents !== null && (cents > me.payout_limit_cents || cents > leftToday());
    ui.over.hidden = !over;
    ui.submit.textContent = over ? gettext("Ask for approval") : gettext("Pay");
  }

  /* "12.5" -> 1250 cents; null unless a positive amount with at most two decimals. */
  function parseYuan(text) {
    const m = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(text || "");
    if (!m) return null;
    const cents = Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"));
    return cents > 0 ? cents : null;
  }

  // ---- profile and orders --------------------------------------------------------------
  function show(detail) {
    const changed = (detail && detail.conv.id) !== (current && current.conv.id);
    current = detail;
    ui.none.hidden = Boolean(detail);
    ui.info.hidden = !detail;
    if (!detail) return;
    const c = detail.conv;
    ui.name.textContent = c.buyer_name || c.buyer_id;
    ui.id.textContent = c.buyer_id;
    ui.vip.hidden = !c.buyer_vip;
    ui.vip.textContent = c.buyer_vip ? `${gettext("VIP")}${c.buyer_vip}` : "";
    ui.elder.hidden = !c.elder;
    ui.submit.disabled = !detail.open;
    ui.transferOpen.disabled = !detail.open;
    if (!detail.open) ui.transferForm.hidden = true;
    if (changed) {
      resetForm();
      ui.result.hidden = true;
      ui.transferForm.hidden = true;
      loadOrders();
    }
  }

  async function loadOrders() {
    if (!current) return;
    const c = current.conv;
    ordersFor = c.id;
    let orders = [];
    try {
      const res = await fetch(`/api/v1/buyers/${encodeURIComponent(c.buyer_id)}/orders?conversation_id=${encodeURIComponent(c.id)}`,
        { credentials: "same-origin" });
      if (res.ok) orders = await res.json();
    } catch (err) { /* offline: show none */ }
    if (!current || current.conv.id !== c.id) return; // another conversation was opened meanwhile
    const chosen = ui.order.value;
    ui.orders.replaceChildren(...orders.map((o) => el("li", { className: `order${o.linked ? " linked" : ""}`, dataset: { order: o.order_id } }, [
      el("div", { className: "order-row" }, [
        el("span", { className: "order-id", text: `#${o.order_id}` }),
        o.linked ? el("span", { className: "badge badge-linked", text: gettext("in chat") }) : null,
        el("span", { className: "order-amount", text: money(o.amount_cents) }),
      ]),
      el("div", { className: "order-row sub" }, [
        el("span", { text: [o.category, ORDER_STATUS[o.status] || o.status].filter(Boolean).join(" · ") }),
        o.paid_out_cents ? el("span", { className: "paid-out", text: format(gettext("%(amount)s paid out"), { amount: money(o.paid_out_cents) }) }) : null,
      ]),
      o.tracking_line ? el("div", { className: "order-row sub tracking", title: o.tracking_at || "" }, [
        el("span", { text: [o.carrier, o.tracking_line].filter(Boolean).join(" · ") }),
      ]) : null,
    ])));
    if (!orders.length) ui.orders.append(el("li", { className: "empty", text: gettext("No orders from this buyer") }));
    ui.order.replaceChildren(...orders.map((o) => el("option", {
      value: o.order_id, text: `#${o.order_id} · ${money(o.amount_cents)}`, disabled: o.status === "refunded",
    })));
    if (chosen && orders.some((o) => o.order_id === chosen)) ui.order.value = chosen;
  }

  // ---- the payout form -----------------------------------------------------------------
  /* One submission keeps its Idempotency-Key until the server has answered it; a retry of the
   * same submission (network failure, 5xx) sends the same key, so it can never pay twice. */
  let attempt = null; // {key, fingerprint}

  function resetForm() {
    ui.amount.value = "";
    ui.note.value = "";
    ui.reason.selectedIndex = 0;
    attempt = null;
    renderAuthority();
  }

  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "pay-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function result(text, kind) {
    ui.result.textContent = text;
    ui.result.className = `payout-result ${kind}`;
    ui.result.hidden = false;
  }

  function errorText(body, status) {
    const err = (body && body.error) || {};
    return ERRORS[err.code] || err.message || format(gettext("Failed: %(error)s"), { error: String(status) });
  }

  ui.amount.addEventListener("input", renderAuthority);

  ui.form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!current) return;
    if (!current.open) { result(gettext("The conversation is closed"), "error"); return; }
    const cents = parseYuan(ui.amount.value);
    if (cents === null) { result(gettext("Enter an amount with at most 2 decimals, e.g. 12.50"), "error"); ui.amount.focus(); return; }
    if (!ui.order.value) { result(gettext("Pick an order first"), "error"); return; }
    const body = {
      conversation_id: current.conv.id,
      order_id: ui.order.value,
      amount_cents: cents,
      reason: ui.reason.value,
      note: ui.note.value.trim() || null,
    };
    const fingerprint = JSON.stringify(body);
    if (!attempt || attempt.fingerprint !== fingerprint) attempt = { key: newKey(), fingerprint };
    ui.submit.disabled = true;
    ui.submit.textContent = gettext("Submitting…");
    let res;
    let data = null;
    try {
      res = await fetch("/api/v1/payouts", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Idempotency-Key": attempt.key, ...csrfHeader() },
        body: fingerprint,
      });
      data = await res.json().catch(() => null);
    } catch (err) {
      res = null;
    }
    ui.submit.disabled = !(current && current.open);
    renderAuthority();
    if (!res || res.status >= 500) { result(gettext("Network trouble; press again to retry (it will not pay twice)"), "error"); return; } // keep the key
    if (res.status === 401) { location.assign("/login"); return; }
    attempt = null; // answered: the next press is a new submission
    if (!res.ok) { result(errorText(data, res.status), "error"); return; }
    if (data.status === "paid") result(format(gettext("Paid %(amount)s; the buyer got the compensation card"), { amount: money(data.amount_cents) }), "ok");
    else if (data.status === "pending_approval") result(format(gettext("%(amount)s sent for approval"), { amount: money(data.amount_cents) }), "pending");
    else result(gettext("Compensation rejected"), "error");
    ui.amount.value = "";
    ui.note.value = "";
    loadAuthority();
    loadOrders();
  });

  // ---- transfer ------------------------------------------------------------------------
  async function getJson(url) {
    try {
      const res = await fetch(url, { credentials: "same-origin" });
      return res.ok ? await res.json() : null;
    } catch (err) {
      return null;
    }
  }

  /* Queues for everyone; online colleagues with a free slot where I may list agents. */
  async function loadTargets() {
    const [queues, agents] = await Promise.all([
      getJson("/api/v1/queues"),
      may("view_agents") ? getJson("/api/v1/agents") : Promise.resolve(null),
    ]);
    const groups = [];
    if (queues && queues.length) {
      groups.push(el("optgroup", { label: gettext("Queues") }, queues.map((q) => el("option", {
        value: `queue:${q.name}`,
        text: `${QUEUE_LABELS[q.name] || q.name} (${format(gettext("%(waiting)s waiting · %(online)s online"), { waiting: q.waiting, online: q.agents_online })})`,
      }))));
    }
    const free = (agents || []).filter((a) => a.id !== me.id && a.status === "online" && a.active_count < a.max_concurrent);
    if (free.length) {
      groups.push(el("optgroup", { label: gettext("Colleagues online") }, free.map((a) => el("option", {
        value: `agent:${a.id}`, text: `${a.display_name} (${a.active_count}/${a.max_concurrent})`,
      }))));
    }
    ui.transferTarget.replaceChildren(...groups);
  }

  ui.transferOpen.addEventListener("click", () => {
    if (!current || !current.open) return;
    ui.transferForm.hidden = !ui.transferForm.hidden;
    if (!ui.transferForm.hidden) {
      ui.transferNote.value = "";
      loadTargets().then(() => ui.transferTarget.focus());
    }
  });
  ui.transferCancel.addEventListener("click", () => { ui.transferForm.hidden = true; });
  ui.transferForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const target = ui.transferTarget.value;
    if (!current || !current.open || !target) return;
    const [kind, ...rest] = target.split(":");
    const frame = { type: "conversation.transfer", conversation_id: current.conv.id, note: ui.transferNote.value.trim() || null };
    if (kind === "agent") frame.to_agent_id = rest.join(":");
    else frame.to_queue = rest.join(":");
    if (!wb.send(frame)) { wb.toast(gettext("Connection lost, reconnecting…")); return; }
    ui.transferForm.hidden = true;
    wb.toast(gettext("Transfer sent"));
  });

  // ---- events from workbench.js ----------------------------------------------------------
  document.addEventListener("homing:active", (e) => show(e.detail));
  document.addEventListener("homing:frame", (e) => {
    const f = e.detail;
    if (f.type === "payout.updated" && f.payout) {
      const p = f.payout;
      if (p.agent_id === me.id || p.approved_by === me.id) loadAuthority();
      if (current && p.conversation_id === current.conv.id && ordersFor === current.conv.id) loadOrders();
    }
  });

  loadAuthority();
})();
