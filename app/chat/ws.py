"""WebSocket endpoints `/ws/buyer` and `/ws/agent`: authenticate, then parse → act → reply.

No rules here: each frame is parsed, handed to one action, and its errors are mapped
to error frames. The socket stays open after any error in a frame.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import WebSocket
from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.bot import ws as bot_ws
from app.chat import actions, service
from app.chat.appender import Append, Opening
from app.chat.delivery import BuyerLoader
from app.chat.protocol import (
    MAX_ID,
    get_bool,
    get_choice,
    get_int,
    get_str,
    get_text,
    parse_frame,
    parse_outgoing,
    shown,
)
from app.chat.schemas import message_public
from app.compliance import actions as compliance_actions
from app.compliance import ws as compliance_ws
from app.context import AppContext
from app.db import new_id
from app.errors import DomainError, NotAuthenticated, RateLimited, TooLarge
from app.groups import ws as group_ws
from app.notes import actions as note_actions
from app.observability.logs import connection_id, new_log_id
from app.realtime.asgi_ws import immediate_sender
from app.realtime.connection import Connection
from app.realtime.ratelimit import SlidingWindowLimiter
from app.realtime.sessions import CLOSE_UNAUTHORIZED, ENDED, ROLE_CHANGED
from app.realtime.topics import agent_topic, buyer_topic, shop_staff_topic
from app.security import SESSION_COOKIE, same_origin
from app.shops import actions as shop_actions
from app.shops import service as shop_service
from app.shops.identities import BuyerIdentity
from app.shops.models import AGENT_STATUSES
from app.shops.policy import Permission, may

log = logging.getLogger(__name__)


class SocketHandler(ABC):
    """One authenticated socket: its connection, its identity and its frame handlers."""

    def __init__(self, ctx: AppContext, ws: WebSocket, conn: Connection) -> None:
        self.ctx = ctx
        self.ws = ws
        self.conn = conn
        self.limiter = SlidingWindowLimiter(int(ctx.settings.frames_per_second), ctx.clock)
        self.received_at = 0.0  # perf_counter() when the frame being handled arrived

    # Frame type -> handler method name; one table per class, not per socket.
    HANDLERS: ClassVar[dict[str, str]] = {}

    def error(self, code: str, message: str, ref: Any = None, **details: Any) -> None:
        self.conn.push({"type": "error", "code": code, "message": message, "ref": ref, **details})

    async def receive_forever(self) -> None:
        frames_received = self.ctx.metrics.frames_received[self.side]
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            self.received_at = time.perf_counter()
            frames_received.n += 1
            if self.conn.ended:
                continue  # its session has ended: the socket is closing, frames are not acted on
            ref = None
            try:
                # Every frame counts against the limit, whatever is wrong with it, and
                # before any work is done on it.
                allowed = self.limiter.take()
                try:
                    frame = self.parse(msg)
                except DomainError:
                    if allowed:
                        raise
                    frame = {}
                ref = frame.get("client_msg_id")
                if not isinstance(ref, str) or len(ref) > MAX_ID:
                    ref = None
                if not allowed:
                    raise RateLimited(
                        f"More than {self.ctx.settings.frames_per_second:g} frames a second; slow down."
                    )
                name = self.HANDLERS.get(frame["type"])
                if name is None:
                    raise DomainError(
                        f"Unknown frame type {shown(frame['type'])}.", code="unknown_type"
                    )
                await getattr(self, name)(frame)
            except DomainError as exc:
                self.error(exc.code, exc.message, ref, **getattr(exc, "details", {}))
            except Exception:
                log.exception("frame handler failed")
                self.error("internal", "Something went wrong on our side; please retry.", ref)

    def parse(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        """The frame in a websocket.receive message: a JSON object no larger than allowed."""
        limit = self.ctx.settings.max_frame_bytes
        text = msg.get("text")
        if text is None:
            text = (msg.get("bytes") or b"").decode("utf-8", errors="replace")
        if len(text) > limit:
            raise TooLarge(f"The frame is {len(text)} characters; the limit is {limit}.")
        return parse_frame(text)

    side = ""  # "buyer" or "agent"

    @abstractmethod
    async def _conv(self, frame: dict[str, Any]) -> Any:
        """The frame's conversation, if this identity may act on it (else not_found/forbidden)."""

    async def on_sync(self, frame: dict[str, Any]) -> None:
        after_seq = get_int(frame, "after_seq")  # shape first, then permission
        conv = await self._conv(frame)
        self.conn.push_sync(conv.id, after_seq)

    async def on_read(self, frame: dict[str, Any]) -> None:
        seq = get_int(frame, "seq")
        conv = await self._conv(frame)
        await self.run(actions.mark_read, conv, self.side, seq)

    async def send_and_ack(
        self, out: Any, conversation_id: str | None, fn: Any, *args: Any, group_commit: bool = True
    ) -> dict[str, Any]:
        """Store the message, then ack it on this socket (its bus echo is not sent here).

        A message into a conversation this socket already follows, and a buyer's first
        plain text (which opens one, `opening`), go through the group commit
        (`MessageAppender`); anything it hands back, an image, a card that opens, or an
        error case, takes the full path `fn(*args)`, as does all with `group_commit` False.
        Returns the stored message (MSG).
        """
        self.conn.own_send_started(out.client_msg_id)
        try:
            msg = None
            followed = conversation_id if conversation_id in self.conn.tracks else None
            opens = None if followed else self.opening(out)
            # Images need their upload checked, notes reach the staff only: the full path.
            if (followed or opens) and out.kind not in ("image", "note") and group_commit:
                msg = await self.ctx.appender.append(
                    Append(
                        shop_id=self.identity_shop_id,
                        conversation_id=followed or new_id(),
                        sender=self.side,
                        sender_id=self.identity_id,
                        kind=out.kind,
                        body=out.body,
                        payload=out.payload or {},
                        client_msg_id=out.client_msg_id,
                        now=self.now(),
                        opens=opens,
                    )
                )
                if msg is not None and opens is not None:
                    self.conn.follow(msg["conversation_id"], 0, "queued", None)
            if msg is None:
                sent = await self.run(fn, *args)
                msg = message_public(sent.message)
                self.conn.follow(
                    sent.conversation.id, 0, sent.conversation.status, sent.conversation.agent_id
                )
        finally:
            self.conn.own_send_ended(out.client_msg_id)
        self.conn.mark_sent(msg)
        self.sent_into(msg["conversation_id"])
        self.ack(out.client_msg_id, msg)
        return msg

    def ack(self, client_msg_id: str, message: dict[str, Any]) -> None:
        """Queue the ack of a stored message; /metrics times it from the frame's arrival."""
        self.conn.push({"type": "message.ack", "client_msg_id": client_msg_id, "message": message})
        self.ctx.metrics.ack_seconds.observe(time.perf_counter() - self.received_at)

    def sent_into(self, conversation_id: str) -> None:
        """A message of this socket's was stored in `conversation_id`."""

    def opening(self, out: Any) -> Opening | None:
        """If this message would open a conversation, how (for the group commit)."""
        return None

    @property
    @abstractmethod
    def identity_shop_id(self) -> str: ...

    @property
    @abstractmethod
    def identity_id(self) -> str: ...

    @property
    @abstractmethod
    def member(self) -> Any:
        """Who this socket is, as fan groups see members (a buyer or an agent)."""

    async def on_group_send(self, frame: dict[str, Any]) -> None:
        await group_ws.on_group_send(self, self.member, frame)

    async def on_group_sync(self, frame: dict[str, Any]) -> None:
        await group_ws.on_group_sync(self, self.member, frame)

    async def run(self, fn: Any, *args: Any) -> Any:
        return await self.ctx.db.run_grouped(fn, *args)

    def now(self) -> Any:
        return self.ctx.clock.now()


