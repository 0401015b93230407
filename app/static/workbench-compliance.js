/* The composer's compliance warning (违规词): as the agent types, the server checks the
 * draft against the platform's and the shop's rules (POST /api/v1/compliance/check, the
 * same code that screens the message when it is sent; no copy of the rules here) and this
 * says why a reply would be refused or flagged before it is sent. Also: a buyer who keeps
 * abusing the agent may have the chat ended for abuse. */
(function () {
  "use strict";
  const { gettext, format, csrfHeader } = window.Homing;
  const $ = (id) => document.getElementById(id);
  const input = $("composer-input");
  const warning = $("compliance-warning");
  const abuseBar = $("abuse-bar");
  const abuseText = $("abuse-text");
  const endAbuse = $("end-abuse");
  const DEBOUNCE_MS = 250;
  const RULES = {
    phone_number: gettext("a phone number"),
    wechat_id: gettext("a WeChat id"),
    qq_id: gettext("a QQ number"),
    payment_link: gettext("a payment link"),
    outside_link: gettext("a link outside the shop"),
    contact_word: gettext("asking to connect outside the platform"),
    forbidden_promise: gettext("a forbidden promise"),
    abuse: gettext("abusive words"),
    shop: gettext("a word the shop does not allow"),
  };
  let timer = 0;
  let asked = 0; // the latest check; older answers are dropped

  /* Say what the rules found in the draft (`hits`: the check's, blocks first), or nothing. */
  function show(hits) {
    if (!hits || !hits.length) {
      warning.hidden = true;
      warning.textContent = "";
      return;
    }
    const blocked = hits.some((h) => h.action === "block");
    const found = hits.map((h) => format(gettext("%(rule)s (%(matched)s)"),
      { rule: RULES[h.rule] || h.rule, matched: h.matched })).join(" · ");
    warning.textContent = blocked
      ? format(gettext("This reply would not be sent: it contains %(found)s."), { found })
      : format(gettext("This reply will be sent but recorded for review: it contains %(found)s."), { found });
    warning.dataset.action = blocked ? "block" : "flag";
    warning.dataset.rule = hits[0].rule;
    warning.hidden = false;
  }

  async function check() {
    const body = input.value;
    const n = ++asked;
    if (!body.trim()) { show(null); return; }
    let res;
    try {
      res = await fetch("/api/v1/compliance/check", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", ...csrfHeader() },
        body: JSON.stringify({ body }),
      });
    } catch { return; } // offline: the server still screens the reply when it is sent
    if (!res.ok || n !== asked) return;
    const verdict = await res.json();
    const order = (h) => (h.action === "block" ? 0 : 1);
    show([...verdict.hits].sort((a, b) => order(a) - order(b)));
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(check, DEBOUNCE_MS);
  });

  document.addEventListener("homing:frame", (e) => {
    const f = e.detail;
    if (f.type === "error" && f.code === "compliance_blocked") {
      show([{ rule: f.rule, action: "block", matched: f.matched }]);
    } else if (f.type === "message.ack" && !input.value) {
      show(null);
    } else if (f.type === "conversation.abuse" && f.may_end) {
      abuseText.textContent = format(gettext("The buyer %(buyer)s has been abusive %(count)s times after a warning. You may end the chat."),
        { buyer: f.buyer_id, count: f.count });
      endAbuse.dataset.conversation = f.conversation_id;
      abuseBar.hidden = false;
    } else if (f.type === "conversation.closed" && f.conversation_id === endAbuse.dataset.conversation) {
      abuseBar.hidden = true;
    }
  });

  endAbuse.addEventListener("click", () => {
    const id = endAbuse.dataset.conversation;
    if (id) document.dispatchEvent(new CustomEvent("homing:send", { detail: { type: "conversation.close", conversation_id: id, reason: "abuse" } }));
  });
})();
