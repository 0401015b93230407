// @ts-check
/* Every word the widget puts on screen, as gettext calls against the widget's catalog
 * (app/locale/<lang>/LC_MESSAGES/widget.po, served as /static/locale/widget.<lang>.json;
 * main.js loads it before the widget mounts): the chat (words), the same screens in fewer,
 * simpler words for elder mode (elderWords, falling back to words), and the fan-group pane
 * (groupWords). msgids are the English text; `%(name)s` placeholders. */

/** @typedef {"zh" | "en"} Lang */
/** @typedef {Record<string, string>} Table */

/** The catalog of each widget language (`data-lang`). */
export const LOCALES = { zh: "zh_CN", en: "en" };

/** @type {{gettext: (msgid: string) => string, format: (text: string, params?: Record<string, any>) => string} | null} */
let shared = null;

/**
 * Translate with homing.js's catalog (Homing.setCatalog), once it is loaded.
 * @param {{gettext: (msgid: string) => string, format: (text: string, params?: Record<string, any>) => string}} homing
 */
export function useTranslations(homing) {
  shared = homing;
  tables = null;
}

/**
 * @param {string} msgid the English text, as Babel extracts it
 * @returns {string}
 */
function gettext(msgid) {
  return shared ? shared.gettext(msgid) : msgid;
}

/** @type {{words: Table, elder: Table, groups: Table} | null} */
let tables = null;

function build() {
  const words = {
    launcher: gettext("Chat with us"),
    title: gettext("Customer service"),
    close: gettext("Close"),
    elderOn: gettext("Easy mode"),
    elderOff: gettext("Leave easy mode"),
    hello: gettext("Hello! How can we help?"),
    connecting: gettext("Finding an agent for you…"),
    queued: gettext("In the queue: you are number %(n)s"),
    assigned: gettext("%(name)s is helping you"),
    closed: gettext("This chat has ended; send a message to start again"),
    offline: gettext("Connection lost, reconnecting…"),
    placeholder: gettext("Type a message; Enter sends"),
    send: gettext("Send"),
    sendProduct: gettext("Send product"),
    browsing: gettext("You are viewing"),
    typing: gettext("Agent is typing…"),
    read: gettext("Read"),
    unread: gettext("Unread"),
    sending: gettext("Sending…"),
    failed: gettext("Not sent"),
    badToken: gettext("Could not verify you; please reload the page"),
    newConversation: gettext("New conversation"),
    rate: gettext("Rate this chat"),
    stars: gettext("%(n)s stars"),
    thanks: gettext("Thank you for your rating!"),
    claim: gettext("Claim"),
    claiming: gettext("Claiming…"),
    claimed: gettext("Claimed"),
    optOut: gettext("No more offers"),
    optedOut: gettext("Unsubscribed: no more offers from this shop"),
    autoIssued: gettext("Already in your account"),
    actionFailed: gettext("That did not work: %(reason)s"),
    photo: gettext("Send a photo"),
    uploading: gettext("Uploading the photo…"),
    chatTab: gettext("Chat"),
    groupsTab: gettext("Fan groups"),
    afterSales: gettext("After-sales"),
    priceProtect: gettext("Claim the price drop: %(amount)s"),
    priceProtectReason: gettext("The price dropped after I paid"),
    addPhoto: gettext("Add a photo"),
    photos: gettext("%(n)s photos added"),
    submitAfterSales: gettext("Submit"),
    cancel: gettext("Cancel"),
    reason: gettext("Reason"),
    amount: gettext("Amount (yuan)"),
    leftOnOrder: gettext("Up to %(amount)s is left on this order"),
    badAmount: gettext("Enter an amount in yuan"),
    tracking: gettext("Tracking: %(line)s"),
    goods: gettext("Goods"),
    service: gettext("Service"),
    away: gettext("Our agents are away right now. Leave a message and we will reply as soon as we are back"),
    awayOpens: gettext("(we open at %(t)s)"),
    botBadge: gettext("Smart assistant"),
    handoff: gettext("Talk to a person"),
    helpful: gettext("Helpful"),
    notHelpful: gettext("Not helpful"),
    feedbackThanks: gettext("Thanks for the feedback"),
    botHolds: gettext("The smart assistant is answering you"),
  };
  // 长辈模式: the same screens in fewer, simpler words.
  const elder = {
    hello: gettext("Hello, just type your question"),
    connecting: gettext("Finding someone to help, please wait"),
    queued: gettext("Please wait: you are number %(n)s"),
    assigned: gettext("%(name)s is here to help"),
    closed: gettext("The chat has ended. Type again any time"),
    placeholder: gettext("Type here"),
    typing: gettext("Typing…"),
    offline: gettext("No connection, trying again…"),
    rate: gettext("How did we do?"),
    optOut: gettext("Stop sending me offers"),
    optedOut: gettext("OK, no more offers"),
    groupsTab: gettext("Groups"),
  };
  // The fan-group pane (粉丝群).
  const groups = {
    groups: gettext("Fan groups"),
    none: gettext("This shop has no fan groups yet"),
    join: gettext("Join"),
    enter: gettext("Open"),
    removed: gettext("Removed"),
    members: gettext("%(n)s members"),
    back: gettext("All groups"),
    checkin: gettext("Check in"),
    checkedIn: gettext("Checked in · %(n)s-day streak"),
    placeholder: gettext("Say something to the group"),
    send: gettext("Send"),
    sending: gettext("Sending…"),
    failed: gettext("Not sent"),
    giveaway: gettext("Giveaway"),
    giveawayLeft: gettext("%(q)s in total"),
    claim: gettext("Claim"),
    claimed: gettext("Claimed"),
    soldOut: gettext("All gone"),
    alreadyClaimed: gettext("You already claimed it"),
    mutedMe: gettext("You are muted until %(t)s"),
    mutedAll: gettext("The group is muted until %(t)s"),
    removedNote: gettext("You were removed from this group"),
    shop: gettext("Shop"),
    member: gettext("Member %(id)s"),
    me: gettext("Me"),
    loading: gettext("Loading…"),
    failedAction: gettext("That did not work: %(reason)s"),
  };
  return { words, elder, groups };
}

/** @returns {{words: Table, elder: Table, groups: Table}} */
export function wordTables() {
  if (!tables) tables = build();
  return tables;
}

/**
 * A table's text with `%(name)s` placeholders filled in.
 * @param {string} text
 * @param {Record<string, string | number>} [vars]
 * @returns {string}
 */
export function fill(text, vars) {
  return shared ? shared.format(text, vars) : text;
}