class BuyerSocket(SocketHandler):
    side = "buyer"

    def __init__(self, ctx: AppContext, ws: WebSocket, conn: Connection, buyer: BuyerIdentity):
        super().__init__(ctx, ws, conn)
        self.buyer = buyer
        # Their open conversation, as far as this socket knows (the group commit checks).
        self.conversation_id: str | None = None

    HANDLERS: ClassVar[dict[str, str]] = {
        "message.send": "on_send",
        "sync": "on_sync",
        "typing": "on_typing",
        "read": "on_read",
        "elder_mode": "on_elder_mode",
        "csat.submit": "on_csat",
        "group.send": "on_group_send",
        "group.sync": "on_group_sync",
        "handoff.request": "on_handoff_request",
        "bot.feedback": "on_bot_feedback",
    }

    async def on_send(self, frame: dict[str, Any]) -> None:
        out = parse_outgoing(frame, max_chars=self.ctx.settings.max_body_chars)
        await bot_ws.prepare(self.ctx, self.buyer.shop_id)
        bot_holds = bot_ws.holds(self.ctx, self.buyer.shop_id)
        msg = await self.send_and_ack(
            out,
            self.conversation_id,
            actions.send_from_buyer,
            self.buyer,
            out,
            self.now(),
            bot_holds,
        )
        await compliance_ws.after_buyer_message(self.ctx, self.buyer, out, msg)

    def ack(self, client_msg_id: str, message: dict[str, Any]) -> None:
        super().ack(client_msg_id, message)
        bot_ws.after_buyer_message(self.ctx, self.buyer, message)

    async def on_handoff_request(self, frame: dict[str, Any]) -> None:
        await bot_ws.on_handoff_request(self, frame)

    async def on_bot_feedback(self, frame: dict[str, Any]) -> None:
        await bot_ws.on_feedback(self, frame)

    def sent_into(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id

    def opening(self, out: Any) -> Opening | None:
        if self.conversation_id is not None or bot_ws.holds(self.ctx, self.buyer.shop_id):
            return None  # the shop's bot may hold it: the full path opens it
        return actions.plain_opening(self.buyer, out)

    @property
    def member(self) -> Any:
        return self.buyer

    @property
    def identity_shop_id(self) -> str:
        return self.buyer.shop_id

    @property
    def identity_id(self) -> str:
        return self.buyer.buyer_id

    async def _conv(self, frame: dict[str, Any]) -> Any:
        return await self.ctx.openings.conversation(self.buyer, get_str(frame, "conversation_id"))

    async def on_typing(self, frame: dict[str, Any]) -> None:
        conv = await self._conv(frame)
        if conv.agent_id:
            await self.ctx.hub.publish(
                [
                    (
                        agent_topic(conv.agent_id),
                        {"type": "typing", "conversation_id": conv.id, "by": "buyer"},
                    )
                ]
            )

    async def on_elder_mode(self, frame: dict[str, Any]) -> None:
        on = get_bool(frame, "on")
        await self.ctx.db.run(
            shop_actions.set_elder_mode,
            shop_id=self.buyer.shop_id,
            buyer_id=self.buyer.buyer_id,
            on=on,
        )
        self.buyer = BuyerIdentity(**{**self.buyer.__dict__, "elder_mode": on})
        self.conn.identity = self.buyer
        self.conn.push({"type": "elder_mode", "on": on})
        await bot_ws.on_elder_mode(self.ctx, self.buyer, on)

    async def on_csat(self, frame: dict[str, Any]) -> None:
        score = get_int(frame, "score", minimum=1, maximum=5)
        comment = get_text(frame, "comment", max_len=500)
        await self.run(
            actions.rate_conversation,
            self.buyer,
            get_str(frame, "conversation_id"),
            score,
            comment,
            self.now(),
        )


class AgentSocket(SocketHandler):
    side = "agent"

    def __init__(self, ctx: AppContext, ws: WebSocket, conn: Connection, agent: Any):
        super().__init__(ctx, ws, conn)
        self.agent = agent

    HANDLERS: ClassVar[dict[str, str]] = {
        "message.send": "on_send",
        "sync": "on_sync",
        "typing": "on_typing",
        "read": "on_read",
        "agent.status": "on_status",
        "conversation.close": "on_close",
        "conversation.transfer": "on_transfer",
        "group.send": "on_group_send",
        "group.sync": "on_group_sync",
    }

    @property
    def member(self) -> Any:
        return self.agent

    async def _conv(self, frame: dict[str, Any]) -> Any:
        return await self.ctx.db.query(
            actions.conversation_for_agent, self.agent, get_str(frame, "conversation_id")
        )

    async def on_send(self, frame: dict[str, Any]) -> None:
        conv_id = get_str(frame, "conversation_id")
        out = parse_outgoing(frame, max_chars=self.ctx.settings.max_body_chars, staff=True)
        if out.kind == "note":  # staff only: never the buyer's, so no platform rule to keep
            await self.send_and_ack(
                out, conv_id, note_actions.send_note, self.agent, conv_id, out, self.now()
            )
            return
        flagged = await compliance_ws.screen_agent_message(self.ctx, self.agent, out)
        if flagged is not None:  # rare: stored with its flag in one transaction
            send: Any = compliance_actions.send_flagged
            args: tuple[Any, ...] = (self.agent, conv_id, out, flagged, self.now())
            await self.send_and_ack(out, conv_id, send, *args, group_commit=False)
            return
        await self.send_and_ack(
            out, conv_id, actions.send_from_agent, self.agent, conv_id, out, self.now()
        )

    @property
    def identity_shop_id(self) -> str:
        return str(self.agent.shop_id)

    @property
    def identity_id(self) -> str:
        return str(self.agent.id)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        conv = await self._conv(frame)
        await self.ctx.hub.publish(
            [
                (
                    buyer_topic(conv.shop_id, conv.buyer_id),
                    {"type": "typing", "conversation_id": conv.id, "by": "agent"},
                )
            ]
        )

    async def on_status(self, frame: dict[str, Any]) -> None:
        status = get_choice(frame, "status", AGENT_STATUSES)
        await self.run(actions.set_status, self.agent, status, self.now())

    async def on_close(self, frame: dict[str, Any]) -> None:
        conv_id = get_str(frame, "conversation_id")
        if get_str(frame, "reason", required=False, max_len=16) == "abuse":
            await self.run(compliance_actions.end_for_abuse, self.agent, conv_id, self.now())
            return
        await self.run(actions.agent_close, self.agent, conv_id, self.now())

    async def on_transfer(self, frame: dict[str, Any]) -> None:
        note = get_text(frame, "note", max_len=500)
        await self.ctx.db.run(
            actions.transfer_conversation,
            self.agent,
            get_str(frame, "conversation_id"),
            to_agent_id=get_str(frame, "to_agent_id", required=False) or None,
            to_queue=get_str(frame, "to_queue", required=False, max_len=64) or None,
            note=note,
            now=self.now(),
        )


def _ctx(ws: WebSocket) -> AppContext:
    ctx: AppContext = ws.app.state.ctx
    return ctx


def _connection(
    ctx: AppContext,
    ws: WebSocket,
    kind: str,
    identity: Any,
    topics: list[str],
    login: shop_service.SignedIn | None = None,
) -> Connection:
    async def close(code: int, reason: str = "") -> None:
        if ws.application_state == WebSocketState.CONNECTED:
            await ws.close(code, reason)

    return Connection(
        kind=kind,
        identity=identity,
        topics=topics,
        send_text=ws.send_text,
        close=close,
        loader=BuyerLoader(ctx.loader) if kind == "buyer" else ctx.loader,
        gap_fill_s=ctx.settings.gap_fill_s,
        session_key=login.token_hash if login else None,
        expires_at=login.expires_at if login else None,
        frames_sent=ctx.metrics.frames_sent[kind],
        send_now=immediate_sender(ws),
    )


async def _serve(ctx: AppContext, session: SocketHandler) -> None:
    try:
        await session.receive_forever()
    except WebSocketDisconnect:
        pass
    except Exception:
        # Never leave a socket open that nobody reads: close it, so the client reconnects
        # and syncs.
        log.exception("%s socket reader failed", session.side)
        await session.conn.fail()
    finally:
        ctx.hub.unregister(session.conn)
        await session.conn.stop()


async def buyer_socket(ws: WebSocket) -> None:
    connection_id.set(new_log_id())  # on this socket's log lines (HOMING_LOG_FORMAT=json)
    ctx = _ctx(ws)
    session = await _open_buyer(ctx, ws)
    _forget_handshake(ws)
    if session is not None:
        await _serve(ctx, session)


async def agent_socket(ws: WebSocket) -> None:
    connection_id.set(new_log_id())
    ctx = _ctx(ws)
    session = await _open_agent(ctx, ws)
    _forget_handshake(ws)
    if session is not None:
        await _serve(ctx, session)


# What an opening reads of the handshake (the token, the cookie and the hosts) it reads
# from the scope itself, not through `WebSocket.query_params`, `.headers` or `.cookies`,
# which keep what they parse on the WebSocket for the socket's life.


def _query_param(ws: WebSocket, name: str) -> str | None:
    return QueryParams(ws.scope["query_string"]).get(name)


def _forget_handshake(ws: WebSocket) -> None:
    """The opening is over: the request's headers and query string (with the token) are
    not read again, and the scope, which uvicorn and the WebSocket keep for the socket's
    life, lets them go (~1.3 KB an idle socket, bench/memprofile.py)."""
    ws.scope["headers"] = ()
    ws.scope["query_string"] = b""


# The opening of a socket is a function of its own, so its database sessions and rows
# are freed once hello is queued, not kept for the socket's lifetime by the endpoint.


async def _open_buyer(ctx: AppContext, ws: WebSocket) -> BuyerSocket | None:
    await ws.accept()
    # The token is checked and the buyer's record read (and written, if the token says
    # something new) together with every other socket opening now (app/chat/opening.py).
    try:
        buyer = await ctx.openings.buyer(_query_param(ws, "token"))
    except NotAuthenticated:
        await ws.close(CLOSE_UNAUTHORIZED)
        return None
    conn = _connection(ctx, ws, "buyer", buyer, [buyer_topic(buyer.shop_id, buyer.buyer_id)])
    # Register before reading state, so nothing committed after the read is missed.
    ctx.hub.register(conn)
    await ctx.hub.ready(conn)
    opened = await ctx.openings.opened(buyer)
    groups = await group_ws.subscribe_buyer_groups(ctx, conn, buyer, opened.group_ids)
    conv = opened.conversation
    if conv is not None:
        conn.follow(conv.id, conv.last_seq, conv.status, conv.agent_id)
    conn.start(
        {
            "type": "hello",
            "buyer_id": buyer.buyer_id,
            "elder_mode": buyer.elder_mode,
            "conversation": opened.public,
            "position": opened.position,
            "groups": groups,
        }
    )
    session = BuyerSocket(ctx, ws, conn, buyer)
    session.conversation_id = conv.id if conv is not None else None
    return session


async def _open_agent(ctx: AppContext, ws: WebSocket) -> AgentSocket | None:
    await ws.accept()
    try:
        async with ctx.db.read() as s:
            login = await shop_service.signed_in(s, _agent_credential(ws), ctx.clock.now())
    except NotAuthenticated:
        await ws.close(CLOSE_UNAUTHORIZED)
        return None
    agent = login.agent
    topics = [agent_topic(agent.id)]
    if may(agent.role, Permission.SUPERVISE_CHATS):
        topics.append(shop_staff_topic(agent.shop_id))  # approvals and other shop-wide news
    conn = _connection(ctx, ws, "agent", agent, topics, login)
    ctx.hub.register(conn)
    await ctx.hub.ready(conn)
    # Registered, the socket hears any revocation from now on; one committed between the
    # login read and now is seen by reading the session again.
    async with ctx.db.read() as s:
        still = await shop_service.session_of(s, login.token_hash, ctx.clock.now())
    if still is None or still.agent.role != agent.role:
        ctx.hub.end(conn, ENDED if still is None else ROLE_CHANGED)  # no-op if a revocation did
    if conn.ended:
        await conn.stop()
        return None
    await ctx.presence.beat([agent.id])
    async with ctx.db.read() as s:
        convs = await service.conversations_for_agent(s, agent)
        public = await service.public_conversations(s, convs)
    for c in convs:
        conn.follow(c.id, c.last_seq, c.status, c.agent_id)
    conn.start(
        {
            "type": "hello",
            "agent": {
                "id": agent.id,
                "username": agent.username,
                "display_name": agent.display_name,
                "role": agent.role,
                "max_concurrent": agent.max_concurrent,
            },
            "status": agent.status,
            "conversations": public,
        }
    )
    return AgentSocket(ctx, ws, conn, agent)


def _agent_credential(ws: WebSocket) -> str | None:
    """`?token=` (API clients), else the session cookie, which counts only from a page of
    this server: a browser sends the cookie on any site's socket, and sockets have no CORS,
    so the `Origin` header is what stops another site's page from opening one. Behind a
    proxy that rewrites `Host`, its `X-Forwarded-Host` is the page's host (a page cannot
    set that header on a socket)."""
    token = _query_param(ws, "token")
    if token:
        return token
    headers = Headers(scope=ws.scope)
    origin = headers.get("origin")
    if not any(same_origin(origin, headers.get(h)) for h in ("host", "x-forwarded-host")):
        return None
    cookies: dict[str, str] = {}
    for header in headers.getlist("cookie"):
        cookies.update(cookie_parser(header))
    return cookies.get(SESSION_COOKIE)


# Served straight from the application's entry point (see app.main.HomingApp).
SOCKETS = {"/ws/buyer": buyer_socket, "/ws/agent": agent_socket}
