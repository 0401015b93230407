"""A connection's record of what it wrote per conversation (exactly-once delivery)."""

from __future__ import annotations

from app.realtime.connection import SeqTrack


def test_in_order_writes_keep_nothing_but_the_high_mark():
    t = SeqTrack(floor=3)
    assert not t.is_live_new(3)  # the client fetches up to its floor itself
    for seq in range(4, 10_004):
        assert t.is_live_new(seq)
        t.mark(seq)
        assert not t.is_live_new(seq)
    assert t.upto == 10_003 and t.sent == set() and not t.has_gap


def test_a_gap_is_seen_until_it_fills():
    t = SeqTrack()
    t.mark(1)
    t.mark(3)  # 2 was lost or overtaken on the bus
    assert t.has_gap and t.upto == 1
    assert t.is_live_new(2) and not t.is_live_new(3)
    t.mark(2)
    assert not t.has_gap and t.upto == 3 and t.sent == set()
    assert [s for s in range(1, 6) if t.written(s)] == [1, 2, 3]


def test_a_sync_below_the_floor_counts_as_written():
    t = SeqTrack(floor=10)
    assert not t.written(5)  # below the floor: the client said it would fetch it
    for seq in range(6, 11):
        t.mark(seq)  # the sync wrote 6..10
    t.lower_floor(5)
    assert [s for s in range(1, 12) if t.written(s)] == [6, 7, 8, 9, 10]
    assert t.is_live_new(11) and not t.is_live_new(10)
