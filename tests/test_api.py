"""The control API: sessions start, go live, stop and fail with clear reasons; bad input
gets a 4xx that says what to fix and leaves no process behind."""

from __future__ import annotations

import subprocess

import pytest
import trio

from helpers import lo, client_of, jpeg_size, media_processes, no_media_processes, running_service, session, wait_for, wait_state
from pagecast.lowlevel.proc import descendants, is_chromium, is_ffmpeg


@pytest.mark.parametrize(
    "content, headers, status, message",
    [
        (b"{not json", {"content-type": "application/json"}, 400, "not valid JSON"),
        (b'"just a string"', {"content-type": "application/json"}, 400, "must be a JSON object"),
        (b'{"url": "file:///etc/passwd"}', {"content-type": "application/json"}, 400, "http:// or https://"),
        (b'{"url": "javascript:alert(1)"}', {"content-type": "application/json"}, 400, "http:// or https://"),
        (b'{"url": "http://x/", "quality": "8k"}', {"content-type": "application/json"}, 400, "unknown quality"),
        (b'{"url": "http://x/", "duration": "long"}', {"content-type": "application/json"}, 400, "'duration' must be a number"),
        (b'{"url": "http://x/"}', {"content-type": "application/xml"}, 415, "Content-Type: application/json"),
        (b'{"url": "http://x/", "pad": "' + b"x" * 70000 + b'"}', {"content-type": "application/json"}, 413, "at most 65536"),
        (b'\xff\xfe{}', {"content-type": "application/json"}, 400, "not UTF-8"),
        (b'{"url": "http://x/", "device": "TV", "keep_on": False}', {"content-type": "application/json"}, 400,
         "False at line 1 column 49 looks like a Python value from a template: in Home Assistant write {{ value | tojson }}"),
        (b'{"url": "http://x/", "durration": 60}', {"content-type": "application/json"}, 400, "unknown field 'durration'; did you mean 'duration'?"),
    ],
)
async def test_bad_start_requests_get_a_4xx_and_start_nothing(client, content, headers, status, message):
    response = await client.post("/start", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert (await client.get("/status")).json()["sessions"] == []
    assert not media_processes()


async def test_unknown_session_and_routes_get_404_with_a_message(client):
    assert "no session" in (await client.get("/sessions/nope")).json()["error"]
    assert (await client.post("/stop", json={"id": "nope"})).status_code == 404
    assert (await client.get("/streams/nope/index.m3u8")).status_code == 404
    response = await client.get("/no/such/thing")
    assert response.status_code == 404 and "error" in response.json()


async def test_health_answers(client):
    data = (await client.get("/health")).json()
    assert data["status"] == "ok" and data["sessions"] == 0 and "1080p" in data["presets"]


async def test_session_goes_live_serves_hls_and_stops_leaving_nothing(client, pages):
    response = await client.post("/start", json={"url": f"{pages}/dashboard.html", "quality": "720p"})
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["state"] == "starting" and started["stream_url"].endswith(f"/streams/{started['id']}/index.m3u8")
    live = await wait_state(client, started["id"], "live", "failed")
    assert live["state"] == "live", live
    playlist = await client.get(f"/streams/{started['id']}/index.m3u8")
    assert playlist.status_code == 200
    assert playlist.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert playlist.headers["access-control-allow-origin"] == "*"
    assert "no-store" in playlist.headers["cache-control"] and "etag" not in playlist.headers
    text = playlist.text
    assert "#EXT-X-ENDLIST" not in text and "#EXT-X-PLAYLIST-TYPE" not in text
    assert '#EXT-X-MAP:URI="init-0.mp4"' in text
    segment = text.strip().splitlines()[-1]
    seg = await client.get(f"/streams/{started['id']}/{segment}")
    assert seg.status_code == 200 and seg.content[4:8] == b"moof"
    part = await client.get(f"/streams/{started['id']}/{segment}", headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and len(part.content) == 8
    assert part.headers["content-range"] == f"bytes 0-7/{len(seg.content)}"
    bad = await client.get(f"/streams/{started['id']}/{segment}", headers={"Range": f"bytes={len(seg.content) + 10}-"})
    assert bad.status_code == 416
    init = await client.get(f"/streams/{started['id']}/init-0.mp4")
    assert init.content[4:8] == b"ftyp"
    assert descendants(kind=is_chromium) and descendants(kind=is_ffmpeg)

    stopped = await client.post("/stop", json={"id": started["id"]})
    assert stopped.json()["stopped"] == [started["id"]]
    final = await wait_state(client, started["id"], "stopped")
    assert final["stop_reason"] == "stopped by API" and final["frames"]["encoded"] >= 1
    await no_media_processes()


async def test_a_sessions_thumbnail_is_its_newest_picture_small_and_made_at_most_once_a_second(client, pages):
    assert (await client.get("/sessions/nope/thumbnail.jpg")).status_code == 404
    started = (await client.post("/start", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()
    url = f"/sessions/{started['id']}/thumbnail.jpg"
    early = await client.get(url)  # Chromium is still starting: no picture yet, not a server error
    assert early.status_code == 404 and "no picture yet" in early.json()["error"] and early.headers["retry-after"] == "1"
    await wait_state(client, started["id"], "live")
    first = await client.get(url)
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert first.headers["cache-control"] == "max-age=1" and first.headers["access-control-allow-origin"] == "*"
    assert jpeg_size(first.content) == (480, 270)
    again = await client.get(url)
    assert again.content == first.content  # within the second: the same picture, no new FFmpeg
    await client.post("/stop", json={"id": started["id"]})
    await wait_state(client, started["id"], "stopped")
    gone = await client.get(url)
    assert gone.status_code == 410 and "keeps no picture" in gone.json()["error"]


async def test_a_portrait_page_is_laid_out_upright_and_sent_turned_for_a_tv_on_its_side(client, pages):
    started = (await client.post("/start?wait=1", json={"url": f"{pages}/corner.html", "quality": "portrait"})).json()
    assert started["state"] == "live" and (started["width"], started["height"], started["rotate"]) == (1080, 1920, 90), started
    picture = (await client.get(f"/sessions/{started['id']}/thumbnail.jpg")).content
    await client.post("/stop", json={"id": started["id"]})
    assert jpeg_size(picture) == (480, 270)  # the video is the TV's 1920×1080
    rgb = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
                         input=picture, capture_output=True, check=True).stdout

    def red(x: int, y: int) -> bool:
        r, g, b = rgb[(y * 480 + x) * 3:(y * 480 + x) * 3 + 3]
        return r > 180 and b < 90

    # The page's top-left corner is at the picture's bottom-left: the TV's left edge is up.
    assert red(10, 260) and not red(10, 10) and not red(470, 260) and not red(470, 10)


async def test_fmp4_session_streams_init_then_fragments_to_several_viewers(client, pages):
    started = (await client.post("/start", json={"url": f"{pages}/dashboard.html", "quality": "720p", "mode": "fmp4"})).json()
    assert started["stream_url"].endswith("/live.mp4")
    await wait_state(client, started["id"], "live")

    async def read_some(into: list):
        async with client.stream("GET", f"/streams/{started['id']}/live.mp4") as response:
            assert response.headers["content-type"] == "video/mp4"
            data = b""
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > 4096:
                    break
            into.append(data)

    results: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_some, results)
        nursery.start_soon(read_some, results)
    assert len(results) == 2 and all(r[4:8] == b"ftyp" and b"moof" in r for r in results)
    await client.post("/stop", json={})


async def test_duration_ends_the_session_by_itself(client, pages):
    started = (await client.post("/start", json={"url": f"{pages}/dashboard.html", "quality": "720p", "duration": 3})).json()
    final = await wait_state(client, started["id"], "stopped", "failed", timeout=25)
    assert final["state"] == "stopped" and "duration" in final["stop_reason"]


@pytest.mark.parametrize(
    "path, message",
    [
        ("/missing", "404"),
        ("/broken", "500"),
        ("/ha/lovelace", "credentials"),
    ],
)
async def test_page_that_fails_to_load_fails_the_session_with_a_reason(client, pages, path, message):
    started = (await client.post("/start", json={"url": f"{pages}{path}", "quality": "720p"})).json()
    final = await wait_state(client, started["id"], "failed", "live", timeout=25)
    assert final["state"] == "failed" and message in final["error"], final
    await no_media_processes()


async def test_unresolvable_host_fails_with_a_dns_error(client):
    response = await client.post("/start?wait=1", json={"url": "http://no-such-host.invalid/", "quality": "720p"})
    assert response.status_code == 422
    assert "ERR_NAME_NOT_RESOLVED" in response.json()["error"]


@pytest.mark.parametrize("device, status, message", [
    ("Kitchen TV", 404, "no Cast device 'Kitchen TV'"),
    ("127.0.0.254", 409, "no Cast device answers at 127.0.0.254"),
    ("no-such-tv.invalid", 404, "cannot resolve that host name"),
    ("a..b", 404, "cannot resolve that host name"),
    ("  ", 400, "'device' is empty"),
])
async def test_a_device_that_is_unknown_or_unreachable_gets_a_clear_error_and_starts_nothing(client, pages, device, status, message):
    response = await client.post("/start", json={"url": f"{pages}/dashboard.html", "device": device})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert (await client.get("/status")).json()["sessions"] == []
    assert not media_processes()


async def test_devices_lists_nothing_when_no_device_is_configured_or_found(client):
    data = (await client.get("/devices")).json()
    assert data["devices"] == [] and data["mdns"] is False and data["static_hosts"] == []


async def test_start_cancelled_half_way_leaves_nothing(client, pages):
    """A stop while Chromium is still loading the page (it never answers) ends the start:
    the session is stopped, not failed, and leaves nothing."""
    started = (await client.post("/start", json={"url": f"{pages}/hang", "quality": "720p"})).json()
    loading = await wait_for(lambda: session(client, started["id"]), lambda d: d["children"]["renderer"]["pid"] is not None)
    assert loading["state"] == "starting", loading
    assert (await client.post("/stop", json={"id": started["id"]})).json() == {"stopped": [started["id"]]}
    final = await wait_state(client, started["id"], "stopped", "failed")
    assert final["state"] == "stopped"
    await no_media_processes()


async def test_a_stop_for_a_device_nobody_knows_is_a_404_naming_the_known_ones_and_a_known_idle_tv_stops_nothing(nursery, tmp_path):
    from pagecast.virtual_tv import open_virtual_tv

    async with open_virtual_tv(host=lo("127.0.44.2"), name="Living Room TV", player="ffmpeg"), \
            running_service(nursery, tmp_path, cast_hosts=(lo("127.0.44.2"),)) as svc, client_of(svc) as api:
        await wait_for(svc.directory.list, timeout=10)
        typo = await api.post("/stop", json={"device": "Livingroom TV"})
        assert typo.status_code == 404
        assert f"no Cast device 'Livingroom TV'; known devices: 'Living Room TV' ({lo('127.0.44.2')})" in typo.json()["error"]
        start = await api.post("/start", json={"url": "http://127.0.0.1:9/", "device": "Livingroom TV"})
        assert (start.status_code, start.json()["error"]) == (404, typo.json()["error"])  # one message for one mistake
        idle = await api.post("/stop", json={"device": "living room tv"})
        assert (idle.status_code, idle.json()) == (200, {"stopped": []})
        assert (await api.post("/stop", json={})).json() == {"stopped": []}
