"""Bad input gets a clear error frame, and the socket keeps working afterwards."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from tests.conftest import buyer, online_agent
from tests.support.factories import make_shop


async def still_works(client, cmid):
    await client.send({"type": "message.send", "client_msg_id": cmid, "body": "still here"})
    ack = await client.expect("message.ack", lambda f: f["client_msg_id"] == cmid)
    assert ack["message"]["body"] == "still here"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_frame"),
        ("[1, 2, 3]", "bad_frame"),
        ('{"no_type": 1}', "bad_frame"),
        ('{"type": "launch.rockets"}', "unknown_type"),
        ('{"type": "message.send", "body": "missing client id"}', "bad_frame"),
        ('{"type": "message.send", "client_msg_id": "k", "body": "   "}', "bad_frame"),
        (
            '{"type": "message.send", "client_msg_id": "k", "body": "x", "kind": "coupon_card"}',
            "bad_frame",
        ),
        ('{"type": "message.send", "client_msg_id": "k", "body": 42}', "bad_frame"),
        ('{"type": "sync", "conversation_id": "c", "after_seq": -1}', "bad_frame"),
        ('{"type": "elder_mode", "on": "yes"}', "bad_frame"),
    ],
)
async def test_bad_frames_get_errors_and_the_socket_stays_up(server, shop, connect, frame, code):
    b = await buyer(server, shop, connect)
    await b.send(frame)
    err = await b.expect("error")
    assert err["code"] == code, err
    assert err["message"]
    await still_works(b, "after-error")


async def test_oversize_body_is_too_large(server, shop, connect):
    b = await buyer(server, shop, connect)
    await b.send({"type": "message.send", "client_msg_id": "big", "body": "字" * 4001})
    err = await b.expect("error")
    assert err["code"] == "too_large" and err["ref"] == "big"
    await b.send({"type": "message.send", "client_msg_id": "exact", "body": "字" * 4000})
    assert len((await b.expect("message.ack"))["message"]["body"]) == 4000


async def test_huge_frame_is_refused_without_closing(server, shop, connect):
    b = await buyer(server, shop, connect)
    await b.send({"type": "message.send", "client_msg_id": "huge", "body": "x" * 100_000})
    assert (await b.expect("error"))["code"] == "too_large"
    await still_works(b, "after-huge")


async def test_more_than_ten_frames_a_second_is_rate_limited(server, shop, connect):
    agent = await online_agent(server, shop, "agent1", connect)
    b = await buyer(server, shop, connect)
    for i in range(15):
        await b.send({"type": "message.send", "client_msg_id": f"flood-{i}", "body": f"刷屏 {i}"})
    await asyncio.sleep(1.0)
    frames = await b.drain(quiet=0.5)
    limited = [f for f in b.frames if f.get("type") == "error" and f["code"] == "rate_limited"]
    acked = [f for f in b.frames if f.get("type") == "message.ack"]
    assert len(acked) == 10 and len(limited) == 5, frames
    assert {f["ref"] for f in limited} == {f"flood-{i}" for i in range(10, 15)}
    # After a pause the bucket has refilled: the socket works normally.
    await still_works(b, "calm")
    del agent


async def test_bad_credentials_close_with_4401(server, shop, connect):
    other = await make_shop(server.ctx.db)
    cases = [
        f"{server.ws}/ws/buyer",
        f"{server.ws}/ws/buyer?token=garbage",
        f"{server.ws}/ws/buyer?token={shop.buyer_token(exp_in=-10)}",
        f"{server.ws}/ws/buyer?token={shop.buyer_token(secret=other.buyer_secret)}",
        f"{server.ws}/ws/agent",
        f"{server.ws}/ws/agent?token=not-a-session",
        f"{server.ws}/ws/agent?token={shop.buyer_token()}",
    ]
    for url in cases:
        c = await connect(url)
        with pytest.raises(websockets.ConnectionClosed):
            await c.recv(timeout=5)
        assert c.close_code == 4401, url
        assert not c.frames, "no hello before 4401"


async def test_unsigned_buyer_token_is_refused(server, shop, connect):
    import jwt

    unsigned = jwt.encode(
        {"sub": "x", "shop": shop.slug, "exp": 9999999999}, None, algorithm="none"
    )
    c = await connect(f"{server.ws}/ws/buyer?token={unsigned}")
    with pytest.raises(websockets.ConnectionClosed):
        await c.recv(timeout=5)
    assert c.close_code == 4401
