"""The compliance rules by tables: normalising, every platform rule, shop words, abuse steps."""

from __future__ import annotations

import pytest

from app.compliance import rules

M = rules.Matcher(
    [
        rules.Rule("shop", "custom", "flag", "优惠群"),
        rules.Rule("shop", "custom", "block", "代 购"),
        rules.Rule("shop", "custom", "flag", "代购"),  # the same word folded: block wins
        rules.Rule("shop", "abuse", "flag", "废物"),
    ]
)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("ＶＸ：ａｂｃ", "vxabc"),  # full-width (NFKC)
        ("加 微-信", "加微信"),  # spaces and separators
        ("Неllо", "hello"),  # Cyrillic look-alikes
        ("V.X", "vx"),
        ("好评 返 现!", "好评返现"),
        ("", ""),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert rules.fold(text) == folded


@pytest.mark.parametrize(
    ("folded", "read"),
    [
        ("一三八零零一三八零零零", "13800138000"),
        ("13800l38ooo", "13800138000"),
        ("幺三八", "138"),
        ("hello", "hello"),  # letters away from digits stay letters
        ("第一次", "第1次"),
    ],
)
def test_digits_read(folded: str, read: str) -> None:
    assert rules.digits_read(folded) == read


CASES = [
    # (text, code of the deciding hit or None, action, matched)
    ("您好,请问有什么可以帮您", None, None, None),
    ("1 3 8 0 0 1 3 8 0 0 0", "phone_number", "block", "13800138000"),
    ("138-0013-8000", "phone_number", "block", "13800138000"),
    ("+86 138 0013 8000", "phone_number", "block", "8613800138000"),
    ("１３８００１３８０００", "phone_number", "block", "13800138000"),
    ("一三八零零一三八零零零", "phone_number", "block", "13800138000"),
    ("订单号 20241113800138000", None, None, None),  # a longer number is not a phone
    ("运单 1380013800", None, None, None),  # 10 digits
    ("微信 shop_helper88", "wechat_id", "block", "微信shophelper88"),
    ("QQ号:12345678", "qq_id", "block", "qq号12345678"),
    ("加 微 信", "contact_word", "block", "加微信"),
    ("加Ｖ详聊", "contact_word", "block", "加v"),
    ("有事私聊我", "contact_word", "block", "私聊我"),
    ("https://pay.example.com/x", "payment_link", "block", "https://pay.example.com/x"),
    ("扫 www.othershop.com", "outside_link", "flag", "www.othershop.com"),
    ("好评返现", "forbidden_promise", "block", "好评返现"),
    ("私 下 交 易", "forbidden_promise", "block", "私下交易"),
    ("你个傻Ｂ", "abuse", "block", "傻b"),
    ("ＩＤＩＯＴ", "abuse", "block", "idiot"),
    ("进优惠群", "shop", "flag", "优惠群"),
    ("可以代购", "shop", "block", "代购"),
    ("你个废物", "shop", "flag", "废物"),
    ("加入优惠群 加微信", "contact_word", "block", "加微信"),  # a block decides over a flag
]


@pytest.mark.parametrize(("text", "code", "action", "matched"), CASES)
def test_matcher(text: str, code: str | None, action: str | None, matched: str | None) -> None:
    first = M.check(text).first
    if code is None:
        assert first is None
    else:
        assert first is not None
        assert (first.code, first.action, first.matched) == (code, action, matched)


def test_abuse_of_a_shop_word_is_found_by_category() -> None:
    assert M.check("你个废物").of("abuse") is not None
    assert M.check("亲,在的").of("abuse") is None


@pytest.mark.parametrize(
    ("word", "action", "category", "why"),
    [
        ("返利群", "block", "custom", None),
        ("返利群", "flag", "abuse", None),
        ("返利群", "delete", "custom", "bad_action"),
        ("返利群", "block", "spam", "bad_category"),
        ("  !! ", "block", "custom", "bad_word"),
        ("x" * 51, "block", "custom", "bad_word"),
    ],
)
def test_check_shop_word(word: str, action: str, category: str, why: str | None) -> None:
    assert rules.check_shop_word(word, action, category) == why


@pytest.mark.parametrize(
    ("count", "step", "may_end"),
    [(0, None, False), (1, "warn", False), (2, "may_end", True), (5, "may_end", True)],
)
def test_abuse_steps(count: int, step: str | None, may_end: bool) -> None:
    assert rules.abuse_step(count) == step
    assert rules.may_end_for_abuse(count) is may_end


def test_a_thousand_shop_words_compile_and_match() -> None:
    many = rules.Matcher(rules.Rule("shop", "custom", "flag", f"禁词{i}号") for i in range(1000))
    assert many.size >= 1000
    hit = many.check("这里有 禁词 999 号").first
    assert hit is not None and hit.matched == "禁词999号"
