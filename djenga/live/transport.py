"""What the ASGI server knows of one connection and ASGI does not say: under daphne, the
raw handshake and the bytes still queued for the client. Elsewhere: unknown (None).

ASGI gives a consumer no backpressure: under daphne, ``await send()`` never blocks and a
slow client's frames pile up in Twisted's transport. daphne hands every application
``functools.partial(server.handle_reply, protocol)`` as its ``send`` (Channels' session
middleware wraps it in a bound method that keeps it as ``real_send``), so the protocol,
and with it the transport, can be found from the consumer's ``send``.
"""

from __future__ import annotations

import functools
from typing import Any

#: Bytes queued for a client above which the relay holds its frames back (and later sends
#: only the newest): Twisted's own high-water mark for producers.
HIGH_WATER = 64 * 1024


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
