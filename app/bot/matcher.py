"""The knowledge-base matcher: Chinese segmentation, BM25 and near-exact matching, in process.

No I/O and no model download: jieba segments with the dictionary bundled in its wheel,
hanziconv maps traditional characters to simplified with its bundled table, bm25s ranks
over sparse matrices and rapidfuzz scores near-exact strings in C.

jieba loads its dictionary once per process, lazily, on the first segmentation (about
0.6 s and 40 MB the first time on the development machine; it keeps a cache file in the
temporary directory, which later processes load in about 0.5 s). `warm_up()` does it
ahead of a first buyer's question.

A match's `score` is a confidence from 0 to 1 (the shop's threshold applies to it): the
better of the idf-weighted overlap of the two token sets (Dice) and the character-level
similarity of the two normalised strings. BM25 and the near-exact scan only choose the
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

import bm25s
import numpy as np
from hanziconv import HanziConv
from rapidfuzz import fuzz, process

from app.bot.rules import normalise_words

# Words that carry no meaning for matching a shop's question (particles, politeness).
_STOP_TEXT = (
    "的 了 吗 呢 吧 啊 呀 哦 嘛 哈 么 是 在 我 你 您 他 她 它 们 我们 你们 请问 问下 问一下 "
    "一下 亲 亲亲 老板 客服 掌柜 店家 谢谢 麻烦 想 要 能 会 可以 这个 那个 这 那 个 有 "
    "和 与 就 都 也 还 又 给 把 被 让 对 吗吗 啦 咯 嗯 噢 喔 哟 呐 哇 滴 得 地 一 下 "
    "请 帮 帮我 看看 看 知道 告诉 说 问"
)
STOPWORDS = frozenset(_STOP_TEXT.split())
# Candidates taken from each ranker before scoring.
BM25_CANDIDATES = 12
FUZZY_CANDIDATES = 4
_NOT_WORD = re.compile(r"[^0-9a-z\u4e00-\u9fff]+")

_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba() -> object:
    """jieba, its dictionary loaded (once per process, on first use)."""
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(60)  # its start-up chatter is not our log's business
                jieba.initialize()
                _jieba_ready = True
    return jieba


def warm_up() -> None:
    """Load jieba's dictionary now rather than on the first question."""
    _jieba()


def normalise(text: str) -> str:
    """Simplified characters, half-width, lower case, colloquial words in their plain form,
    no punctuation, emoji or spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = HanziConv.toSimplified(text).lower()
    text = _NOT_WORD.sub("", text)
    return normalise_words(text)


def tokens(normalised: str) -> list[str]:
    """Words of a normalised text, without stop words (its characters if it has no other)."""
    jieba = _jieba()
    words = [w for w in jieba.lcut(normalised) if w not in STOPWORDS]  # type: ignore[attr-defined]
    return words or [c for c in normalised if c not in STOPWORDS]


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
        self._bm25: bm25s.BM25 | None = None
        if self._doc_tokens:
            self._bm25 = bm25s.BM25()
            self._bm25.index(self._doc_tokens, show_progress=False)
            self._vocab = self._bm25.vocab_dict

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
            top = np.argpartition(-scores, k - 1)[:k]
            candidates.update(int(i) for i in top if scores[i] > 0)
        for _text, _score, i in process.extract(
            content, self._doc_text, scorer=fuzz.ratio, limit=FUZZY_CANDIDATES
        ):
            candidates.add(int(i))
        best: dict[str, float] = {}
        for i in candidates:
            score = max(
                self._overlap(q, self._doc_tokens[i]),
                fuzz.ratio(content, self._doc_text[i]) / 100,
            )
            entry_id = self._doc_entry[i]
            if score > best.get(entry_id, -1.0):
                best[entry_id] = score
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [Match(eid, self.entries[eid].question, round(s, 4)) for eid, s in ranked]
