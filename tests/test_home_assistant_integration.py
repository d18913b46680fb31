"""pagecast's Home Assistant integration (custom_components/pagecast) loaded into a real Home
Assistant, set up through its config flow over HA's REST API, showing HA's own dashboard on a
virtual TV through a real `pagecast serve`, signed in as the integration's read-only system
user, and staying signed in when that user's access token has expired and the dashboard's
connection to HA is cut (the frontend must trade its refresh token for a new access token).

A small test-only integration in the test's own configuration directory (PROBE below) reads
that user's refresh token in HA (when it last made an access token, how many websocket
connections use it), shortens the life of its access tokens and closes those connections.

Runs only where the bench's Home Assistant is installed (`pagecast bench --only ha`)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio

from helpers import jpeg_size, lo, real_home_assistant
from pagecast.bench.changes import read_barcode
from pagecast.bench.homeassistant import DASHBOARD_PATH, open_home_assistant
from pagecast.bench.drive import owned
from pagecast.virtual_tv import open_virtual_tv

pytestmark = real_home_assistant()

REPO = Path(__file__).resolve().parent.parent
TV_HOST, TV_NAME = lo("127.0.61.2"), "Kitchen TV"
#: The access tokens of pagecast's user live this long once the test has shortened them; HA
#: still accepts a token up to LEEWAY seconds after it expired (auth/__init__.py, leeway=10).
ACCESS_TOKEN_SECONDS, LEEWAY = 1.0, 10.0

PROBE_MANIFEST = {
    "domain": "pagecast_probe", "name": "pagecast test probe", "version": "0.0.1", "codeowners": [],
    "dependencies": ["websocket_api"], "documentation": "https://example.invalid", "iot_class": "local_push",
}
PROBE = '''\
"""Test-only: the refresh tokens of pagecast's system user as HA sees them, and ways to hurry them."""

from datetime import timedelta

import voluptuous as vol

from homeassistant.core import HomeAssistant, ServiceCall, SupportsResponse

DOMAIN = "pagecast_probe"


async def _tokens(hass: HomeAssistant):
    users = [u for u in await hass.auth.async_get_users() if u.system_generated and u.name == "pagecast"]
    return [t for u in users for t in u.refresh_tokens.values()]


def _connections(hass: HomeAssistant, token) -> int:
    """Websocket connections signed in with an access token of ``token`` (each registered
    a callback to be closed when the token is revoked: websocket_api/auth.py)."""
    return len(hass.auth._revoke_callbacks.get(token.id, ()))


async def async_setup(hass: HomeAssistant, config) -> bool:
    async def tokens(call: ServiceCall):
        return {"tokens": [{
            "id": t.id,
            "user": t.user.name,
            "groups": sorted(g.id for g in t.user.groups),
            "client_id": t.client_id,
            "access_token_seconds": t.access_token_expiration.total_seconds(),
            "last_used_at": t.last_used_at.timestamp() if t.last_used_at else None,
            "websockets": _connections(hass, t),
        } for t in await _tokens(hass)]}

    async def shorten(call: ServiceCall):
        """New access tokens of pagecast's user expire after ``seconds`` (HA's default: 30 minutes)."""
        for t in await _tokens(hass):
            t.access_token_expiration = timedelta(seconds=call.data["seconds"])
        return await tokens(call)

    async def disconnect(call: ServiceCall):
        """Close every websocket connection of pagecast's user, as a revoke or HA going away would."""
        closed = 0
        for t in await _tokens(hass):
            for close in list(hass.auth._revoke_callbacks.get(t.id, ())):
                close()
                closed += 1
        return {"closed": closed}

    hass.services.async_register(DOMAIN, "tokens", tokens, supports_response=SupportsResponse.ONLY)
    hass.services.async_register(DOMAIN, "shorten", shorten, schema=vol.Schema({vol.Required("seconds"): vol.Coerce(float)}), supports_response=SupportsResponse.ONLY)
    hass.services.async_register(DOMAIN, "disconnect", disconnect, supports_response=SupportsResponse.ONLY)
    return True
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def _pagecast_serve(tmp: Path):
    """A real `pagecast serve` that knows the virtual TV by address and announces nothing."""
    port = _free_port()
    env = {
        **os.environ,
        "PAGECAST_CAST_HOSTS": TV_HOST, "PAGECAST_ANNOUNCE": "false", "PAGECAST_MDNS": "false",
        "PAGECAST_STATE_DIR": str(tmp / "state"), "PAGECAST_RUNTIME_DIR": str(tmp / "runtime"),
        "PAGECAST_LOG_LEVEL": "info", "PAGECAST_API_TOKEN": "",
    }
    argv = [sys.executable, "-m", "pagecast", "serve", "--host", "127.0.0.1", "--port", str(port)]
    async with owned(argv, "pagecast-serve", env=env) as (child, tail), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        with trio.fail_after(20):
            while True:
                assert child.poll() is None, f"pagecast serve exited: {tail.text()[-1500:]}"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        break
                await trio.sleep(0.1)
        yield client


