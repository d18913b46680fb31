"""The frame hand-off between capture and the encoder, on Trio's mock clock: capture never
waits for a slow consumer, and what the consumer gets next is always the newest frame."""

from __future__ import annotations

import trio

from pagecast.core.page import Frame
from pagecast.session.mailbox import Mailbox


def frame(i: int) -> Frame:
    return Frame(b"jpeg%d" % i, captured_at=i / 30, index=i)


async def capture(count: int, *, capacity: int, busy: float) -> tuple[list[int], int]:
    """``count`` frames put at 30/s into a mailbox whose consumer takes ``busy`` seconds a
    frame: the indexes it got, and how many were dropped. Every put must return at once."""
    stats = {"frames_dropped": 0}
    send, receive = trio.open_memory_channel[Frame](capacity)
    box = Mailbox(send, stats)
    got: list[int] = []

    async def consumer() -> None:
        async for f in receive:
            got.append(f.index)
            await trio.sleep(busy)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.run)
        nursery.start_soon(consumer)
        for i in range(count):
            before = trio.current_time()
            box.put(frame(i))
            assert trio.current_time() == before
            await trio.sleep(1 / 30)
        await trio.sleep(1 + busy)
        nursery.cancel_scope.cancel()
    return got, stats["frames_dropped"]


async def test_a_slow_consumer_gets_the_newest_frame_and_capture_never_waits(autojump_clock):
    got, dropped = await capture(60, capacity=1, busy=0.5)  # an encoder busy for 15 frame intervals
    assert got[0] == 0 and got[-1] == 59, got  # the last frame always arrives
    assert got == sorted(got) and len(got) < 10, got  # in order, the stale ones skipped
    assert dropped == 60 - len(got)


async def test_a_consumer_that_keeps_up_gets_every_frame(autojump_clock):
    got, dropped = await capture(30, capacity=2, busy=0)
    assert got == list(range(30)) and dropped == 0


async def test_a_gone_consumer_closes_the_mailbox_without_raising(autojump_clock):
    send, receive = trio.open_memory_channel[Frame](0)
    box = Mailbox(send, {"frames_dropped": 0})
    await receive.aclose()
    box.put(frame(0))
    assert box.closed
    box.put(frame(1))  # ignored
