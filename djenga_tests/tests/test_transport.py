"""djenga.live.transport: the frame built once for every watcher, and when it may be used."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from djenga.live import transport


def parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_text_frame_is_one_final_unmasked_text_frame_of_the_payload(size):
    payload = ("é" * size).encode()[:size]
    frame = parse(transport.text_frame(payload))
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)


def test_frames_go_through_asgi_when_the_server_is_unknown():
    assert transport.can_send_frames(None) is False
    assert transport.can_send_frames(object()) is False


class Compressing:
    """A protocol that negotiated per-message deflate: its frames are built per connection."""

    STATE_OPEN = 3
    _perMessageCompress = object()

    def sendData(self, data: bytes) -> None: ...


def test_no_shared_frame_for_a_compressed_connection():
    assert transport.can_send_frames(Compressing()) is False
