"""Encoder backends: their arguments, the startup probe, and the mid-session fallback to
software. This machine has no GPU, so every hardware backend fails here, for a stated reason."""

from __future__ import annotations

import json
import subprocess
from functools import partial

import httpx
import pytest
import trio

from pagecast.core.ffmpeg import EncodeSpec, ffmpeg_args
from pagecast.core.encoders import AUTO_ORDER, HARDWARE, LIBX264, NVENC, QSV, V4L2M2M, VAAPI, explain, parse_order
from pagecast.lowlevel import proc
from pagecast.session.encoder_probe import PROBE_JPEG, EncoderChoice, probe, probe_all, probe_spec
from pagecast.core.settings import ConfigError, Settings

SPEC = EncodeSpec(1920, 1080, 30, 6000, segment_duration=1.0)


def joined(backend: str, spec: EncodeSpec = SPEC) -> str:
    return " ".join(ffmpeg_args("ffmpeg", spec, frames_fd=7, audio_fd=9, backend=backend))


@pytest.mark.parametrize(
    "backend, flags",
    [
        (LIBX264, ["-c:v libx264", "-crf 23", "-maxrate 6000k", "-profile:v high", "-level:v 4.1", "bframes=0", "-sc_threshold 0"]),
        (VAAPI, ["-init_hw_device vaapi=va:/dev/dri/renderD128 -filter_hw_device va", "format=nv12,hwupload", "-c:v h264_vaapi",
                 "-profile:v high", "-level:v 41", "-global_quality 25", "-maxrate 6000k", "-bf 0", "-async_depth 1"]),
        (QSV, ["-init_hw_device vaapi=va:/dev/dri/renderD128 -init_hw_device qsv=qs@va -filter_hw_device qs", "hwupload",
               "-c:v h264_qsv", "-profile:v high", "-level:v 41", "-global_quality 25", "-b:v 4500k -maxrate 6000k",
               "-look_ahead 0", "-bf 0", "-forced_idr 1"]),
        (NVENC, ["-init_hw_device cuda=cu:0 -filter_hw_device cu", "format=nv12,hwupload", "-c:v h264_nvenc", "-profile:v high",
                 "-level:v 4.1", "-rc vbr -cq 25 -b:v 0 -maxrate 6000k", "-bf 0", "-zerolatency 1", "-delay 0", "-forced-idr 1"]),
        (V4L2M2M, ["-c:v h264_v4l2m2m", "-profile:v 100", "-b:v 6000k", "-bf 0", "format=yuv420p"]),
    ],
)
def test_each_backend_owns_its_encoder_arguments(backend, flags):
    args = joined(backend)
    for flag in flags:
        assert flag in args, (flag, args)
    # What every backend shares with the software path: keyframes at segment boundaries only,
    # the IVF and silence inputs, frame timing passed through, the session's fMP4 output.
    assert "-force_key_frames expr:gte(t,n_forced*1)" in args and f"-g {30 * 60}" in args
    assert "/dev/fd/7" in args and "-f aac" in args and "/dev/fd/9" in args
    assert "-fps_mode passthrough -r 30" in args and "-c:a copy" in args
    assert args.endswith("-f mp4 -movflags +frag_every_frame+empty_moov+delay_moov+default_base_moof -flush_packets 1 pipe:1")
    if "-init_hw_device" in args:  # device options come before the inputs
        assert args.index("-init_hw_device") < args.index("-i ")


def test_device_and_level_follow_the_spec():
    spec = EncodeSpec(3840, 2160, 30, 20000, segment_duration=0.5, hw_device="/dev/dri/renderD129")
    assert "vaapi=va:/dev/dri/renderD129" in joined(VAAPI, spec) and "vaapi=va:/dev/dri/renderD129" in joined(QSV, spec)
    assert "-level:v 51" in joined(VAAPI, spec) and "-level:v 5.1" in joined(NVENC, spec)
    assert "expr:gte(t,n_forced*0.5)" in joined(NVENC, spec)


