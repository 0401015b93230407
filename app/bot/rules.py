"""The bot's decisions as pure functions over plain values: which mode applies, whether the
bot may speak, when it hands over to a human, and what an order question is answered with.

No I/O here; `app.bot.actions` loads the facts, asks these functions, and makes the
decision stick in the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

OFF = "off"
BOT_FIRST = "bot_first"
HUMAN_FIRST = "human_first"
ASSIST = "assist"
MODES = (OFF, BOT_FIRST, HUMAN_FIRST, ASSIST)
ELDERLY_QUEUE = "elderly"

DEFAULT_THRESHOLD = 0.5
# Two answers in a row below the threshold and the bot hands over (bot_first).
LOW_CONFIDENCE_LIMIT = 2

# Why a conversation went from the bot to a human (the `reason` of conversation.handed_off).
HANDOFF_REASONS = (
    "asked",  # the buyer wrote 转人工, 人工 … (the shop's hand-off words)
    "button",  # the widget's 转人工 button (frame handoff.request)
    "low_confidence",  # two answers in a row below the threshold
    "complaint",  # a complaint or anger word (the shop's list)
    "order_action",  # an order that needs a person: refund, broken, missing items
    "elder",  # the buyer switched to elder mode: elder conversations are never the bot's
)

DEFAULT_HANDOFF_WORDS = ("转人工", "人工", "找客服", "真人", "人工客服", "活人", "找人")
DEFAULT_ANGER_WORDS = (
    "投诉",
    "差评",
    "骗子",
    "垃圾",
    "举报",
    "太差",
    "生气",
    "气死",
    "12315",
    "工商",
    "什么破",
    "滚",
)
# An order question that needs a person at once.
ORDER_ACTION_WORDS = (
    "退款",
    "坏了",
    "碎了",
    "破了",
    "裂了",
    "摔碎",
    "破损",
    "少发",
    "漏发",
    "发错",
    "少了",
    "缺件",
    "没收到",
)
# An order question the bot answers from the buyer's own orders.
ORDER_STATUS_WORDS = (
    "快递到哪",
    "到哪了",
    "到哪里了",
    "物流",
    "发货了吗",
    "发货没",
    "发了吗",
    "发了没",
    "什么时候发货",
    "什么时候发",
    "啥时候发",
    "几时发货",
    "单号",
    "我的快递",
    "我的包裹",
    "我的订单",
)

# Colloquial and dialect words in their plain form, so they match the knowledge base.
_PLAIN_WORDS: tuple[tuple[str, str], ...] = (
    ("啥时候", "什么时候"),
    ("几时", "什么时候"),
    ("多会儿", "什么时候"),
    ("啥", "什么"),
    ("咋样", "怎么样"),
    ("咋", "怎么"),
    ("为啥", "为什么"),
    ("木有", "没有"),
    ("冇", "没有"),
    ("没得", "没有"),
    ("莫得", "没有"),
    ("伐", "吗"),
    ("不咯", "吗"),
    ("包不包邮", "包邮吗"),
    ("包邮不", "包邮吗"),
    ("能不能", "能"),
    ("可不可以", "可以"),
    ("有没有", "有"),
    ("是不是", "是"),
    ("滴", "的"),
    ("神马", "什么"),
    ("肿么", "怎么"),
    ("闹", "弄"),
    ("晓得", "知道"),
    ("整", "弄"),
    ("嘞", "了"),
    ("哈子", "一下"),
    ("快点", ""),
)


def normalise_words(text: str) -> str:
    """Colloquial words replaced by their plain form (text already normalised)."""
    for word, plain in _PLAIN_WORDS:
        if word in text:
            text = text.replace(word, plain)
    return text


@dataclass(frozen=True)
class BotSettingsFacts:
    mode: str = OFF
    threshold: float = DEFAULT_THRESHOLD
    queue_modes: Mapping[str, str] = field(default_factory=dict)
    handoff_words: Sequence[str] = DEFAULT_HANDOFF_WORDS
    anger_words: Sequence[str] = DEFAULT_ANGER_WORDS
    greeting: str = ""
    version: int = 0

    def mode_for(self, queue: str) -> str:
        """The queue's own mode if it has one, else the shop's."""
        return self.queue_modes.get(queue, self.mode)

    @property
    def ever_on(self) -> bool:
        return self.mode != OFF or any(m != OFF for m in self.queue_modes.values())


def is_elder_conversation(*, elder: bool, queue: str, buyer_elder: bool) -> bool:
    """Elder buyer, elder mode or the elderly queue: never the bot's (PRODUCT.md §2)."""
    return elder or buyer_elder or queue == ELDERLY_QUEUE


