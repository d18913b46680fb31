"""The encoder: sparse frames in, fragmented MP4 with a keyframe per segment out."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
from collections import deque
from types import SimpleNamespace

import pytest
import trio

from pagecast.core.errors import EncodeError
from pagecast.core.cadence import AUDIO_LEAD
from pagecast.core.ffmpeg import AUDIO_FRAME_SAMPLES, AUDIO_RATE, SILENT_AAC_FRAME, Dense, EncoderStats, EncodeSpec, classify_stderr, ffmpeg_args, ivf_frame, ivf_header, last_words
from pagecast.session.encode import run_encoder, write_frames

SPEC = EncodeSpec(width=320, height=180, fps=10, bitrate_kbps=500, segment_duration=1.0, x264_preset="ultrafast")


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> list[bytes]:
    out = []
    d = tmp_path_factory.mktemp("jpegs")
    for i, color in enumerate(("red", "green", "blue")):
        path = d / f"{i}.jpg"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"color={color}:s=320x180", "-frames:v", "1", str(path)], check=True)
        out.append(path.read_bytes())
    return out


class Collect:
    def __init__(self):
        self.data = bytearray()

    def feed(self, data: bytes) -> None:
        self.data += data

    def first_capture(self, wallclock: float) -> None:
        pass


def ffprobe_frames(data: bytes) -> list[dict]:
    out = subprocess.run(
        ["ffprobe", "-loglevel", "error", "-select_streams", "v", "-show_entries", "frame=pts_time,key_frame,width,height", "-of", "json", "-"],
        input=bytes(data), capture_output=True, check=True,
    )
    return json.loads(out.stdout)["frames"]


def test_arguments_ask_for_cast_compatible_h264_and_silent_aac():
    args = ffmpeg_args("ffmpeg", EncodeSpec(1920, 1080, 30, 6000), frames_fd=7, audio_fd=9)
    joined = " ".join(args)
    assert "/dev/fd/7" in args and "/dev/fd/9" in args
    assert "-profile:v high" in joined and "-level:v 4.1" in joined and "-pix_fmt yuv420p" in joined
    assert "-f aac" in joined and "-c:a copy" in joined
    assert "expr:gte(t,n_forced*1)" in joined
    assert "+frag_every_frame+empty_moov+delay_moov+default_base_moof" in joined
    assert "pipe:" not in joined.replace("pipe:1", "")  # stdin stays free for 'q'


def test_ivf_frames_carry_their_own_timestamps():
    assert ivf_header(320, 180, 10)[:4] == b"DKIF" and len(ivf_header(320, 180, 10)) == 32
    frame = ivf_frame(b"xyz", 42)
    assert frame[:4] == (3).to_bytes(4, "little") and frame[4:12] == (42).to_bytes(8, "little") and frame[12:] == b"xyz"


def test_progress_lines_are_debug_and_errors_are_warnings():
    import logging

    assert classify_stderr("frame=  10 fps=0.0 q=-1.0 size=       0kB") == logging.DEBUG
    assert classify_stderr("[mjpeg @ 0x1] error in the bitstream") == logging.WARNING


def test_ffmpegs_last_words_leave_out_the_stream_banner_it_prints_on_every_run():
    lines = [
        "Output #0, mp4, to 'pipe:1':",
        "  Metadata:",
        "    encoder         : Lavf59.27.100",
        "  Stream #0:0: Video: h264 (avc1 / 0x31637661), yuv420p, 1280x720, 30 fps",
        "      encoder         : Lavc59.37.100 libx264",
        "    Side data:",
        "      cpb: bitrate max/min/avg: 3500000/0/0 buffer size: 7000000 vbv_delay: N/A",
        "[s16le @ 0x5597ae1cbf00] Thread message queue blocking; consider raising the thread_queue_size option",
        "pipe:0: Invalid data found when processing input",
        "frame=  10 fps=0.0 q=-1.0 size=       0kB",
    ]
    assert last_words(lines) == (
        "[s16le @ 0x5597ae1cbf00] Thread message queue blocking; consider raising the thread_queue_size option"
        " | pipe:0: Invalid data found when processing input"
    )
    assert last_words(lines[:7]) == "no output"


class Pipe:
    """A send stream that keeps what was written, and when (Trio's clock)."""

    def __init__(self):
        self.writes: list[tuple[float, bytes]] = []

    async def send_all(self, data: bytes) -> None:
        self.writes.append((trio.current_time(), bytes(data)))
        await trio.lowlevel.checkpoint()


def ivf_frames(pipe: Pipe, t0: float) -> list[tuple[int, int, bytes]]:
    """(ms after t0 it was written, pts, jpeg) of each IVF frame in the pipe."""
    out = []
    for i, (at, data) in enumerate(pipe.writes):
        if i == 0:
            assert data[:32] == ivf_header(320, 240, 10)
            data = data[32:]
        size, pts = struct.unpack("<IQ", data[:12])
        assert len(data) == 12 + size
        out.append((round((at - t0) * 1000), pts, data[12:]))
    return out


async def test_writer_carries_out_the_cadence_on_trios_clock(autojump_clock):
    spec = EncodeSpec(320, 240, 10, 500, flush_frames=False)
    send, recv = trio.open_memory_channel(0)
    video, audio, stats, captures = Pipe(), Pipe(), EncoderStats(), deque()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: write_frames(spec, recv, video, audio, stats=stats, captures=captures))
        await send.send(Dense(5.0))  # before the first frame there is nothing to repeat: ignored
        await trio.sleep(1.0)
        t0 = trio.current_time()
        await send.send(SimpleNamespace(jpeg=b"A", captured_at=t0))
        await trio.sleep(0.45)
        await send.send(SimpleNamespace(jpeg=b"B", captured_at=t0 + 0.45))
        await trio.sleep(0.8)
        nursery.cancel_scope.cancel()
    assert ivf_frames(video, t0) == [(0, 0, b"A"), (100, 1, b"A"), (450, 5, b"B"), (1000, 10, b"B"), (1100, 11, b"B")]
    frames = -(-int((1.1 + AUDIO_LEAD) * AUDIO_RATE) // AUDIO_FRAME_SAMPLES)
    assert b"".join(data for _, data in audio.writes) == SILENT_AAC_FRAME * frames
    assert [round((at - t0) * 1000) for at, _ in audio.writes] == [0, 100, 450, 1000, 1100]
    assert list(captures) == [t0, None, t0 + 0.45, None, None]
    assert (stats.frames_in, stats.frames_out, stats.repeats, stats.started_at) == (2, 5, 3, t0)


async def test_sparse_frames_get_a_keyframe_at_every_segment_boundary(jpegs):
    sink, stats = Collect(), EncoderStats()
    send, recv = trio.open_memory_channel(1)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_encoder(SPEC, "ffmpeg", recv, sink, stats=stats, task_status=task_status))
        for i in range(3):
            await send.send(SimpleNamespace(jpeg=jpegs[i], captured_at=trio.current_time()))
            await trio.sleep(1.1)
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    frames = ffprobe_frames(sink.data)
    assert frames and frames[0]["key_frame"] == 1 and frames[0]["width"] == 320
    keys = [float(f["pts_time"]) for f in frames if f["key_frame"]]
    assert len(keys) >= 3
    assert all(k2 - k1 <= 1.2 for k1, k2 in zip(keys, keys[1:])), (keys, [(f["pts_time"], f["key_frame"]) for f in frames])
    assert len(frames) < 3 * SPEC.fps  # sparse: nowhere near one frame per tick
    assert stats.frames_in == 3 and stats.repeats >= 1