def test_encoder_setting_takes_auto_one_name_or_an_order():
    assert parse_order("auto") == AUTO_ORDER and AUTO_ORDER[-1] == LIBX264
    assert parse_order("vaapi") == (VAAPI,)
    assert parse_order("qsv, h264_vaapi,x264") == (QSV, VAAPI, LIBX264)
    with pytest.raises(ConfigError, match="PAGECAST_ENCODER='amf'.*unknown encoder 'amf'"):
        Settings.from_env({"PAGECAST_ENCODER": "amf"})
    assert Settings.from_env({"PAGECAST_ENCODER": "nvenc,vaapi"}).encoder == "nvenc,vaapi"


@pytest.mark.parametrize(
    "backend, stderr, reason",
    [
        (VAAPI, "libva info: Trying to open /usr/lib/x86_64-linux-gnu/dri/iHD_drv_video.so\nlibva info: va_openDriver() returns 1\n"
                "Failed to initialise VAAPI connection: 1 (operation failed).", "VA driver iHD failed to initialise; try LIBVA_DRIVER_NAME=i965"),
        (VAAPI, "libva info: Trying to open /usr/lib/dri/i965_drv_video.so\nva_openDriver() returns -1", "try LIBVA_DRIVER_NAME=iHD"),
        (VAAPI, "[AVHWDeviceContext] Failed to open /dev/dri/renderD128: Permission denied", "permission denied on /dev/dri/renderD128 — add the user to the render group"),
        (VAAPI, "[h264_vaapi @ 0x1] No usable encoding profile found.", "unsupported profile"),
        (QSV, "[h264_qsv @ 0x1] Current profile is unsupported", "unsupported profile"),
        (NVENC, "[h264_nvenc @ 0x1] Cannot load libcuda.so.1", "no NVIDIA device/driver"),
        (NVENC, "[h264_nvenc @ 0x1] OpenEncodeSessionEx failed: out of memory (10)", "session limit"),
        (V4L2M2M, "Unknown encoder 'h264_v4l2m2m'", "encoder not in this FFmpeg build"),
        (V4L2M2M, "[h264_v4l2m2m @ 0x1] Could not find a valid device", "no V4L2 memory-to-memory H.264 encoder"),
    ],
)
def test_failures_are_explained_in_words_a_user_can_act_on(backend, stderr, reason):
    assert reason in explain(backend, stderr)


async def test_the_probe_on_this_machine_finds_only_software_and_says_why():
    results = await probe_all("ffmpeg", AUTO_ORDER)
    assert list(results) == list(AUTO_ORDER)
    assert results[LIBX264].ok and results[LIBX264].reason == "works"
    for backend in HARDWARE:
        r = results[backend]
        assert not r.ok and r.reason and r.reason != "test encode failed", r
        assert 0 < r.seconds < 5
    assert results[VAAPI].reason in ("no /dev/dri/renderD128", "encoder not in this FFmpeg build") or "VA" in results[VAAPI].reason
    assert "NVIDIA" in results[NVENC].reason or "not in this FFmpeg build" in results[NVENC].reason


@pytest.mark.parametrize("backend", [LIBX264, VAAPI])
async def test_the_probe_runs_the_sessions_own_ffmpeg_command(backend, monkeypatch):
    ran = []
    spawn = proc.spawn

    def recording_spawn(argv, **kwargs):
        def build(fds):
            ran.append((fds, list(argv(fds) if callable(argv) else argv)))
            return ran[-1][1]

        return spawn(build, **kwargs)

    monkeypatch.setattr(proc, "spawn", recording_spawn)
    result = await probe("ffmpeg", backend)
    assert result.ok == (backend == LIBX264), result
    [(fds, argv)] = ran
    assert argv == ffmpeg_args("ffmpeg", probe_spec(), frames_fd=fds[0], audio_fd=fds[1], backend=backend)


