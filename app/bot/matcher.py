"""The knowledge-base matcher: Chinese segmentation, BM25 and near-exact matching, in process.

No I/O and no model download: jieba segments with the dictionary bundled in its wheel,
hanziconv maps traditional characters to simplified with its bundled table, pypinyin
spells a candidate as it sounds (bundled table: homophone typos), bm25s ranks over sparse
matrices and rapidfuzz scores near-exact strings in C.

jieba loads its dictionary once per process, lazily, on the first segmentation (about
0.6 s and 40 MB the first time on the development machine; it keeps a cache file in the
temporary directory, which later processes load in about 0.5 s). `warm_up()` does it
ahead of a first buyer's question.

A match's `score` is a confidence from 0 to 1 (the shop's threshold applies to it): the
best of the idf-weighted overlap of the two token sets (Dice), the character-level
similarity of the two normalised strings, and (a little less) that of their pinyin. BM25 and the near-exact scan only choose the
candidates, so the score means the same with 40 entries or 10,000.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from rapidfuzz import fuzz

from app.bot.rules import normalise_words

# Words that carry no meaning for matching a shop's question (particles, politeness).
_STOP_TEXT = (
    "的 了 吗 呢 吧 啊 呀 哦 嘛 哈 么 是 在 我 你 您 他 她 它 们 我们 你们 请问 问下 问一下 "
    "一下 亲 亲亲 老板 客服 掌柜 店家 谢谢 麻烦 想 要 能 会 可以 这个 那个 这 那 个 有 "
    "和 与 就 都 也 还 又 给 把 被 让 对 吗吗 啦 咯 嗯 噢 喔 哟 呐 哇 滴 得 地 一 下 "
    "请 帮 帮我 看看 看 知道 告诉 说 问"
)
STOPWORDS = frozenset(_STOP_TEXT.split())
# A typo in Chinese is mostly a homophone (保邮 for 包邮, 顺风 for 顺丰): two strings that
# sound the same score this much of their pinyin similarity.
PINYIN_WEIGHT = 0.9
# How much a question's share of words unknown to the knowledge base lowers its score.
UNKNOWN_PENALTY = 0.2
# Candidates taken from each ranker before scoring.
BM25_CANDIDATES = 12
FUZZY_CANDIDATES = 8
# Questions whose matches an index remembers (`Index.match_memo`), per version.
MEMO_SIZE = 4096
_NOT_WORD = re.compile(r"[^0-9a-z\u4e00-\u9fff]+")

_libs_lock = threading.Lock()
_libs: Any = None


def libs() -> Any:
    """The matching libraries, imported and jieba's dictionary loaded, once per process on
    first use (importing them costs seconds, which a process that never matches — the
    command line, a worker — should not pay)."""
    global _libs
    if _libs is None:
        with _libs_lock:
            if _libs is None:
                import bm25s
                import jieba
                import numpy
                from hanziconv import HanziConv
                from pypinyin import lazy_pinyin

                jieba.setLogLevel(60)  # its start-up chatter is not our log's business
                jieba.initialize()
                _libs = SimpleNamespace(
                    bm25s=bm25s,
                    jieba=jieba,
                    np=numpy,
                    to_simplified=HanziConv.toSimplified,
                    pinyin=lazy_pinyin,
                )
    return _libs


def warm_up() -> None:
    """Load the libraries and jieba's dictionary now rather than on the first question."""
    libs()


def normalise(text: str) -> str:
    """Simplified characters, half-width, lower case, colloquial words in their plain form,
    no punctuation, emoji or spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = libs().to_simplified(text).lower()
    text = _NOT_WORD.sub("", text)
    return normalise_words(text)


def tokens(normalised: str) -> list[str]:
    """Words of a normalised text, without stop words (its characters if it has no other)."""
    words = [w for w in libs().jieba.lcut(normalised) if w not in STOPWORDS]
    return words or [c for c in normalised if c not in STOPWORDS]


def char_grams(text: str) -> list[str]:
    """A text's characters and pairs of neighbouring characters."""
    return list(text) + [text[i : i + 2] for i in range(len(text) - 1)]


@dataclass(frozen=True)
class Entry:
    """What the matcher knows of a knowledge-base entry."""

    id: str
    question: str
    similar: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    faq_id: str
    question: str
    score: float


