"""The hub's registry of this node's sockets: which of them are agents', kept as sockets
come and go, so presence and the requeue job never walk the buyers' sockets."""

from __future__ import annotations

from types import SimpleNamespace

from app.realtime.bus import MemoryBus
from app.realtime.hub import Hub


class FakeConn:
    def __init__(self, kind: str, identity_id: str) -> None:
        self.kind = kind
        self.identity = SimpleNamespace(id=identity_id)
        self.topics: list[str] = [f"{kind}:{identity_id}"]
        self.expires_at = None
        self.ended_with: tuple[int, str] | None = None

    def end(self, code: int, reason: str) -> None:
        self.ended_with = (code, reason)


def test_agent_sockets_are_kept_apart_from_the_buyers():
    hub = Hub(MemoryBus())
    buyers = [FakeConn("buyer", f"b{i}") for i in range(1000)]
    a1, a1_again, a2 = FakeConn("agent", "a1"), FakeConn("agent", "a1"), FakeConn("agent", "a2")
    for conn in [*buyers[:500], a1, *buyers[500:], a1_again, a2]:
        hub.register(conn)  # type: ignore[arg-type]
    assert hub.agents == {a1, a1_again, a2}
    assert hub.local_agent_ids() == ["a1", "a2"]
    hub.unregister(a1)  # type: ignore[arg-type]
    assert hub.local_agent_ids() == ["a1", "a2"]  # a1 has another socket here
    hub.unregister(a1_again)  # type: ignore[arg-type]
    hub.end(a2, "logout")  # type: ignore[arg-type]
    assert a2.ended_with is not None
    assert hub.agents == set() and hub.local_agent_ids() == []
    assert len(hub.connections) == 1000
