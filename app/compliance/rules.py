"""Compliance (违规词) as pure functions: normalising text, the platform's default rules,
and matching a message against them and a shop's own list in one pass.

Nothing here touches the database or the clock. A `Matcher` is built once per shop and
rules version (`cache.py`) and then only reads: one Aho-Corasick automaton over the
folded words (the platform's and the shop's, however many), plus a few compiled patterns
for what a word list cannot catch (phone numbers, WeChat/QQ ids, links).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

BLOCK, FLAG = "block", "flag"
ACTIONS = (BLOCK, FLAG)
CATEGORIES = ("contact", "promise", "abuse", "custom")
MAX_SHOP_RULES = 2000
MAX_WORD_CHARS = 50

# Letters that look like Latin ones (Cyrillic and Greek), read as those.
_HOMOGLYPHS = str.maketrans(
    "авеёкмнорстхуіјѕԁɡαβεικνορτυχω",
    "abeekmhopctxyijsdgabeikvoptuxw",
)
# Chinese numerals as a phone number is read out (幺 is 1, 两 is 2).
_CN_DIGITS = str.maketrans("零〇一二三四五六七八九壹贰叁肆伍陆柒捌玖幺两", "0012345678912345678912")
# In a run of digits, letters that stand for digits (O for 0, l and I for 1).
_DIGIT_LOOKALIKES = str.maketrans("oli", "011")
_SEPARATORS = re.compile(r"[\W_]+")
_DIGITISH_RUN = re.compile(r"[0-9oli]*[0-9][0-9oli]*")


def fold(text: str) -> str:
    """The text as rules see it: NFKC (full-width letters and digits), case-folded,
    look-alike letters read as Latin, then every space, punctuation mark and symbol
    dropped, so "加 微-信", "ＶＸ" and "V.X" read "加微信", "vx", "vx"."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_HOMOGLYPHS)
    return _SEPARATORS.sub("", folded)


def digits_read(folded: str) -> str:
    """A folded text with numbers read as a phone number would be: Chinese numerals as
    digits, and O / l / I among digits as 0 / 1 ("一三八 0O1 3800" reads 13800138000)."""
    text = folded.translate(_CN_DIGITS)
    return _DIGITISH_RUN.sub(lambda m: m.group().translate(_DIGIT_LOOKALIKES), text)


def loose(text: str) -> str:
    """NFKC, case-folded, look-alikes read as Latin, spaces kept: where links are found."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_HOMOGLYPHS)


@dataclass(frozen=True)
class Rule:
    """A rule as the shop or the platform states it: a word (matched folded) or a pattern."""

    code: str  # a platform rule's code, or "shop" for the shop's own words
    category: str
    action: str
    word: str = ""


@dataclass(frozen=True)
class Hit:
    code: str
    category: str
    action: str
    matched: str  # what matched, as the rules read it (folded, digits read)


@dataclass(frozen=True)
class Verdict:
    hits: tuple[Hit, ...] = ()

    @property
    def blocked(self) -> Hit | None:
        return next((h for h in self.hits if h.action == BLOCK), None)

    @property
    def flagged(self) -> Hit | None:
        return next((h for h in self.hits if h.action == FLAG), None)

    @property
    def first(self) -> Hit | None:
        """What decides: a block before any flag."""
        return self.blocked or self.flagged

    def of(self, category: str) -> Hit | None:
        return next((h for h in self.hits if h.category == category), None)


CLEAN = Verdict()

# The platform's words, kept whatever a shop sets (codes name them in error frames).
DEFAULT_WORDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "contact_word",
        "contact",
        BLOCK,
        (
            "加微信",
            "加我微信",
            "加个微信",
            "加v",
            "加vx",
            "加wx",
            "vx",
            "威信",
            "薇信",
            "加qq",
            "加扣扣",
            "私聊我",
            "加我好友",
            "微信联系",
            "电话联系我",
        ),
    ),
    (
        "forbidden_promise",
        "promise",
        BLOCK,
        (
            "好评返现",
            "返现好评",
            "好评返",
            "晒图返现",
            "五星返现",
            "私下交易",
            "私下转账",
            "线下交易",
            "绕过平台",
            "不走平台",
        ),
    ),
    (
        "abuse",
        "abuse",
        BLOCK,
        (
            "傻逼",
            "煞笔",
            "傻b",
            "沙比",
            "滚蛋",
            "去死",
            "他妈的",
            "你妈",
            "操你",
            "蠢货",
            "白痴",
            "智障",
            "脑残",
            "神经病",
            "fuck",
            "idiot",
            "stupid",
        ),
    ),
)

# What no word list catches, matched on `digits_read` (numbers) or `loose` (links) text.
# Mobile numbers: 11 digits from 13-19, optionally after 86, not inside a longer number
# (an order number is not a phone number).
PHONE = re.compile(r"(?<![0-9])(?:86)?1[3-9][0-9]{9}(?![0-9])")
WECHAT_ID = re.compile(r"(?:微信|weixin|wechat|vx|wx|v信)(?:号|id)?(?:是|为)?([a-z][a-z0-9]{5,19})")
QQ_ID = re.compile(r"(?:qq|扣扣)(?:号)?(?:是|为)?([1-9][0-9]{4,11})")
LINK = re.compile(
    r"(?:https?://|www\.)[^\s]+|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|cn|net|top|xyz|shop|vip|cc|link|me)(?:/[^\s]*)?"
)
PAYMENT_WORDS = ("pay", "alipay", "wxp:", "收款", "付款码", "收钱")

DEFAULT_PATTERNS: tuple[Rule, ...] = (
    Rule("phone_number", "contact", BLOCK),
    Rule("wechat_id", "contact", BLOCK),
    Rule("qq_id", "contact", BLOCK),
    Rule("payment_link", "contact", BLOCK),
    Rule("outside_link", "contact", FLAG),
)


def default_rules() -> list[Rule]:
    """Every platform rule, for the rules page and the API (patterns first)."""
    words = [Rule(code, cat, act, w) for code, cat, act, ws in DEFAULT_WORDS for w in ws]
    return [*DEFAULT_PATTERNS, *words]


def check_shop_word(word: str, action: str, category: str) -> str | None:
    """Why a shop's rule cannot be stored (a message code), or None if it can."""
    if action not in ACTIONS:
        return "bad_action"
    if category not in CATEGORIES:
        return "bad_category"
    folded = fold(word)
    if not folded or len(word.strip()) > MAX_WORD_CHARS:
        return "bad_word"
    return None


