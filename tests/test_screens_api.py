"""A running session's TVs over HTTP: POST /sessions/<id>/screens adds one, DELETE takes it off
and answers once the TV was given back; wrong input is a 4xx that changes nothing."""

from __future__ import annotations

import httpx
import pytest

from cast_helpers import ended_cleanly
from helpers import lo, running_service
from pagecast.core.screen import DMR_APP_ID
from pagecast.virtual_tv import open_virtual_tv

HOST = lo("127.0.0.91")


@pytest.fixture
async def api(nursery, tmp_path):
    async with running_service(nursery, tmp_path, cast_hosts=(HOST,), quality="720p") as svc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=60) as client:
            yield client


async def test_a_tv_added_to_a_stream_only_session_plays_and_taken_off_is_given_back_before_the_answer(api, pages):
    async with open_virtual_tv(host=HOST, name="Den TV", player="ffmpeg") as tv:
        started = (await api.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "device": None})).json()
        sid = started["id"]
        assert started["screens"] == [] and started["state"] == "live"
        added = await api.post(f"/sessions/{sid}/screens?wait=1", json={"device": "Den TV", "volume": 0.4})
        assert added.status_code == 202 and tv.player_state == "PLAYING", added.text
        [screen] = added.json()["screens"]
        assert screen["device"] == "Den TV" and screen["ended"] is None and tv.volume_level == pytest.approx(0.4)

        removed = await api.delete(f"/sessions/{sid}/screens/den tv")
        [screen] = removed.json()["screens"]
        assert removed.status_code == 200 and screen["ended"] == "removed by API", screen
        assert screen["given_back"].startswith("back to the idle screen") and tv.app_id != DMR_APP_ID
        assert removed.json()["state"] == "live"  # started stream-only: it streams on
        await api.post("/stop", json={"id": sid})
        await ended_cleanly(api, sid)


async def test_wrong_screen_requests_say_what_to_fix_and_change_nothing(api, pages):
    sid = (await api.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "device": None})).json()["id"]
    for method, path, body, status, says in (
        ("POST", "/sessions/nope/screens", {"device": "Den TV"}, 404, "no session 'nope'"),
        ("POST", f"/sessions/{sid}/screens", {}, 400, "'device' is required"),
        ("POST", f"/sessions/{sid}/screens", {"device": "Den TV", "durration": 5}, 400, "did you mean 'duration'"),
        ("POST", f"/sessions/{sid}/screens", {"device": "Nowhere TV"}, 404, "known devices"),
        ("DELETE", f"/sessions/{sid}/screens/Den TV", None, 404, "shows nothing on 'Den TV'"),
    ):
        answer = await api.request(method, path, json=body)
        assert answer.status_code == status and says in answer.json()["error"], (path, body, answer.text)
    status = (await api.get(f"/sessions/{sid}")).json()
    assert status["state"] == "live" and status["screens"] == []
    await api.post("/stop", json={"id": sid})
    await ended_cleanly(api, sid)
