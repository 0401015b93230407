"""The console's read-only conversation view through a real server (both databases):
supervisors and admins read a conversation with its internal notes styled apart, text
escaped, in both languages; agents, other shops and strangers do not."""

from __future__ import annotations

import httpx
import pytest

from tests.support.factories import make_shop
from tests.support.passwords import cheap_password_hashing  # noqa: F401  (fixture)
from tests.support.words import en, zh
from tests.test_metrics_tags import console_client
from tests.test_notes import STAFF, chat, note, reply

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

NOTE = "<script>alert(1)</script> 这位买家上次投诉过"


def items(html: str) -> list[str]:
    """The view's message items, in order."""
    ol = html.split('id="conversation-messages"')[1].split("</ol>")[0]
    return ol.split("<li ")[1:]


async def test_a_supervisor_reads_the_conversation_with_its_notes_apart(server, connect):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    agent, _b, conv_id = await chat(server, kit, connect, "b-console")
    await note(agent, conv_id, NOTE)
    await reply(agent, conv_id, "亲,已经发货了 详情见 www.othershop.com")  # flagged
    url = f"/console/conversations/{conv_id}"
    async with console_client(server, kit, "sup") as c:
        flags = await c.get("/console", params={"tab": "compliance"})
        page = await c.get(url)
        english = await c.get(url, params={"lang": "en"})
    # The flagged message's row opens its conversation.
    assert f'class="conversation-link" href="{url}"' in flags.text
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    buyer, noted, replied = items(page.text)
    assert 'class="msg from-buyer kind-text"' in buyer and "你好,发货了吗" in buyer
    assert 'class="msg from-agent kind-note"' in noted and 'data-seq="2"' in noted
    assert f'<span class="note-label">{zh("Internal note")}</span>' in noted
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 这位买家上次投诉过" in noted
    assert "<script>alert" not in page.text
    assert "note-label" not in replied and "亲,已经发货了" in replied
    assert zh("Conversation with %(buyer)s") % {"buyer": "测试买家"} in page.text
    assert zh("In progress") in page.text
    assert f'<span class="note-label">{en("Internal note")}</span>' in english.text
    assert en("Read-only") in english.text and en("In progress") in english.text


async def test_agents_other_shops_and_strangers_do_not_read_it(server, connect):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    other = await make_shop(server.ctx.db, agents=STAFF)
    agent, _b, conv_id = await chat(server, kit, connect, "b-private")
    await note(agent, conv_id, NOTE)
    url = f"/console/conversations/{conv_id}"
    async with console_client(server, kit, "agent1") as c:
        refused = await c.get(url)  # the agent serving it: the console is not theirs
    assert refused.status_code == 403 and NOTE.split()[1] not in refused.text
    async with console_client(server, other, "sup") as c:
        elsewhere = await c.get(url)
        unknown = await c.get("/console/conversations/nope")
    assert elsewhere.status_code == 404 and "这位买家" not in elsewhere.text
    assert zh("No such conversation.") in elsewhere.text and unknown.status_code == 404
    async with console_client(server, kit, "admin") as c:
        assert (await c.get(url)).status_code == 200
    async with httpx.AsyncClient(base_url=server.http) as anon:
        r = await anon.get(url)
    assert r.status_code == 303 and r.headers["location"] == "/login"