def test_the_probe_frame_is_a_jpeg_of_the_probe_size():
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json", "-"],
        input=PROBE_JPEG, capture_output=True, check=True,
    )
    spec = probe_spec()
    assert json.loads(out.stdout)["streams"] == [{"codec_name": "mjpeg", "width": spec.width, "height": spec.height}]


async def test_a_test_encode_that_hangs_is_cut_short():
    r = await probe("ffmpeg", LIBX264, timeout=0.01)
    assert not r.ok and "did not finish within" in r.reason


async def test_an_ffmpeg_that_cannot_run_is_a_reason_not_an_error():
    r = await probe("/nonexistent/ffmpeg", LIBX264)
    assert not r.ok and r.reason.startswith("cannot run FFmpeg:") and "/nonexistent/ffmpeg" in r.reason


async def test_auto_picks_libx264_here_and_a_forced_backend_that_fails_falls_back_with_a_note():
    auto = EncoderChoice("ffmpeg", "auto")
    await auto.run()
    assert await auto.backend() == LIBX264 and auto.note is None
    forced = EncoderChoice("ffmpeg", "vaapi")
    await forced.run()
    assert await forced.backend() == LIBX264
    assert "PAGECAST_ENCODER=vaapi did not work" in forced.note and "using libx264" in forced.note
    health = forced.health()
    assert health["chosen"] == LIBX264 and [p["backend"] for p in health["probes"]] == [VAAPI, LIBX264]


async def test_health_reports_the_chosen_encoder_and_every_probe(client):
    with trio.fail_after(10):
        while (encoder := (await client.get("/health")).json()["encoder"])["probing"]:
            await trio.sleep(0.1)
    assert encoder["setting"] == "auto" and encoder["chosen"] == LIBX264
    probes = {p["backend"]: p for p in encoder["probes"]}
    assert set(probes) == set(AUTO_ORDER)
    assert probes[LIBX264]["ok"] and not any(probes[b]["ok"] for b in HARDWARE)
    assert all(p["reason"] and p["seconds"] >= 0 for p in probes.values())


@pytest.fixture
async def hw_client(nursery, tmp_path):
    """A service whose encoder is h264_vaapi, set without a probe: it fails on this machine."""
    from pagecast.server.service import Service

    settings = Settings.from_env({}, host="127.0.0.1", port=0, runtime_dir=str(tmp_path / "runtime"), load_timeout=10.0, mdns=False)
    svc = Service(settings, encoders=EncoderChoice.unprobed(VAAPI))
    await nursery.start(partial(svc.run, handle_signals=False))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=30) as c:
            yield c
    finally:
        svc.shutdown()
        with trio.fail_after(15):
            await svc.stopped.wait()


async def test_a_hardware_encoder_that_fails_in_a_session_is_replaced_by_software_in_the_same_stream(hw_client, pages):
    r = await hw_client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["state"] == "live"
    status = (await hw_client.get(f"/sessions/{started['id']}")).json()
    encoder = status["encoder"]
    assert encoder["backend"] == LIBX264 and encoder["fell_back_from"] == VAAPI and encoder["fallbacks"] == 1
    assert "FFmpeg exited" in encoder["reason"] and "renderD128" in encoder["reason"]
    assert status["encoder_restarts"] == 0  # a fallback is not an ordinary restart
    playlist = (await hw_client.get(f"/streams/{started['id']}/index.m3u8")).text
    segments = [line for line in playlist.splitlines() if line.startswith("seg-")]
    assert segments and "#EXT-X-DISCONTINUITY\n" not in playlist  # the hardware run published nothing
    seg = await hw_client.get(f"/streams/{started['id']}/{segments[0]}")
    assert seg.status_code == 200 and len(seg.content) > 1000
    health = (await hw_client.get("/health")).json()["encoder"]
    assert health["chosen"] == VAAPI and health["session_fallbacks"] == 1 and health["last_fallback"]["from"] == VAAPI
    await hw_client.post("/stop", json={"id": started["id"]})