async def test_cancelled_encoder_stops_ffmpeg_politely(jpegs, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="pagecast.lowlevel.proc")
    send, recv = trio.open_memory_channel(1)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_encoder(SPEC, "ffmpeg", recv, Collect(), task_status=task_status))
        await send.send(SimpleNamespace(jpeg=jpegs[0], captured_at=trio.current_time()))
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    stopped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped <Child ffmpeg")]
    assert stopped and "exited with status 0" in stopped[0], stopped  # 'q' worked: no SIGTERM, no SIGKILL
    assert not any("SIGTERM" in r.getMessage() for r in caplog.records)


async def test_encoder_that_dies_reports_ffmpeg_last_lines(jpegs):
    import psutil

    send, recv = trio.open_memory_channel(1)
    with pytest.raises(BaseExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_encoder(SPEC, "ffmpeg", recv, Collect(), task_status=task_status))
            await send.send(SimpleNamespace(jpeg=jpegs[0], captured_at=trio.current_time()))
            await trio.sleep(0.5)
            for p in psutil.Process().children(recursive=True):
                if "ffmpeg" in p.name():
                    os.kill(p.pid, signal.SIGKILL)
            await trio.sleep(5)
    err = info.value.split(EncodeError)[0]
    assert err is not None
    while isinstance(err, BaseExceptionGroup):
        err = err.exceptions[0]
    message = str(err)
    assert "FFmpeg exited with status -9" in message and "libx264" in message


def test_a_turned_tv_gets_the_picture_turned_back_before_it_is_scaled():
    args = " ".join(ffmpeg_args("ffmpeg", EncodeSpec(1920, 1080, 30, 6000, rotate=90), frames_fd=3, audio_fd=4))
    assert "-vf transpose=2,scale=1920:1080:out_range=tv,format=yuv420p" in args
    assert "transpose=1," in " ".join(ffmpeg_args("ffmpeg", EncodeSpec(1920, 1080, 30, 6000, rotate=270), frames_fd=3, audio_fd=4))
    assert "transpose" not in " ".join(ffmpeg_args("ffmpeg", EncodeSpec(1920, 1080, 30, 6000), frames_fd=3, audio_fd=4))
