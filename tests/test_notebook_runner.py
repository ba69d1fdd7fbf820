"""The notebook runner's client hears a kernel's reply that has arrived even when the socket's wake-up was lost
(the stall of a widget cell on a busy machine: :func:`calirl_lite.notebook_runner.steady_replies`)."""

import asyncio
import time
from queue import Empty

import pytest
import zmq

from calirl_lite import notebook_runner
from calirl_lite.notebook_runner import REPLY_POLL_SECONDS, steady_replies


class LostWakeUp:
    """A socket whose asyncio poll never reports the message it holds (the wake-up consumed elsewhere) until the
    poll's own timeout, while asking the socket itself says a message is there."""

    def __init__(self, holding: bool) -> None:
        self.holding, self.polls = holding, []

    async def poll(self, timeout_ms):
        self.polls.append(timeout_ms)
        await asyncio.sleep(timeout_ms / 1000)
        return 0

    def getsockopt(self, option):
        assert option == zmq.EVENTS
        return zmq.POLLIN if self.holding else 0


class Channel:
    def __init__(self, socket) -> None:
        self.socket = socket

    async def _recv(self):
        return {"msg_type": "execute_reply"}


def test_a_reply_whose_wake_up_was_lost_is_read_within_one_slice():
    socket = LostWakeUp(holding=True)
    start = time.perf_counter()
    msg = asyncio.run(notebook_runner._get_msg_steadily(Channel(socket), timeout=30))
    assert msg == {"msg_type": "execute_reply"}
    assert time.perf_counter() - start < 2 * REPLY_POLL_SECONDS  # not the 30 s the whole wait would take
    assert socket.polls == [int(REPLY_POLL_SECONDS * 1000)]


def test_nothing_there_is_empty_after_the_timeout_as_before():
    socket = LostWakeUp(holding=False)
    start = time.perf_counter()
    with pytest.raises(Empty):
        asyncio.run(notebook_runner._get_msg_steadily(Channel(socket), timeout=1.2))
    assert 1.1 < time.perf_counter() - start < 2.0
    assert sum(socket.polls) == pytest.approx(1200, abs=20)  # slices of at most half a second, ending at the deadline


def test_steady_replies_replaces_the_channels_wait_once():
    from jupyter_client.channels import AsyncZMQSocketChannel

    steady_replies()
    steady_replies()
    assert AsyncZMQSocketChannel.get_msg is notebook_runner._get_msg_steadily
