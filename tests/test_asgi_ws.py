"""The lighter containers of uvicorn's WebSocket protocol (app/realtime/asgi_ws.py) behave
as the asyncio.Queue and asyncio.Event they replace, for how uvicorn uses them."""

from __future__ import annotations

import asyncio

import pytest

from app.realtime.asgi_ws import Flag, Inbox


async def test_inbox_hands_items_in_order_and_wakes_its_reader():
    inbox = Inbox()
    assert inbox.empty()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert await inbox.get() == 1 and await inbox.get() == 2 and inbox.empty()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    inbox.put_nowait("late")
    assert await asyncio.wait_for(reader, 1) == "late"


async def test_a_cancelled_reader_loses_nothing():
    inbox = Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    inbox.put_nowait("kept")
    assert await asyncio.wait_for(inbox.get(), 1) == "kept"


async def test_flag_waits_until_set_and_passes_when_set():
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True] * 3
    assert await flag.wait() is True
    flag.clear()
    late = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not late.done()
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    flag.set()  # a cancelled waiter is not woken twice
