"""What the ASGI server knows of one connection and ASGI does not say: under daphne, the
raw handshake and the bytes still queued for the client, and a way to write a frame built
once for every watcher. Elsewhere: unknown (None), and frames go through ASGI ``send``.

ASGI gives a consumer no backpressure: under daphne, ``await send()`` never blocks and a
slow client's frames pile up in Twisted's transport. daphne hands every application
``functools.partial(server.handle_reply, protocol)`` as its ``send`` (Channels' session
middleware wraps it in a bound method that keeps it as ``real_send``), so the protocol,
and with it the transport, can be found from the consumer's ``send``.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

#: Bytes queued for a client above which the relay holds its frames back (and later sends
#: only the newest): Twisted's own high-water mark for producers.
HIGH_WATER = 64 * 1024
#: Whether :func:`send_frame` hands a frame to the socket at once when nothing is queued
#: (one ``send()`` call), rather than through Twisted's buffer, which adds two epoll
#: changes and a loop turn per frame per connection. Off: autobahn's ``sendData``.
WRITE_NOW = True


def server_protocol(send: Any) -> Any | None:
    """daphne's protocol object behind an ASGI ``send`` callable, or None."""
    for _depth in range(8):  # middleware wrappers, outermost first
        if isinstance(send, functools.partial):
            protocol = send.args[0] if send.args else None
            return protocol if hasattr(protocol, "transport") else None
        wrapper = getattr(send, "__self__", None)
        send = getattr(wrapper, "real_send", None)
        if send is None:
            return None
    return None


def queued_bytes(protocol: Any) -> int | None:
    """Bytes written to the connection that the kernel has not taken yet (Twisted's
    buffer), or None when unknown."""
    transport = getattr(protocol, "transport", None)
    try:
        data = transport.dataBuffer  # type: ignore[union-attr]
        return len(data) - transport.offset + transport._tempDataLen  # type: ignore[union-attr]
    except (AttributeError, TypeError):
        return None


def raw_handshake(protocol: Any) -> bytes | None:
    """The handshake request exactly as the client sent it (autobahn keeps it), or None."""
    data = getattr(protocol, "http_request_data", None)
    return data if isinstance(data, bytes) else None


def allow_slow_close(protocol: Any, seconds: float) -> None:
    """Let a client that reads slowly answer our close frame: autobahn aborts the
    connection 1 s after its close frame by default, and the reset can drop the frames
    the client has not read yet (the final snapshot among them)."""
    if protocol is not None and hasattr(protocol, "closeHandshakeTimeout"):
        protocol.closeHandshakeTimeout = max(protocol.closeHandshakeTimeout or 0, seconds)


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 5.2) holding ``payload``: what
    a server sends, the same bytes for every connection, so it is built once."""
    size = len(payload)
    if size <= 125:
        return bytes((0x81, size)) + payload
    if size <= 0xFFFF:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def can_send_frames(protocol: Any) -> bool:
    """Whether :func:`send_frame` may write to this connection: daphne's (autobahn's)
    protocol without per-message compression, whose frames are not built per connection."""
    return (
        protocol is not None
        and hasattr(protocol, "sendData")
        and getattr(protocol, "_perMessageCompress", True) is None
        and hasattr(protocol, "STATE_OPEN")
    )


def send_frame(protocol: Any, frame: bytes) -> bool:
    """Write a frame made by :func:`text_frame` to an open connection (see
    :func:`can_send_frames`); False, having written nothing, if it is not open."""
    if protocol.state != protocol.STATE_OPEN:
        return False
    transport = protocol.transport
    # Nothing queued before it, so the order is kept. Twisted writes the same way
    # (writeSomeData); what the kernel does not take yet goes through its buffer.
    if (
        WRITE_NOW
        and not protocol.send_queue
        and not getattr(transport, "TLS", True)
        and transport.connected
        and not transport.disconnecting
        and queued_bytes(protocol) == 0
    ):
        try:
            sent = transport.socket.send(frame)
        except OSError:  # EAGAIN, or an error Twisted's own write meets and closes on
            sent = 0
        if sent < len(frame):
            transport.write(frame[sent:])
        return True
    protocol.sendData(frame)
    return True