class Index:
    """One shop's entries, ready to match; built once per version of the knowledge base."""

    def __init__(self, entries: Sequence[Entry], version: int = 0) -> None:
        self.version = version
        self.entries = {e.id: e for e in entries}
        self._doc_entry: list[str] = []
        self._doc_text: list[str] = []
        self._doc_tokens: list[list[str]] = []
        for e in entries:
            for phrasing in (e.question, *e.similar):
                norm = normalise(phrasing)
                if not norm:
                    continue
                self._doc_entry.append(e.id)
                toks = tokens(norm)
                self._doc_text.append("".join(toks))
                self._doc_tokens.append(toks)
        df: Counter[str] = Counter()
        for toks in self._doc_tokens:
            df.update(set(toks))
        n = max(1, len(self._doc_tokens))
        self._idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self._unknown_idf = math.log(1 + (n + 0.5) / 0.5)
        self._vocab_sounds = {"".join(libs().pinyin(t)) for t in self._idf}
        self._doc_pinyin: dict[int, list[str]] = {}  # filled for candidates as they come up
        self._memo: dict[str, list[Match]] = {}  # `match_memo`: normalised question -> matches
        self._bm25: Any = None
        if self._doc_tokens:
            self._bm25 = libs().bm25s.BM25()
            self._bm25.index(self._doc_tokens, show_progress=False)
            self._vocab = self._bm25.vocab_dict
            self._char_bm25 = libs().bm25s.BM25()
            self._char_bm25.index([char_grams(t) for t in self._doc_text], show_progress=False)
            self._char_vocab = self._char_bm25.vocab_dict

    def __len__(self) -> int:
        return len(self.entries)

    def _weight(self, token: str) -> float:
        return self._idf.get(token, self._unknown_idf)

    def _overlap(self, q: list[str], d: list[str]) -> float:
        """Idf-weighted Dice of two token sets: how much of both is shared."""
        qs, ds = set(q), set(d)
        shared = sum(self._weight(t) for t in qs & ds)
        total = sum(self._weight(t) for t in qs) + sum(self._weight(t) for t in ds)
        return 2 * shared / total if total else 0.0

    def _sounds_known(self, token: str) -> bool:
        return "".join(libs().pinyin(token)) in self._vocab_sounds

    def _pinyin(self, i: int) -> list[str]:
        p = self._doc_pinyin.get(i)
        if p is None:
            p = self._doc_pinyin[i] = libs().pinyin(self._doc_text[i])
        return p

    def match_memo(self, question: str) -> list[Match]:
        """`match`, remembered per normalised question for this version of the index.

        In a promotion most buyers ask the same few questions in the same words, and the
        index never changes (a new version is a new index), so the answering path asks
        this; the bench's matcher latency measures `match` itself.
        """
        key = normalise(question)
        found = self._memo.get(key)
        if found is None:
            found = self.match(question)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.pop(next(iter(self._memo)))  # the oldest question asked
            self._memo[key] = found
        return found

    def match(self, question: str, limit: int = 3) -> list[Match]:
        """The best `limit` entries for the question, best first (each entry once)."""
        norm = normalise(question)
        if not norm or self._bm25 is None:
            return []
        q = tokens(norm)
        content = "".join(q)
        candidates: set[int] = set()
        known = [t for t in q if t in self._vocab]
        if known:
            scores = self._bm25.get_scores(known)
            k = min(BM25_CANDIDATES, len(scores))
            top = libs().np.argpartition(-scores, k - 1)[:k]
            candidates.update(int(i) for i in top if scores[i] > 0)
        # Near-exact candidates by their characters (a typo leaves most of them): BM25 over
        # characters and character pairs, not a scan of every phrasing.
        grams = [g for g in char_grams(content) if g in self._char_vocab]
        if grams:
            scores = self._char_bm25.get_scores(grams)
            k = min(FUZZY_CANDIDATES, len(scores))
            top = libs().np.argpartition(-scores, k - 1)[:k]
            candidates.update(int(i) for i in top if scores[i] > 0)
        best: dict[str, float] = {}
        # Words the knowledge base never uses (茶宠, 积分, 电话) say the question is about
        # something it does not cover: the score drops with their share of the question
        # (a typo'd word sounds like a known one, and is spared).
        unknown = [t for t in q if t not in self._idf and not self._sounds_known(t)]
        total = sum(self._weight(t) for t in q)
        strange = sum(self._weight(t) for t in unknown) / total if total else 0.0
        damp = 1 - UNKNOWN_PENALTY * strange
        sound = libs().pinyin(content)  # compared syllable by syllable, not letter by letter
        for i in candidates:
            score = max(
                self._overlap(q, self._doc_tokens[i]),
                fuzz.ratio(content, self._doc_text[i]) / 100,
                PINYIN_WEIGHT * fuzz.ratio(sound, self._pinyin(i)) / 100,
            )
            score *= damp
            entry_id = self._doc_entry[i]
            if score > best.get(entry_id, -1.0):
                best[entry_id] = score
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [Match(eid, self.entries[eid].question, round(s, 4)) for eid, s in ranked]
