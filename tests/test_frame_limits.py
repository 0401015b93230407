"""Hard limits on socket frames: every field bounded at parse time, every frame counted
against the rate limit, and no socket ever left open but silent.

Found by sending the server malformed frames: a `sync` with `after_seq` 2^63 (a valid
JSON integer) made SQLite raise OverflowError in the connection's writer, which then
stopped writing without closing the socket; a 1,000-deep array in `agent.status` was
formatted with `repr` and hit RecursionError.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import websockets

from app.clock import FrozenClock
from app.realtime.connection import CLOSE_SERVER_ERROR
from tests.conftest import buyer, online_agent
from tests.support.client import WSClient
from tests.support.factories import login, make_shop

# Deep structures, written out as JSON text (Python's json cannot encode them): a
# 1,000-deep array is valid JSON (orjson parses up to 1,024 levels).
DEEP = "__deep_array__"
DEEP_OBJECT = "__deep_object__"
_DEEP_TEXT = {
    f'"{DEEP}"': "[" * 1000 + "0" + "]" * 1000,
    f'"{DEEP_OBJECT}"': '{"a": ' * 500 + "0" + "}" * 500,
}


def dumps(frame: dict[str, Any]) -> str:
    text = json.dumps(frame)
    for marker, deep in _DEEP_TEXT.items():
        text = text.replace(marker, deep)
    return text


# What goes into one field at a time: wrong types, numbers out of every range, strings
# that look like numbers, deep structures.
BAD_VALUES: list[Any] = [
    "x",
    7,
    1.5,
    True,
    None,
    [],
    {},
    -1,
    2**31,
    2**53,
    2**63,
    2**64 - 1,
    -(2**63),
    "NaN",
    "x" * 10_000,
    DEEP,
    DEEP_OBJECT,
]

# Whole frames that are wrong before any field is read (text unless bytes).
RAW_FRAMES: list[str | bytes] = [
    "{not json",
    "",
    " ",
    "[]",
    "null",
    "1",
    '"text"',
    "[" * 2000 + "]" * 2000,
    '{"type": 1}',
    '{"type": null}',
    '{"type": []}',
    '{"type": {"a": 1}}',
    json.dumps({"type": "x" * 50_000}),
    dumps({"type": DEEP}),
    '{"type": "launch.rockets"}',
    '{"type": "hello"}',
    '{"type": "message.ack"}',
    '{"type": ""}',
    '{"type": "sync", "conversation_id": "c", "after_seq": NaN}',
    '{"type": "sync", "conversation_id": "c", "after_seq": Infinity}',
    '{"type": "sync", "conversation_id": "c", "after_seq": 1e400}',
    '{"type": "sync", "conversation_id": "c", "after_seq": 123456789012345678901234567890}',
    '{"type": "sync", "conversation_id": "c", "after_seq": -0.0}',
    json.dumps({"type": "message.send", "client_msg_id": "big", "body": "x" * 100_000}),
    b"\xff\xfe\xfd",
    b"\x00" * 16,
    b'{"type": "typing", "conversation_id": "\xff\xfe"}',
    b'{"type": "message.send", "client_msg_id": "\xc3\x28", "body": "\xed\xa0\x80"}',
    '{"type": "sync", "conversation_id": "\\ud800", "after_seq": 0}',
]


def _frames_for(side: str, conv_id: str) -> list[str | bytes]:
    """About 300 malformed frames for one side: each field of each frame type it takes,
    replaced in turn by each bad value, then the raw ones."""
    ghost = "no-such-conversation"  # frames that would change something act on nothing
    common: dict[str, dict[str, Any]] = {
        "message.send": {"client_msg_id": "m", "body": "hi", "kind": "text", "payload": {}},
        "sync": {"conversation_id": conv_id, "after_seq": 0},
        "typing": {"conversation_id": conv_id},
        "read": {"conversation_id": conv_id, "seq": 1},
        "group.send": {"group_id": "g", "client_msg_id": "gm", "body": "hi"},
        "group.sync": {"group_id": "g", "after_seq": 0},
    }
    if side == "buyer":
        base = {
            **common,
            "elder_mode": {"on": False},
            "csat.submit": {"conversation_id": ghost, "score": 5, "comment": "ok"},
        }
        base["message.send:card"] = {
            "client_msg_id": "c",
            "body": "",
            "kind": "product_card",
            "payload": {"product_id": "p", "title": "t", "price_cents": 1},
        }
    else:
        base = {
            **common,
            "agent.status": {"status": "busy"},
            "conversation.close": {"conversation_id": ghost},
            "conversation.transfer": {"conversation_id": ghost, "to_queue": "general", "note": ""},
        }
        base["message.send"] = {**base["message.send"], "conversation_id": conv_id}
    frames: list[str | bytes] = []
    for name, fields in base.items():
        ftype = name.split(":")[0]
        keys = (
            list(fields) if name != "message.send:card" else ["product_id", "title", "price_cents"]
        )
        for key, bad in itertools.product(keys, BAD_VALUES):
            if name == "message.send:card":
                frame = {"type": ftype, **fields, "payload": {**fields["payload"], key: bad}}
            else:
                frame = {"type": ftype, **fields, key: bad}
            frames.append(dumps(frame))
    return frames + RAW_FRAMES


async def _answers_or_closes(
    client: WSClient, frame: str | bytes, probe: dict[str, Any], reopen: Any
) -> WSClient:
    """Send the bad frame, then a valid send: it must be acked (and no `internal` error
    come back), or the socket must have been closed with a code and a reason."""
    seen = len(client.frames)
    try:
        await client.ws.send(frame)
        await client.send(probe)
        await client.expect(
            "message.ack", lambda f: f["client_msg_id"] == probe["client_msg_id"], timeout=10
        )
    except websockets.ConnectionClosed:
        assert client.ws.close_code is not None and client.ws.close_reason, (
            frame[:200],
            client.ws.close_code,
        )
        return await reopen()
    errors = [f for f in client.frames[seen:] if f.get("type") == "error"]
    assert all(e["code"] != "internal" for e in errors), (frame[:200], errors)
    assert all(len(json.dumps(e)) < 2000 for e in errors), "an error echoes at most a short excerpt"
    return client


@pytest.mark.parametrize("side", ["buyer", "agent"])
async def test_three_hundred_malformed_frames_never_leave_a_socket_silent(
    start_server, connect, side
):
    srv = await start_server(HOMING_FRAMES_PER_SECOND="100000", run_jobs=False)
    kit = await make_shop(srv.ctx.db)
    agent = await online_agent(srv, kit, "agent1", connect)
    b = await buyer(srv, kit, connect, "b-1")
    await b.send({"type": "message.send", "client_msg_id": "open", "body": "你好"})
    await b.expect("message.ack")
    conv_id = (await agent.expect("conversation.assigned"))["conversation"]["id"]
    token = await login(srv.http, kit, "agent1")

    async def reopen() -> WSClient:
        if side == "buyer":
            return await buyer(srv, kit, connect, "b-1")
        c = await connect(f"{srv.ws}/ws/agent?token={token}")
        await c.expect("hello")
        return c

    client = b if side == "buyer" else agent
    frames = _frames_for(side, conv_id)
    assert len(frames) >= 280
    for i, frame in enumerate(frames):
        probe: dict[str, Any] = {
            "type": "message.send",
            "client_msg_id": f"probe-{i}",
            "body": f"probe {i}",
        }
        if side == "agent":
            probe["conversation_id"] = conv_id
        client = await _answers_or_closes(client, frame, probe, reopen)


@pytest.mark.parametrize("side", ["buyer", "agent"])
@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "sync", "after_seq": 2**63}, "after_seq"),
        ({"type": "sync", "after_seq": 2**31}, "after_seq"),  # past PostgreSQL's INTEGER
        ({"type": "read", "seq": 2**63}, "seq"),
        ({"type": "group.sync", "group_id": "g", "after_seq": 2**63}, "after_seq"),
    ],
)
async def test_numbers_past_what_a_column_holds_are_bad_frames(server, connect, side, frame, field):
    kit = await make_shop(server.ctx.db)
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect)
    await b.send({"type": "message.send", "client_msg_id": "open", "body": "你好"})
    await b.expect("message.ack")
    conv_id = (await agent.expect("conversation.assigned"))["conversation"]["id"]
    client = b if side == "buyer" else agent
    await client.send({**frame, "conversation_id": conv_id})
    err = await client.expect("error")
    assert err["code"] == "bad_frame" and f'"{field}"' in err["message"], err
    # And the socket still works both ways.
    await agent.send(
        {"type": "message.send", "conversation_id": conv_id, "client_msg_id": "a", "body": "在的"}
    )
    await agent.expect("message.ack")
    assert (await b.expect("message.new"))["message"]["body"] == "在的"
    await b.send({"type": "message.send", "client_msg_id": "b", "body": "好的"})
    await b.expect("message.ack")


async def test_a_deep_structure_where_a_word_belongs_is_a_bad_frame(server, connect):
    kit = await make_shop(server.ctx.db)
    agent = await online_agent(server, kit, "agent1", connect)
    for frame in (
        {"type": "agent.status", "status": DEEP},
        {"type": "conversation.transfer", "conversation_id": "c", "note": DEEP},
    ):
        await agent.send(dumps(frame))
        err = await agent.expect("error")
        assert err["code"] == "bad_frame", err
        assert len(err["message"]) < 200
    await agent.send({"type": "agent.status", "status": "busy"})
    assert (await agent.expect("agent.status"))["status"] == "busy"


async def test_bad_frames_count_against_the_rate_limit(start_server, connect):
    """Malformed, oversize and unknown frames are frames: ten of them in a second use up
    the second, and the limiter reads the server's clock (moved here, not slept on)."""
    clock = FrozenClock()
    srv = await start_server(clock=clock, run_jobs=False)
    kit = await make_shop(srv.ctx.db, clock=clock)
    b = await buyer(srv, kit, connect)
    junk = [
        "{not json",
        "[1]",
        json.dumps({"type": "x" * 70_000}),
        '{"type": "launch.rockets"}',
        '{"type": "sync", "after_seq": "NaN"}',
    ]
    for frame in junk * 2:
        await b.send(frame)
    for _ in range(10):
        assert (await b.expect("error"))["code"] != "rate_limited"
    await b.send({"type": "message.send", "client_msg_id": "eleventh", "body": "hi"})
    err = await b.expect("error")
    assert err["code"] == "rate_limited" and err["ref"] == "eleventh"
    await b.send("{still not json")
    assert (await b.expect("error"))["code"] == "rate_limited"
    clock.advance(seconds=1)
    await b.send({"type": "message.send", "client_msg_id": "later", "body": "hi"})
    assert (await b.expect("message.ack"))["client_msg_id"] == "later"


