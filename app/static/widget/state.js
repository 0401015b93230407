// @ts-check
/* What the widget knows (State), the elements it drew (UI), and the Widget that every
 * module's functions take: one per page. */

/**
 * The conversation on screen, with what the widget adds to it (its queue position).
 * @typedef {import("./frames.js").Conversation & {position?: number | null}} ConversationView
 */

/**
 * @typedef {object} State
 * @property {boolean} open the panel is open
 * @property {boolean} elder elder mode (长辈模式), as the server last said
 * @property {ConversationView | null} conv
 * @property {Map<number, import("./frames.js").Message>} msgs the conversation's messages by seq
 * @property {number} upto every seq up to this one is here (what a reconnect syncs after)
 * @property {Map<string, import("./frames.js").MessageSendFrame>} pending sent, not acknowledged, by client_msg_id
 * @property {number} readSent the read mark last sent
 * @property {number} unseen agent messages since the panel was last open (the badge)
 * @property {number} typingUntil the agent's typing notice shows until then (ms)
 * @property {boolean} connected
 * @property {string | null} fatal why the widget cannot work (a refused token)
 * @property {Set<string>} notices ids of notice cards shown
 * @property {boolean} optedOut no more recall offers
 * @property {Set<string>} claimed ids of recall coupons claimed
 * @property {"chat" | "groups"} tab
 * @property {ReturnType<typeof setTimeout> | null} readTimer a read mark about to be sent
 * @property {number} lastTyping when a typing frame last went out (ms)
 */

/** @returns {State} */
export function newState() {
  return {
    open: false, elder: false, conv: null, msgs: new Map(), upto: 0, pending: new Map(),
    readSent: 0, unseen: 0, typingUntil: 0, connected: false, fatal: null,
    notices: new Set(), optedOut: false, claimed: new Set(), tab: "chat",
    readTimer: null, lastTyping: 0,
  };
}

/**
 * @typedef {object} UI
 * @property {HTMLSpanElement} badge
 * @property {HTMLSpanElement} launcherText
 * @property {HTMLButtonElement} launcher
 * @property {HTMLElement} title
 * @property {HTMLSpanElement} status
 * @property {HTMLButtonElement} elder
 * @property {HTMLButtonElement} closeBtn
 * @property {HTMLDivElement} offline
 * @property {HTMLOListElement} messages
 * @property {HTMLDivElement} typing
 * @property {HTMLDivElement} productBar
 * @property {HTMLButtonElement} [productSend]
 * @property {HTMLTextAreaElement} input
 * @property {HTMLButtonElement} send
 * @property {HTMLInputElement} file
 * @property {HTMLButtonElement} photo
 * @property {HTMLFormElement} composer
 * @property {HTMLButtonElement} chatTab
 * @property {HTMLButtonElement} groupsTab
 * @property {HTMLDivElement} chatPane
 * @property {HTMLDivElement} groupsPane
 * @property {HTMLElement} panel
 */

/**
 * @typedef {object} Widget
 * @property {import("./config.js").Config} config
 * @property {import("./shared.js").HomingShared} H
 * @property {State} state
 * @property {HTMLDivElement} host the element in the shop's page (holds the shadow root)
 * @property {UI} ui
 * @property {(key: string, vars?: Record<string, string | number>) => string} w the words of the moment
 * @property {import("./api.js").Api} api
 * @property {import("./shared.js").HomingSocket} socket
 * @property {import("./groups.js").GroupsPane | null} groups
 */

export {};
