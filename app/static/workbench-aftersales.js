/* The workbench's after-sales list: the requests of the buyer on screen, newest first, with
 * approve / decline and a note on the pending ones (the API decides who may, within the
 * same authority as payouts). workbench.js says which conversation is open
 * ("homing:active") and passes every socket frame on ("homing:frame"). Text only. */
(function () {
  "use strict";
  const { el, money, csrfHeader, gettext, aftersaleType, aftersaleStatus } = window.Homing;
  const ERRORS = {
    payout_limit_exceeded: gettext("Above my own per-payout limit; a supervisor must decide"),
    daily_limit_exceeded: gettext("Above what is left of my daily total"),
    not_pending: gettext("Already decided"),
    forbidden: gettext("Not allowed"),
  };
  const list = document.getElementById("aftersale-list");
  let current = null; // the conversation on screen

  async function load() {
    if (!current || !list) return;
    const c = current.conv;
    let found = [];
    try {
      const res = await fetch(`/api/v1/aftersales?conversation_id=${encodeURIComponent(c.id)}`,
        { credentials: "same-origin" });
      if (res.ok) found = await res.json();
    } catch (err) { /* offline: show none */ }
    if (!current || current.conv.id !== c.id) return;
    list.replaceChildren(...found.map(item));
    if (!found.length) list.append(el("li", { className: "empty", text: gettext("No after-sales requests") }));
  }

  function item(a) {
    const decide = a.status === "pending" && current && current.open !== false ? decision(a) : null;
    return el("li", { className: `aftersale status-${a.status}`, dataset: { aftersale: a.id } }, [
      el("div", { className: "order-row" }, [
        el("strong", { text: aftersaleType(a.type) }),
        el("span", { text: `#${a.order_id}` }),
        el("span", { className: "order-amount", text: money(a.amount_cents) }),
      ]),
      el("span", { className: "aftersale-reason", text: a.reason }),
      el("span", { className: "aftersale-status", text: a.auto && a.status === "approved" ? gettext("Approved at once (fast refund)") : aftersaleStatus(a.status) }),
      a.decision_note ? el("span", { className: "aftersale-reason", text: a.decision_note }) : null,
      decide,
    ]);
  }

  function decision(a) {
    const note = el("input", { maxlength: "500", placeholder: gettext("Note to the buyer") });
    const error = el("p", { className: "aftersale-error", role: "alert", hidden: true });
    const send = (verb) => async () => {
      for (const b of row.querySelectorAll("button")) b.disabled = true;
      let res;
      try {
        res = await fetch(`/api/v1/aftersales/${encodeURIComponent(a.id)}/${verb}`, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", ...csrfHeader() },
          body: JSON.stringify({ note: note.value.trim() || null }),
        });
      } catch (err) { res = null; }
      if (res && res.ok) { load(); return; }
      const body = res ? await res.json().catch(() => null) : null;
      const e = (body && body.error) || {};
      error.textContent = ERRORS[e.code] || e.message || gettext("Connection lost, reconnecting…");
      error.hidden = false;
      for (const b of row.querySelectorAll("button")) b.disabled = false;
    };
    const row = el("div", { className: "aftersale-decide" }, [
      note,
      el("button", { type: "button", className: "primary aftersale-approve", text: gettext("Approve"), onclick: send("approve") }),
      el("button", { type: "button", className: "aftersale-decline", text: gettext("Decline"), onclick: send("decline") }),
    ]);
    return el("div", {}, [row, error]);
  }

  document.addEventListener("homing:active", (e) => {
    const changed = (e.detail && e.detail.conv.id) !== (current && current.conv.id);
    current = e.detail;
    if (changed) load();
  });
  document.addEventListener("homing:frame", (e) => {
    const f = e.detail;
    if (f.type === "aftersale.updated" && f.aftersale && current && f.aftersale.conversation_id === current.conv.id) load();
  });
})();
