"""PAGECAST_API_TOKEN: the control endpoints need it as a bearer token; streams, watch pages and
/health stay open (a TV cannot send headers); the token is never echoed or logged."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio

from helpers import running_service

TOKEN = "pc-Token-4b1d"


@pytest.fixture
async def guarded(nursery, tmp_path):
    async with running_service(nursery, tmp_path, api_token=TOKEN) as svc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=30) as client:
            yield client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


CONTROL = [("POST", "/start"), ("POST", "/stop"), ("GET", "/status"), ("GET", "/sessions/xyz"), ("GET", "/devices")]
WRONG = [None, "Bearer wrong-token", "Basic dXNlcjpwdw==", "Bearer"]


async def test_control_endpoints_refuse_a_missing_or_wrong_token_with_401_and_say_what_to_send(guarded, caplog):
    caplog.set_level(logging.DEBUG)
    for method, path in CONTROL:
        for header in WRONG:
            headers = {"Authorization": header} if header else {}
            r = await guarded.request(method, path, headers=headers, json={"url": "http://127.0.0.1:9/"} if path == "/start" else None)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), (method, path, header)
            assert "Bearer" in r.json()["error"] and "PAGECAST_API_TOKEN" in r.json()["error"]
            assert TOKEN not in r.text
    assert TOKEN not in caplog.text
    assert (await guarded.get("/status", headers=AUTH)).json()["sessions"] == []  # nothing started


async def test_with_the_token_the_api_works_and_streams_stay_open_to_tvs(guarded, pages, caplog):
    caplog.set_level(logging.DEBUG)
    started = await guarded.post("/start?wait=1", headers=AUTH, json={"url": f"{pages}/dashboard.html", "quality": "720p"})
    assert started.status_code == 202, started.text
    sid = started.json()["id"]
    assert (await guarded.get(f"/sessions/{sid}", headers=AUTH)).json()["state"] == "live"
    assert (await guarded.get(f"/sessions/{sid}", headers={"Authorization": f"bearer {TOKEN}"})).status_code == 200  # scheme in any case
    for open_path in (f"/streams/{sid}/index.m3u8", f"/watch/{sid}", "/health"):
        assert (await guarded.get(open_path)).status_code == 200, open_path
    preflight = await guarded.options("/start", headers={"Origin": "http://x", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code != 401 and "Authorization" in preflight.headers["access-control-allow-headers"]
    assert (await guarded.post("/stop", headers=AUTH, json={"id": sid})).json()["stopped"] == [sid]
    with trio.fail_after(10):
        while (await guarded.get(f"/sessions/{sid}", headers=AUTH)).json()["state"] != "stopped":
            await trio.sleep(0.1)
    assert TOKEN not in caplog.text


async def test_without_a_token_set_the_control_api_is_open(client):
    assert (await client.get("/status")).status_code == 200
