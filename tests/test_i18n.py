"""The gettext catalogs: complete and translated in every domain and language, served to
the browser as JSON, and notices rendered from their payload in the reader's language."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from app import i18n
from app.pages.i18n import message_text, words


def test_every_message_is_in_every_catalog_and_translated():
    # Extracted anew from Python, the templates and the scripts, compared with the .po files.
    assert i18n.problems() == []


def test_a_missing_a_fuzzy_and_an_empty_message_are_reported(tmp_path: Path, monkeypatch):
    copy = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, copy)
    po = copy / "zh_CN" / "LC_MESSAGES" / "messages.po"
    text = po.read_text()
    text = text.replace('msgid "Log out"\nmsgstr "退出登录"\n', "")
    text = text.replace(
        'msgid "Log in"\nmsgstr "登录"\n', '#, fuzzy\nmsgid "Log in"\nmsgstr "登录"\n'
    )
    po.write_text(
        text.replace('msgid "Password"\nmsgstr "密码"\n', 'msgid "Password"\nmsgstr ""\n')
    )
    monkeypatch.setattr(i18n, "LOCALE_DIR", copy)
    found = i18n.problems()
    assert "messages.po (zh_CN): missing 'Log out'" in found
    assert "messages.po (zh_CN): untranslated 'Log in'" in found
    assert "messages.po (zh_CN): untranslated 'Password'" in found
    assert len(found) == 3


def test_compile_writes_mo_and_json(tmp_path: Path, monkeypatch):
    copy = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, copy, ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.setattr(i18n, "LOCALE_DIR", copy)
    monkeypatch.setattr(i18n, "JSON_DIR", tmp_path / "json")
    written = i18n.compile_all()
    assert len(written) == 2 * len(i18n.LANGS) * len(i18n.DOMAINS)
    widget = json.loads((tmp_path / "json" / "widget.zh_CN.json").read_text())
    assert widget["Compensation"] == "赔付"
    assert (copy / "en" / "LC_MESSAGES" / "widget.mo").stat().st_size > 0


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("zh", "已为您补偿 ¥12.50(晚发即赔)"),
        ("en", "We have compensated you ¥12.50 (Late shipment)"),
    ],
)
def test_a_compensation_card_reads_in_the_reader_s_language(lang, text):
    msg = {
        "kind": "compensation_card",
        "body": "已为您补偿 ¥12.50(晚发即赔)",
        "payload": {"payout_id": "p1", "amount_cents": 1250, "reason": "late_shipment"},
    }
    assert message_text(words(lang), msg) == text


def test_notices_read_from_their_code_and_people_s_words_as_written():
    en = words("en")
    sold_out = {"kind": "system", "body": "福利「签到」已领完"}
    sold_out["payload"] = {"notice": "giveaway_sold_out", "params": {"title": "签到"}}
    assert message_text(en, sold_out) == "The giveaway 签到 has run out"
    assert message_text(words("zh"), sold_out) == "福利「签到」已领完"
    unknown = {"kind": "system", "body": "旧的通知", "payload": {"notice": "from_the_future"}}
    assert message_text(en, unknown) == "旧的通知"
    assert message_text(en, {"kind": "text", "body": "你好", "payload": {}}) == "你好"


async def test_the_browser_catalogs_are_served_as_json(server):
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.get("/static/locale/widget.en.json")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == i18n.json_catalog("en", "widget")
        zh = (await c.get("/static/locale/workbench.zh_CN.json")).json()
        assert zh["Transfer sent"] == "已发出转接"
        assert (await c.get("/static/locale/widget.fr.json")).status_code == 404
        assert (await c.get("/static/locale/secrets.en.json")).status_code == 404