def bot_holds_new(settings: BotSettingsFacts, *, queue: str, elder: bool) -> bool:
    """Whether a conversation opening in `queue` starts with the bot (bot_first)."""
    return (
        not is_elder_conversation(elder=elder, queue=queue, buyer_elder=elder)
        and settings.mode_for(queue) == BOT_FIRST
    )


def human_first_covers(*, waiting: bool, agents_online: int, is_open: bool) -> bool:
    """human_first: the bot answers a conversation that waits while no agent of its queue is
    online, or while the shop is closed (`is_open` is the shop's service hours)."""
    return waiting and (agents_online == 0 or not is_open)


def _contains_any(text: str, words: Sequence[str]) -> bool:
    return any(w and w in text for w in words)


def handoff_reason(
    text: str, settings: BotSettingsFacts, *, low_streak: int, confident: bool
) -> str | None:
    """Why this buyer message (normalised) hands the conversation to a human, if it does.

    `low_streak` counts the answers below the threshold just before this one; `confident`
    says whether this one is above it.
    """
    if _contains_any(text, settings.handoff_words):
        return "asked"
    if _contains_any(text, settings.anger_words):
        return "complaint"
    if order_intent(text) == "action":
        return "order_action"
    if not confident and low_streak + 1 >= LOW_CONFIDENCE_LIMIT:
        return "low_confidence"
    return None


def order_intent(text: str) -> str | None:
    """ "action" (a person must act on an order), "status" (where is it), or None."""
    if _contains_any(text, ORDER_ACTION_WORDS):
        return "action"
    if _contains_any(text, ORDER_STATUS_WORDS):
        return "status"
    return None


@dataclass(frozen=True)
class Question:
    """A buyer's message, committed and acked, that the bot may answer."""

    shop_id: str
    conversation_id: str
    message_id: str
    buyer_id: str
    body: str


@dataclass(frozen=True)
class OrderFacts:
    order_id: str
    status: str
    created_at: datetime
    ship_by: datetime | None = None


def order_answer(orders: Sequence[OrderFacts]) -> tuple[str, dict[str, str]] | None:
    """The notice code and parameters answering "where is my order" from the buyer's latest
    order; None when they have none (the knowledge base answers instead)."""
    if not orders:
        return None
    latest = max(orders, key=lambda o: o.created_at)
    if latest.status == "shipped":
        return "bot_order_shipped", {"order_id": latest.order_id}
    if latest.status == "refunded":
        return "bot_order_refunded", {"order_id": latest.order_id}
    if latest.ship_by is not None:
        return "bot_order_ship_by", {
            "order_id": latest.order_id,
            "ship_by": latest.ship_by.date().isoformat(),
        }
    return "bot_order_paid", {"order_id": latest.order_id}


def order_body(code: str, params: Mapping[str, str]) -> str:
    """The Chinese body stored with an order answer (clients render the code)."""
    order_id = params.get("order_id", "")
    if code == "bot_order_shipped":
        return f"您的订单 {order_id} 已发货,物流信息可在订单详情中查看。"
    if code == "bot_order_refunded":
        return f"您的订单 {order_id} 已退款。"
    if code == "bot_order_ship_by":
        return f"您的订单 {order_id} 已付款,将在 {params.get('ship_by', '')} 前发货。"
    return f"您的订单 {order_id} 已付款,正在等待发货。"


FALLBACK_BODY = "抱歉,我没能理解您的问题,可以换个说法,或点击“转人工”。"
HANDOFF_BODY = "正在为您转接人工客服,请稍候。"


def is_resolved_by_bot(*, handled_by: str, status: str, rating: int | None) -> bool:
    """Closed while the bot still held it, and not rated 1-2."""
    return handled_by == "bot" and status == "closed" and (rating is None or rating >= 3)


def clean_words(words: Sequence[str], *, limit: int = 100, max_len: int = 20) -> list[str]:
    """A shop's word list as stored: trimmed, without blanks or repeats, bounded."""
    out: list[str] = []
    for w in words:
        w = w.strip()[:max_len]
        if w and w not in out:
            out.append(w)
    return out[:limit]