async def test_a_writer_that_fails_closes_the_socket_with_a_reason(start_server, connect):
    """Any unexpected error while writing (here the database failing under a sync)
    closes the socket with 1011 and a reason: the client reconnects and syncs."""
    srv = await start_server(run_jobs=False)
    kit = await make_shop(srv.ctx.db)
    agent = await online_agent(srv, kit, "agent1", connect)
    b = await buyer(srv, kit, connect)
    await b.send({"type": "message.send", "client_msg_id": "open", "body": "你好"})
    await b.expect("message.ack")
    conv_id = (await agent.expect("conversation.assigned"))["conversation"]["id"]

    async def broken(conversation_id: str, after_seq: int) -> list[dict[str, Any]]:
        raise RuntimeError("the database went away")

    srv.ctx.loader.messages_after = broken  # a fault on this server only
    await b.send({"type": "sync", "conversation_id": conv_id, "after_seq": 0})
    with pytest.raises(websockets.ConnectionClosed):
        for _ in range(20):
            await b.recv(timeout=5)
    assert b.ws.close_code == CLOSE_SERVER_ERROR
    assert b.ws.close_reason == "server error; reconnect and sync"
    # The agent's socket, untouched, still works.
    await agent.send({"type": "agent.status", "status": "busy"})
    await agent.expect("agent.status")


async def test_a_reader_that_fails_closes_the_socket_with_a_reason(server, connect, monkeypatch):
    """An unexpected error in the socket's reader, outside any one frame's handling,
    closes it with 1011 and a reason (not a dropped connection, not a silent socket)."""
    from starlette.websockets import WebSocket

    receive = WebSocket.receive

    async def failing(self: WebSocket) -> Any:
        msg = await receive(self)
        if msg.get("text") == '{"type": "inject.reader.fault"}':
            raise RuntimeError("the transport failed")
        return msg

    monkeypatch.setattr(WebSocket, "receive", failing)
    kit = await make_shop(server.ctx.db)
    b = await buyer(server, kit, connect)
    await b.send('{"type": "inject.reader.fault"}')
    with pytest.raises(websockets.ConnectionClosed):
        await b.recv(timeout=5)
    assert b.ws.close_code == CLOSE_SERVER_ERROR and b.ws.close_reason