class Matcher:
    """A shop's rules compiled: `check(text)` costs one automaton pass and a few regexes."""

    def __init__(self, shop_rules: Iterable[Rule] = ()) -> None:
        by_word: dict[str, Rule] = {}
        for code, category, action, words in DEFAULT_WORDS:
            for w in words:
                by_word[fold(w)] = Rule(code, category, action, w)
        for r in shop_rules:
            key = fold(r.word)
            if not key:
                continue
            kept = by_word.get(key)
            # The stricter wins when a shop repeats a word (a platform word stays as it is).
            if kept is None or (kept.code == "shop" and r.action == BLOCK):
                by_word[key] = r
        self.size = len(by_word)
        self._automaton = ahocorasick.Automaton()
        for key, rule in by_word.items():
            self._automaton.add_word(key, (key, rule))
        self._automaton.make_automaton()

    def check(self, text: str) -> Verdict:
        """Every rule the text breaks, in the order found (a block decides over a flag)."""
        folded = fold(text)
        hits: list[Hit] = []
        seen: set[str] = set()
        for _end, (key, rule) in self._automaton.iter(folded):
            if key not in seen:
                seen.add(key)
                hits.append(Hit(rule.code, rule.category, rule.action, key))
        if len(hits) > 1:  # "好评返" inside "好评返现": name the longer
            hits = [
                h
                for h in hits
                if not any(h.matched != o.matched and h.matched in o.matched for o in hits)
            ]
        numbers = digits_read(folded)
        for rule, pattern in (
            (DEFAULT_PATTERNS[0], PHONE),
            (DEFAULT_PATTERNS[1], WECHAT_ID),
            (DEFAULT_PATTERNS[2], QQ_ID),
        ):
            m = pattern.search(numbers if rule.code != "wechat_id" else folded)
            if m is not None:
                hits.append(Hit(rule.code, rule.category, rule.action, m.group()))
        if "." in text or "/" in text or "．" in text or "。" in text:
            for m in LINK.finditer(loose(text)):
                link = m.group()
                paying = any(w in link for w in PAYMENT_WORDS)
                rule = DEFAULT_PATTERNS[3] if paying else DEFAULT_PATTERNS[4]
                hits.append(Hit(rule.code, rule.category, rule.action, link))
                break
        return Verdict(tuple(hits)) if hits else CLEAN


# ---- buyers who abuse agents ---------------------------------------------------------

# The buyer's first abusive message earns one warning; from the second on the agent may
# end the conversation with reason `abuse` (and the supervisors are told).
ABUSE_WARN_AT = 1
ABUSE_END_AT = 2


def abuse_step(count: int) -> str | None:
    """What the `count`-th abusive message of a buyer in one conversation calls for:
    "warn" (once), "may_end" (each time from ABUSE_END_AT on), or None."""
    if count == ABUSE_WARN_AT:
        return "warn"
    if count >= ABUSE_END_AT:
        return "may_end"
    return None


def may_end_for_abuse(count: int) -> bool:
    return count >= ABUSE_END_AT
