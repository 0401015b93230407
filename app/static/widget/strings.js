// @ts-check
/* Every word the widget puts on screen, per language: the chat (WORDS), the same screens
 * in fewer, simpler words for elder mode (ELDER_WORDS, falling back to WORDS), and the
 * fan-group pane (GROUP_WORDS). One module, so the strings can move to catalogs in one step. */

/** @typedef {"zh" | "en"} Lang */
/** @typedef {Record<string, string>} Table */

/** @type {Record<Lang, Table>} */
export const WORDS = {
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

/* 长辈模式: the same screens in fewer, simpler words. */
/** @type {Record<Lang, Table>} */
export const ELDER_WORDS = {
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

/* The fan-group pane (粉丝群). */
/** @type {Record<Lang, Table>} */
export const GROUP_WORDS = {
  zh: {
    groups: "粉丝群", none: "本店还没有粉丝群", join: "加入", enter: "进入", removed: "已被移出",
    members: "{n} 人", back: "全部群", checkin: "签到", checkedIn: "已签到 · 连续 {n} 天",
    placeholder: "和群友聊聊", send: "发送", sending: "发送中…", failed: "发送失败",
    giveaway: "群福利", giveawayLeft: "共 {q} 份", claim: "领取", claimed: "已领取",
    soldOut: "已抢完", alreadyClaimed: "您已领过", mutedMe: "您被禁言到 {t}", mutedAll: "全员禁言中,到 {t}",
    removedNote: "您已被移出这个群", shop: "店铺", member: "群友 {id}", me: "我", loading: "加载中…",
    failedAction: "没有成功:{reason}",
  },
  en: {
    groups: "Fan groups", none: "This shop has no fan groups yet", join: "Join", enter: "Open",
    removed: "Removed", members: "{n} members", back: "All groups", checkin: "Check in",
    checkedIn: "Checked in · {n}-day streak", placeholder: "Say something to the group", send: "Send",
    sending: "Sending…", failed: "Not sent", giveaway: "Giveaway", giveawayLeft: "{q} in total",
    claim: "Claim", claimed: "Claimed", soldOut: "All gone", alreadyClaimed: "You already claimed it",
    mutedMe: "You are muted until {t}", mutedAll: "The group is muted until {t}",
    removedNote: "You were removed from this group", shop: "Shop", member: "Member {id}", me: "Me",
    loading: "Loading…", failedAction: "That did not work: {reason}",
  },
};

/**
 * A table's text with `{name}` placeholders filled in.
 * @param {string} text
 * @param {Record<string, string | number>} [vars]
 * @returns {string}
 */
export function fill(text, vars) {
  for (const [k, v] of Object.entries(vars || {})) text = text.replace(`{${k}}`, String(v));
  return text;
}
