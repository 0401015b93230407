/* Homing client pieces shared by the workbench and the storefront widget:
 * a WebSocket that reconnects with back-off, message cards built from text nodes
 * (never innerHTML with data), client message ids and small formatters. */
(function () {
  "use strict";
  if (window.Homing) return;

  const CLOSE_UNAUTHORIZED = 4401;
  // Back-off between reconnect attempts; jittered so a restarted server is not stampeded.
  const DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15000];
  // The server allows 10 frames a second per socket; stay under it and queue the rest.
  const FRAMES_PER_SECOND = 8;

  /* One socket that comes back by itself. Handlers: onFrame(frame), onUp(), onDown(),
   * onUnauthorized(). The owner sends `sync` for what it missed when hello arrives. */
  class Socket {
    constructor(url, handlers) {
      this.url = url;
      this.h = handlers;
      this.ws = null;
      this.attempt = 0;
      this.timer = null;
      this.stopped = false;
      this.up = false;
      this.outbox = []; // serialized frames waiting for room under the rate limit
      this.stamps = []; // when the frames of the last second went out
      this.flushTimer = null;
      window.addEventListener("online", () => this.retryNow());
    }

    start() {
      this.stopped = false;
      this.open();
    }

    open() {
      this.timer = null;
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (err) {
        this.scheduleRetry();
        return;
      }
      this.ws = ws;
      ws.onopen = () => {
        this.up = true;
        if (this.h.onUp) this.h.onUp();
      };
      ws.onmessage = (event) => {
        this.attempt = 0; // a frame arrived: the server is really there
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        this.h.onFrame(frame);
      };
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.up = false;
        // Unsent frames are dropped: owners resend what matters (messages) after hello.
        this.outbox = [];
        if (this.stopped) return;
        if (event.code === CLOSE_UNAUTHORIZED) {
          this.stopped = true;
          if (this.h.onUnauthorized) this.h.onUnauthorized();
          return;
        }
        if (this.h.onDown) this.h.onDown();
        this.scheduleRetry();
      };
    }

    scheduleRetry() {
      const base = DELAYS_MS[Math.min(this.attempt, DELAYS_MS.length - 1)];
      this.attempt += 1;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.open(), base * (0.8 + Math.random() * 0.4));
    }

    retryNow() {
      if (this.stopped || this.ws) return;
      clearTimeout(this.timer);
      this.open();
    }

    /* Send now, or soon if the last second's budget is spent; false when not connected. */
    send(frame) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      this.outbox.push(JSON.stringify(frame));
      this.flush();
      return true;
    }

    flush() {
      const now = performance.now();
      this.stamps = this.stamps.filter((t) => now - t < 1000);
      while (this.outbox.length && this.stamps.length < FRAMES_PER_SECOND && this.ws) {
        this.ws.send(this.outbox.shift());
        this.stamps.push(now);
      }
      if (this.outbox.length && !this.flushTimer) {
        const wait = 1000 - (now - this.stamps[0]) + 20;
        this.flushTimer = setTimeout(() => {
          this.flushTimer = null;
          this.flush();
        }, Math.max(20, wait));
      }
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.ws) this.ws.close(1000);
      this.ws = null;
    }
  }

  /* A client message id: random, and available outside secure contexts too. */
  function newClientId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /* document.createElement with properties and children; strings become text nodes. */
  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === "className") node.className = value;
        else if (key === "text") node.textContent = value;
        else if (key === "dataset") Object.assign(node.dataset, value);
        else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : value);
      }
    }
    for (const child of [].concat(children || [])) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function money(cents) {
    if (typeof cents !== "number") return "";
    return "¥" + (cents / 100).toFixed(2);
  }

  // ---- translations ----------------------------------------------------------------------
  /* The page's catalog: a flat {msgid: msgstr} from /static/locale/<domain>.<lang>.json (the
   * workbench gets it in its boot data, the widget fetches it). msgids are the English text;
   * Babel extracts the gettext / ngettext calls of these scripts into app/locale/. */
  let catalog = {};

  function setCatalog(found) {
    catalog = found && typeof found === "object" ? found : {};
  }

  function gettext(msgid) {
    const found = catalog[msgid];
    return typeof found === "string" && found ? found : msgid;
  }

  /* Plural forms: the catalog maps the singular msgid to the list of forms
   * (Chinese has one form, English two). */
  function ngettext(singular, plural, n) {
    const forms = catalog[singular];
    if (Array.isArray(forms) && forms.length) return forms[Math.min(n === 1 ? 0 : 1, forms.length - 1)];
    return n === 1 ? singular : plural;
  }

  /* "%(name)s" placeholders, as in the Python catalogs. */
  function format(text, params) {
    return text.replace(/%\(([A-Za-z0-9_]+)\)s/g, (whole, name) =>
      params && Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole);
  }

  /* Why a payout was made, as a buyer reads it. */
  function reasonLabel(code) {
    const labels = {
      late_shipment: gettext("late shipment"),
      damaged: gettext("damaged item"),
      price_protection: gettext("price protection"),
      shipping_fee: gettext("shipping fee"),
      goodwill: gettext("goodwill"),
    };
    return labels[code] || code || "";
  }

  /* An after-sales request's type and status, as a reader reads them. */
  function aftersaleType(code) {
    const labels = {
      refund_only: gettext("Refund only"),
      return_refund: gettext("Return and refund"),
      exchange: gettext("Exchange"),
      damaged: gettext("Arrived damaged"),
      price_protection: gettext("Price protection"),
    };
    return labels[code] || code || "";
  }

  function aftersaleStatus(code) {
    const labels = {
      pending: gettext("Waiting for the shop"),
      approved: gettext("Approved"),
      declined: gettext("Declined"),
      completed: gettext("Completed"),
    };
    return labels[code] || code || "";
  }

  /* A system notice from its code and parameters (payload.notice / payload.params, see
   * docs/protocol-notes.md); null for a code this script does not know (the stored body then). */
  function noticeText(code, params) {
    const p = params || {};
    switch (code) {
      case "csat_invite":
        return gettext("This chat has ended. Please rate our service (1 to 5 stars).");
      case "transferred_to_agent":
        return p.note
          ? format(gettext("Transferred to %(agent)s: %(note)s"), p)
          : format(gettext("Transferred to %(agent)s"), p);
      case "transferred_to_queue":
        return p.note
          ? format(gettext("Transferred to the %(queue)s queue: %(note)s"), p)
          : format(gettext("Transferred to the %(queue)s queue"), p);
      case "giveaway_sold_out":
        return format(gettext("The giveaway %(title)s has run out"), p);
      case "care_stalled":
        return format(gettext("Your order %(order_id)s has had no tracking news for a while. We are chasing the carrier for you."), p);
      case "care_stalled_coupon":
        return format(gettext("Your order %(order_id)s has had no tracking news for a while. We are chasing the carrier, and here is a %(amount)s coupon for the wait."), p);
      case "care_visit":
        return format(gettext("Your order %(order_id)s arrived a few days ago. How are the goods, and how was our service?"), p);
      case "care_apology":
        return format(gettext("Your order %(order_id)s has been refunded. We are sorry for the trouble."), p);
      case "abuse_warning":
        return gettext("Please keep the conversation civil. If the abuse goes on, the agent may end this chat.");
      default:
        return null;
    }
  }

  /* A message's words in the reader's language: notices and the cards the shop's system
   * sends are rendered from their payload; what a person wrote is shown as written. */
  function messageText(msg) {
    const p = msg.payload || {};
    if (p.notice) {
      const text = noticeText(p.notice, p.params);
      if (text !== null) return text;
    }
    if (msg.kind === "compensation_card" && p.amount_cents !== undefined) {
      return format(gettext("We have compensated you %(amount)s (%(reason)s)"),
        { amount: money(p.amount_cents), reason: reasonLabel(p.reason) });
    }
    const c = p.coupon || {};
    if (msg.kind === "coupon_card" && c.reason === "late_shipment") {
      return format(gettext("Sorry, your order %(order_id)s did not ship on time. Here is a %(amount)s coupon with no minimum spend (late shipment)."),
        { order_id: c.order_id || "", amount: money(c.amount_cents) });
    }
    return msg.body || "";
  }

  /* A coupon's title: a late-shipment coupon's from its amount; a merchant's as written. */
  function couponTitle(c) {
    if (c.reason === "late_shipment") {
      return format(gettext("Late-shipment coupon: %(amount)s, no minimum spend"), { amount: money(c.amount_cents) });
    }
    return c.title || "";
  }

  /* The visible body of a message: text, or a card for the card kinds. `imageUrl(upload_id)`
   * says where this page loads an uploaded image from (credentials differ per page). */
  function messageContent(msg, lang, imageUrl) {
    const p = msg.payload || {};
    const text = messageText(msg);
    const caption = text ? el("p", { className: "card-caption", text }) : null;
    switch (msg.kind) {
      case "product_card":
        return el("div", { className: "card card-product" }, [
          el("span", { className: "card-label", text: gettext("Product") }),
          el("strong", { className: "card-title", text: p.title || p.product_id || "" }),
          el("span", { className: "card-price", text: money(p.price_cents) }),
          p.category ? el("span", { className: "card-sub", text: p.category }) : null,
          caption,
        ]);
      case "order_card":
        return el("div", { className: "card card-order" }, [
          el("span", { className: "card-label", text: gettext("Order") }),
          el("strong", { className: "card-title", text: "#" + (p.order_id || "") }),
          caption,
        ]);
      case "coupon_card": {
        const c = p.coupon || {};
        const rule = c.min_spend_cents
          ? format(gettext("on orders over %(amount)s"), { amount: money(c.min_spend_cents) })
          : gettext("no minimum");
        return el("div", { className: "card card-coupon" }, [
          el("span", { className: "card-label", text: gettext("Coupon") }),
          el("strong", { className: "card-price", text: money(c.amount_cents) }),
          el("span", { className: "card-title", text: couponTitle(c) }),
          el("span", { className: "card-sub", text: rule }),
          caption,
        ]);
      }
      case "aftersale_card":
        return el("div", { className: `card card-aftersale status-${p.status || ""}` }, [
          el("span", { className: "card-label", text: gettext("After-sales") }),
          el("strong", { className: "card-title", text: aftersaleType(p.type) }),
          p.amount_cents ? el("span", { className: "card-price", text: money(p.amount_cents) }) : null,
          el("span", { className: "card-sub", text: "#" + (p.order_id || "") }),
          el("span", { className: "card-status", text: p.auto && p.status === "approved" ? gettext("Approved at once (fast refund)") : aftersaleStatus(p.status) }),
          p.note ? el("span", { className: "card-note", text: p.note }) : null,
        ]);
      case "care_card":
        return el("div", { className: "card card-care" }, [
          el("span", { className: "card-label", text: gettext("From the shop") }),
          caption,
        ]);
      case "compensation_card":
        return el("div", { className: "card card-compensation" }, [
          el("span", { className: "card-label", text: gettext("Compensation") }),
          el("strong", { className: "card-price", text: money(p.amount_cents) }),
          el("span", { className: "card-sub", text: reasonLabel(p.reason) }),
          caption,
        ]);
      case "image": {
        const src = p.upload_id && imageUrl ? imageUrl(p.upload_id) : null;
        return el("div", { className: "card card-image" }, [
          src
            ? el("a", { href: src, target: "_blank", rel: "noopener" },
              el("img", { className: "chat-image", src, alt: gettext("Image"), loading: "lazy" }))
            : el("span", { className: "card-label", text: `[${gettext("Image")}]` }),
          caption,
        ]);
      }
      default:
        return el("p", { className: "text", text });
    }
  }

  /* Where a message with `seq` goes among children that carry data-seq (unsent ones last). */
  function insertBySeq(list, node, seq) {
    for (const child of list.children) {
      const s = child.dataset.seq ? Number(child.dataset.seq) : Infinity;
      if (s > seq) {
        list.insertBefore(node, child);
        return;
      }
    }
    list.append(node);
  }

  function clockTime(iso) {
    const d = iso ? new Date(iso) : new Date();
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  /* "1:05" or "12:30:00" style elapsed time since an ISO instant. */
  function elapsed(iso, now) {
    const secs = Math.max(0, Math.floor(((now || Date.now()) - Date.parse(iso)) / 1000));
    const h = Math.floor(secs / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const s = String(secs % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  /* The session's CSRF token as a header, for a page's own state-changing requests that go
   * by the session cookie (the server refuses them without it). The widget needs none:
   * it sends its buyer token in Authorization. */
  function csrfHeader() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? { "X-CSRF-Token": meta.content } : {};
  }

  window.Homing = {
    Socket, newClientId, el, money, messageContent, messageText, insertBySeq, clockTime, elapsed, csrfHeader,
    setCatalog, gettext, ngettext, format, aftersaleType, aftersaleStatus,
  };
})();
