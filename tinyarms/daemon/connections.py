"""The daemon's connections: who may connect, how each request is read and answered, and the
events sent to a connection that subscribed.

Each connection is read with a deadline and a size cap, so garbage, a silent client, a client
that hangs up half-way or an oversized request costs the daemon one error reply and nothing
else. Only the daemon's own user may connect (the peer's credentials, on top of the socket's
0600). A connection that subscribes (``op: subscribe``, the language server) then only receives
events, until it hangs up.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from tinyarms import __version__, protocol

EVENTS_QUEUED = 256  # events held for one slow subscriber; past that the oldest are lost to it
# LOCAL_PEERCRED's struct xucred: cr_version and cr_uid, cr_ngroups, then NGROUPS (16) gid_t
_XUCRED_SIZE = struct.calcsize("2I") + 2 + 16 * 4

# A request line -> (the reply, the request's op when it had a valid one)
Answer = Callable[[bytes], Awaitable[tuple[dict[str, Any], str | None]]]


class Connections:
    """``handle`` serves one connection (``asyncio.start_unix_server``'s callback); ``publish``
    hands an event to every subscribed connection, from any thread.

    ``answer`` answers a request line; ``refused(message)`` records a peer turned away; ``stop()``
    is called after the reply to ``op: shutdown``."""

    def __init__(self, answer: Answer, request_timeout: float, refused: Callable[[str], None],
                 stop: Callable[[], None]) -> None:
        self.answer = answer
        self.request_timeout = request_timeout
        self.refused = refused
        self.stop = stop
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None  # the serving loop, once serving

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            refusal = _peer_refusal(writer.get_extra_info("socket"))
            if refusal:
                self.refused(refusal)
                await _send(writer, protocol.reply_error(__version__, protocol.FORBIDDEN, refusal))
                return
            while True:
                try:
                    line = await asyncio.wait_for(reader.readuntil(b"\n"), self.request_timeout)
                except asyncio.IncompleteReadError:
                    return  # the client hung up, maybe half-way through a request: nothing to answer
                except TimeoutError:
                    await _send(writer, protocol.reply_error(
                        __version__, protocol.TIMEOUT, f"no complete request within {self.request_timeout:g} s"))
                    return
                except asyncio.LimitOverrunError:
                    await _send(writer, protocol.reply_error(
                        __version__, protocol.TOO_LARGE, f"request over the {protocol.MAX_MESSAGE}-byte limit"))
                    return
                reply, op = await self.answer(line)
                await _send(writer, reply)
                if op == "shutdown":
                    self.stop()
                    return
                if op == "subscribe" and reply["ok"]:
                    await self._stream_events(reader, writer)
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _stream_events(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send this subscriber every event until it hangs up (or sends anything: a subscription
        carries no requests). No deadline: an editor keeps it open for its whole session."""
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(EVENTS_QUEUED)
        self.subscribers.add(events)
        hangup = asyncio.ensure_future(reader.read(1))
        try:
            while True:
                event = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({event, hangup}, return_when=asyncio.FIRST_COMPLETED)
                if hangup in done:
                    event.cancel()
                    return
                await _send(writer, {"v": protocol.PROTOCOL, **event.result()})
        finally:
            self.subscribers.discard(events)
            hangup.cancel()

    def publish(self, event: dict[str, Any]) -> None:
        """Hand ``event`` to every subscriber; callable from any thread."""
        loop = self.loop
        if loop is None or loop.is_closed() or not self.subscribers:
            return

        def deliver() -> None:
            for events in list(self.subscribers):
                if events.full():
                    events.get_nowait()  # a subscriber that does not read loses the oldest, not the daemon
                events.put_nowait(event)

        try:
            loop.call_soon_threadsafe(deliver)
        except RuntimeError:  # the loop closed between the check and the call: shutting down
            return


async def _send(writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
    try:
        writer.write(protocol.encode(reply))
    except protocol.ProtocolError as exc:  # a result too big for the wire is still an answer
        writer.write(protocol.encode(protocol.reply_error(__version__, exc.code, exc.message)))
    await writer.drain()


def _peer_refusal(sock: socket.socket | None) -> str | None:
    """Why this peer may not talk to us, or None. Only the daemon's own user may connect."""
    if sock is None:
        return "cannot identify the peer"
    uid = _peer_uid(sock)
    if uid is None:
        return "cannot read the peer's credentials"
    if uid != os.getuid():
        return f"uid {uid} may not use the tinyarms daemon of uid {os.getuid()}"
    return None


def _peer_uid(sock: socket.socket) -> int | None:
    try:
        if hasattr(socket, "SO_PEERCRED"):  # Linux: struct ucred {pid_t pid; uid_t uid; gid_t gid;}
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            uid: int = struct.unpack("3i", creds)[1]
            return uid
        if sys.platform == "darwin":  # LOCAL_PEERCRED: struct xucred {u_int version; uid_t uid; ...}
            creds = sock.getsockopt(0, 0x001, _XUCRED_SIZE)
            return struct.unpack_from("2I", creds)[1]
    except OSError:
        return None
    return None