def _ha_log(ha) -> str:
    """Home Assistant's log lines about pagecast, and its errors: what a failure needs to show."""
    lines = (ha.config / "home-assistant.log").read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if "pagecast" in line or "ERROR" in line)[-3000:]


async def _action(ha_api, domain: str, service: str, data: dict | None = None):
    r = await ha_api.post(f"/api/services/{domain}/{service}?return_response", json=data or {})
    assert r.status_code == 200, f"{domain}.{service} answered {r.status_code}: {r.text}"
    return r.json()["service_response"]


async def _config_flow(ha_api, handler: str, *steps: dict) -> dict:
    """Set up ``handler`` through its config flow over HA's REST API, one form per step."""
    r = await ha_api.post("/api/config/config_entries/flow", json={"handler": handler, "show_advanced_options": False})
    assert r.status_code == 200, r.text
    flow = r.json()
    for step in steps:
        assert flow["type"] == "form", flow
        r = await ha_api.post(f"/api/config/config_entries/flow/{flow['flow_id']}", json=step)
        assert r.status_code == 200, r.text
        flow = r.json()
    assert flow["type"] == "create_entry", flow
    return flow["result"]


async def _token(ha_api) -> dict:
    [token] = (await _action(ha_api, "pagecast_probe", "tokens"))["tokens"]
    return token


async def _frame(pagecast, sid: str) -> tuple[int, int, bytes]:
    """The session's newest picture (its thumbnail), as RGB."""
    r = await pagecast.get(f"/sessions/{sid}/thumbnail.jpg")
    if r.status_code != 200:
        return 0, 0, b""
    w, h = jpeg_size(r.content)
    run = await trio.to_thread.run_sync(lambda: subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        input=r.content, capture_output=True, timeout=30,
    ))
    return w, h, run.stdout


def _dashboard_time(w: int, h: int, rgb: bytes) -> float | None:
    """When HA last changed the dashboard's ticking entity, read from the picture: the bench
    dashboard draws that time as a barcode at the top-left (bench/homeassistant.py), right of
    it is HA's blue top bar. None if the picture is not that dashboard."""
    if not rgb or len(rgb) < w * h * 3:
        return None
    cell = round(24 * w / 1920)
    row = rgb[(cell // 2) * w * 3:(cell // 2 + 1) * w * 3]
    gray = bytes(int(0.299 * row[i] + 0.587 * row[i + 1] + 0.114 * row[i + 2]) for i in range(0, len(row), 3))
    bar = [row[x * 3:x * 3 + 3] for x in range(int(w * 0.65), int(w * 0.9))]
    red, green, blue = (sum(px[c] for px in bar) / len(bar) for c in range(3))
    if not (blue > 200 and red < 100 and green > 120):  # HA's default primary colour, #03a9f4
        return None
    return read_barcode(gray, cell) / 1000


async def _shows_dashboard_changed_after(pagecast, sid: str, since: float, within: float = 20.0) -> float:
    """Wait until the session's picture is the dashboard showing a change HA made after
    ``since`` (epoch seconds): a live, signed-in dashboard, not a stale or login picture."""
    seen = None
    with trio.move_on_after(within):
        while True:
            seen = _dashboard_time(*await _frame(pagecast, sid))
            if seen is not None and since < seen <= time.time() + 1:
                return seen
            await trio.sleep(0.3)
    raise AssertionError(f"session {sid} did not show the dashboard with a change after {since:.1f} within {within} s (last read {seen})")


async def _session(pagecast, sid: str) -> dict:
    return (await pagecast.get(f"/sessions/{sid}")).json()


async def _wait_session(pagecast, sid: str, predicate, within: float = 30.0) -> dict:
    data = None
    with trio.move_on_after(within):
        while True:
            data = await _session(pagecast, sid)
            if predicate(data):
                return data
            await trio.sleep(0.2)
    raise AssertionError(f"session {sid} did not get there within {within} s: {json.dumps(data)}")


def _signed_out(data: dict) -> bool:
    """pagecast saw the page land on HA's login page (it retries, then fails the session)."""
    reasons = [data.get("error") or ""] + [r.get("reason") or "" for r in data.get("restart_log") or []]
    return any("missing or expired" in reason for reason in reasons)


def _signed_in(data: dict) -> bool:
    return data["state"] == "live" and not data.get("error") and not _signed_out(data)


async def _cast_entity(ha_api) -> str:
    """HA's own Cast integration set up with the TV as a known host; the TV's media_player."""
    entry = await _config_flow(ha_api, "cast", {"known_hosts": [TV_HOST]})
    assert entry["state"] == "loaded", entry
    with trio.fail_after(20):
        while True:
            for state in (await ha_api.get("/api/states")).json():
                if state["entity_id"].startswith("media_player.") and state["attributes"].get("friendly_name") == TV_NAME:
                    return state["entity_id"]
            await trio.sleep(0.2)


async def test_the_integration_shows_ha_dashboard_signed_in_on_a_tv_and_it_stays_signed_in_after_its_access_token_expires(tmp_path):
    """Also: the TV as HA's own Cast media_player is a target of pagecast.show and pagecast.stop."""
    probe = tmp_path / "probe" / "pagecast_probe"
    probe.mkdir(parents=True)
    (probe / "manifest.json").write_text(json.dumps(PROBE_MANIFEST))
    (probe / "__init__.py").write_text(PROBE)
    with trio.fail_after(200):
        async with (
            open_virtual_tv(host=TV_HOST, name=TV_NAME) as tv,
            _pagecast_serve(tmp_path) as pagecast,
            open_home_assistant(tmp_path, lambda text: None, custom_components=[REPO / "custom_components" / "pagecast", probe],
                                configuration="pagecast_probe:\n", cast=True) as ha,
            httpx.AsyncClient(base_url=ha.url, timeout=30, headers={"Authorization": f"Bearer {ha.token}"}) as ha_api,
        ):
            # Set up through the config flow, as a user does in HA's UI.
            entry = await _config_flow(ha_api, "pagecast", {"url": str(pagecast.base_url).rstrip("/")})
            assert entry["state"] == "loaded", f"{entry}\n{_ha_log(ha)}"
            token = await _token(ha_api)
            assert token["groups"] == ["system-read-only"] and token["client_id"] is None, token
            token = (await _action(ha_api, "pagecast_probe", "shorten", {"seconds": ACCESS_TOKEN_SECONDS}))["tokens"][0]
            assert token["access_token_seconds"] == ACCESS_TOKEN_SECONDS and token["last_used_at"] is None, token

            # Show HA's own dashboard on the TV.
            asked = time.time()
            answer = await _action(ha_api, "pagecast", "show", {"device": TV_NAME, "dashboard": DASHBOARD_PATH})
            [session] = answer["sessions"]
            sid = session["id"]
            assert session["device"] == TV_NAME, answer
            data = await _wait_session(pagecast, sid, lambda d: d["state"] == "failed" or (d["cast"] or {}).get("player_state") == "PLAYING")
            assert _signed_in(data), f"{data}\n{_ha_log(ha)}"
            await tv.wait_for(lambda st: st["player_state"] == "PLAYING" and sid in json.dumps(st["media"]), timeout=20)
            await _shows_dashboard_changed_after(pagecast, sid, asked)
            token = await _token(ha_api)
            assert token["last_used_at"] is not None and token["last_used_at"] > asked, f"the page signed in with the integration's refresh token: {token}"
            assert token["websockets"] >= 1, token

            # The same checks fail on a page that is not signed in: with a bogus refresh token
            # the page lands on HA's login page, and HA's login page is no dashboard.
            bogus = (await pagecast.post("/start", json={"url": f"{ha.url}/{DASHBOARD_PATH}", "auth": {"ha_refresh_token": "0" * 128}})).json()
            with pytest.raises(AssertionError, match="did not show the dashboard"):
                await _shows_dashboard_changed_after(pagecast, bogus["id"], 0, within=4)
            data = await _wait_session(pagecast, bogus["id"], _signed_out, within=15)
            assert not _signed_in(data), data
            await pagecast.post("/stop", json={"id": bogus["id"]})
            login = (await pagecast.post("/start?wait=1", json={"url": f"{ha.url}/auth/authorize?response_type=code&client_id={ha.url}/&redirect_uri={ha.url}/"})).json()
            assert login["state"] == "live", login
            with pytest.raises(AssertionError, match="did not show the dashboard"):
                await _shows_dashboard_changed_after(pagecast, login["id"], 0, within=4)
            _, _, rgb = await _frame(pagecast, login["id"])
            assert len(set(rgb)) > 16, "the login page's picture is not blank"
            await pagecast.post("/stop", json={"id": login["id"]})

            # Force a refresh: every access token the page has is past its life (and HA's leeway),
            # then its connection to HA is cut; it can sign in again only with a new access token.
            while time.time() < (token := await _token(ha_api))["last_used_at"] + ACCESS_TOKEN_SECONDS + LEEWAY + 0.5:
                await trio.sleep(token["last_used_at"] + ACCESS_TOKEN_SECONDS + LEEWAY + 0.5 - time.time())
            before = token
            cut = time.time()  # before the cut: the page may trade its token before the action answers
            closed = (await _action(ha_api, "pagecast_probe", "disconnect"))["closed"]
            assert closed >= 1, "the dashboard's websocket connections were closed"
            with trio.move_on_after(20):
                while not ((token := await _token(ha_api))["last_used_at"] > before["last_used_at"] and token["websockets"] >= 1):
                    await trio.sleep(0.2)
            assert token["last_used_at"] > cut and token["websockets"] >= 1, f"no new access token and connection of pagecast's user within 20 s after its websocket was closed: {token}\n{_ha_log(ha)}"
            await _shows_dashboard_changed_after(pagecast, sid, time.time())
            data = await _session(pagecast, sid)
            assert _signed_in(data) and data["cast"]["player_state"] == "PLAYING", f"{data}\n{_ha_log(ha)}"

            stopped = await _action(ha_api, "pagecast", "stop", {"device": TV_NAME})
            assert stopped == {"stopped": [sid]}, stopped

            # The TV as HA's own Cast entity: pagecast knows it by the entity's Cast uuid.
            entity = await _cast_entity(ha_api)
            asked = time.time()
            [session] = (await _action(ha_api, "pagecast", "show", {"entity_id": entity, "dashboard": DASHBOARD_PATH}))["sessions"]
            data = await _wait_session(pagecast, session["id"], lambda d: d["state"] == "failed" or (d["cast"] or {}).get("player_state") == "PLAYING")
            assert _signed_in(data) and data["cast"]["uuid"] == str(tv.uuid), data
            await tv.wait_for(lambda st: st["player_state"] == "PLAYING" and session["id"] in json.dumps(st["media"]), timeout=20)
            await _shows_dashboard_changed_after(pagecast, session["id"], asked)
            stopped = await _action(ha_api, "pagecast", "stop", {"entity_id": entity})
            assert stopped == {"stopped": [session["id"]]}, stopped
