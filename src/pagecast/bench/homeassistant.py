"""A real Home Assistant for the bench and its tests, not a look-alike page.

Installed once into a cache outside the repository (``PAGECAST_HA_HOME``, by default
``~/.cache/pagecast/ha-<version>``), because it is large and takes minutes; started on
127.0.0.1 with a fresh configuration each time, onboarded over its API, given a long-lived
token and a dashboard of common cards (clock, two gauges, entities, history graph, camera
picture) where one entity changes every second. Facts behind this: docs/benchmark.md.

The dashboard also holds a small custom card that draws, at the top-left, a time barcode of
when that entity last changed (the bench's barcode format, see static/bench-clock.html).
Reading it back from the video says how late each change of the page reached the stream.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import trio
import trio_websocket

from .drive import Unavailable
from .drive import _import_httpx, owned

HA_VERSION = "2025.4.4"
FRONTEND_VERSION = "20250411.0"
#: What HA's own Cast integration needs in HA's virtualenv (its manifest pins it; --skip-pip
#: never installs it at run time).
CAST_REQUIREMENT = "PyChromecast==14.0.7"
#: The newest Home Assistant that installs on Python 3.13.0 (2025.5 and later need 3.13.2).
REQUIREMENTS = (f"homeassistant=={HA_VERSION}", f"home-assistant-frontend=={FRONTEND_VERSION}", "isal", CAST_REQUIREMENT)
DEFAULT_PYTHON = "/root/.pyenv/versions/3.13.0/bin/python3"
#: The entity that changes every second, and the dashboard's path.
TICKING = "input_number.power"
DASHBOARD_PATH = "lovelace/0"
INSTALL_TIMEOUT = 1200.0
START_TIMEOUT = 90.0


def home() -> Path:
    """Where Home Assistant's virtualenv lives (the cache)."""
    if os.environ.get("PAGECAST_HA_HOME"):
        return Path(os.environ["PAGECAST_HA_HOME"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "pagecast" / f"ha-{HA_VERSION}"


def python() -> str:
    return os.environ.get("PAGECAST_HA_PYTHON", DEFAULT_PYTHON)


def hass_binary() -> Path:
    return home() / "bin" / "hass"


def installed() -> bool:
    """Installed completely (the marker is written only after pip succeeded)."""
    return hass_binary().exists() and (home() / ".pagecast-installed").exists()


async def install(progress: Callable[[str], None]) -> None:
    """Install Home Assistant into :func:`home` unless it is there; raises Unavailable with
    what to do when it cannot be installed here."""
    if installed():
        return
    py = python()
    if not Path(py).exists():
        raise Unavailable(
            f"Home Assistant {HA_VERSION} needs Python 3.13, not found at {py}; set PAGECAST_HA_PYTHON to a python3.13"
        )
    target = home()
    target.parent.mkdir(parents=True, exist_ok=True)
    progress(f"ha: installing Home Assistant {HA_VERSION} into {target} (once; a few minutes)")
    for argv in ([py, "-m", "venv", "--clear", str(target)],
                 [str(target / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", *REQUIREMENTS]):
        async with owned(argv, "ha-install") as (child, tail):
            with trio.move_on_after(INSTALL_TIMEOUT):
                await child.wait()
        if child.returncode != 0:
            text = " | ".join(line for line in tail.lines if "is ignored" not in line)[-800:]
            raise Unavailable(f"could not install Home Assistant ({' '.join(argv[:3])}… exited {child.returncode}): {text}")
    (target / ".pagecast-installed").write_text(" ".join(REQUIREMENTS) + "\n")


def cast_installed() -> bool:
    return any(home().glob("lib/python3*/site-packages/pychromecast/__init__.py"))


async def install_cast(progress: Callable[[str], None]) -> None:
    """:func:`install`, and what HA's Cast integration needs (an install older than
    :data:`CAST_REQUIREMENT` in :data:`REQUIREMENTS` lacks it)."""
    await install(progress)
    if cast_installed():
        return
    progress(f"ha: installing {CAST_REQUIREMENT} for Home Assistant's Cast integration")
    argv = [str(home() / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", CAST_REQUIREMENT]
    async with owned(argv, "ha-install-cast") as (child, tail):
        with trio.move_on_after(INSTALL_TIMEOUT):
            await child.wait()
    if child.returncode != 0:
        raise Unavailable(f"could not install {CAST_REQUIREMENT} into Home Assistant (pip exited {child.returncode}): {tail.text()[-800:]}")


# ---------------------------------------------------------------------------------------
# Its configuration

CONFIGURATION = """\
homeassistant:
  name: pagecast bench
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
  currency: EUR
  internal_url: "{url}"
frontend:
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
websocket_api:
onboarding:
auth:
config:
history:
recorder:
  commit_interval: 1
  purge_keep_days: 1
lovelace:
  mode: storage
input_boolean:
  porch_light:
    name: Porch light
    initial: true
  heating:
    name: Heating
input_number:
  power:
    name: Power
    min: 0
    max: 3000
    step: 1
    unit_of_measurement: W
    initial: 1200
  humidity:
    name: Humidity
    min: 0
    max: 100
    step: 1
    unit_of_measurement: "%"
    initial: 48
sensor:
  - platform: time_date
    display_options: [time, date]
template:
  - sensor:
      - name: Living room
        unit_of_measurement: "°C"
        state: "21.5"
camera:
  - platform: local_file
    name: Porch
    file_path: "{config}/porch.jpg"
automation:
  - alias: Power changes every second
    triggers:
      - trigger: time_pattern
        seconds: "/1"
    actions:
      - action: input_number.set_value
        target:
          entity_id: input_number.power
        data:
          value: "{{{{ range(200, 2800) | random }}}}"
"""

#: A custom card (a Lovelace resource from /local/) that draws the time barcode of when
#: ``entity`` last changed, fixed at the top-left: 48 cells of 24 px, black = 1, most
#: significant bit first, as static/bench-clock.html draws Date.now().
BARCODE_CARD = """\
class PagecastChangeBarcode extends HTMLElement {
  setConfig(config) { this.entity = config.entity; }
  getCardSize() { return 1; }
  set hass(hass) {
    const state = hass.states[this.entity];
    if (!state) return;
    const ms = Date.parse(state.last_changed);
    if (ms === this.ms) return;
    this.ms = ms;
    this.draw();
  }
  connectedCallback() {
    if (!this.canvas) {
      this.canvas = document.createElement("canvas");
      this.canvas.style.cssText = "position:fixed;left:0;top:0;z-index:100;image-rendering:pixelated";
      this.attachShadow({ mode: "open" }).appendChild(this.canvas);
    }
    this.draw();
  }
  draw() {
    if (!this.canvas || this.ms === undefined) return;
    const dpr = window.devicePixelRatio || 1, cell = 24 * (window.innerWidth * dpr) / 1920;
    const c = this.canvas, ctx = c.getContext("2d");
    c.width = Math.ceil(48 * cell); c.height = Math.ceil(cell);
    c.style.width = c.width / dpr + "px"; c.style.height = c.height / dpr + "px";
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height); ctx.fillStyle = "#000";
    let v = this.ms;
    for (let i = 47; i >= 0; i--) {
      if (v % 2 === 1) ctx.fillRect(Math.round(i * cell), 0, Math.round((i + 1) * cell) - Math.round(i * cell), c.height);
      v = Math.floor(v / 2);
    }
  }
}
customElements.define("pagecast-change-barcode", PagecastChangeBarcode);
"""


def dashboard() -> dict[str, Any]:
    """A default-looking view of common cards; only ``input_number.power`` changes (every second)."""
    return {
        "title": "Home",
        "views": [{
            "title": "Home",
            "path": "0",
            "cards": [
                {"type": "custom:pagecast-change-barcode", "entity": TICKING},
                {"type": "clock", "clock_size": "large", "time_format": "24"},
                {"type": "gauge", "entity": TICKING, "min": 0, "max": 3000, "needle": True,
                 "severity": {"green": 0, "yellow": 1500, "red": 2500}},
                {"type": "gauge", "entity": "input_number.humidity", "min": 0, "max": 100},
                {"type": "entities", "title": "House", "entities": [
                    TICKING, "input_boolean.porch_light", "input_boolean.heating", "sensor.living_room", "sensor.time",
                ]},
                {"type": "history-graph", "title": "Power", "hours_to_show": 1, "entities": [TICKING]},
                {"type": "picture-entity", "entity": "camera.porch", "camera_view": "auto"},
            ],
        }],
    }


def write_config(config: Path, port: int, custom_components: Sequence[Path] = (), extra: str = "") -> None:
    """The configuration directory; each of ``custom_components`` (an integration's directory)
    is linked into its custom_components/, and ``extra`` YAML is added to configuration.yaml."""
    url = f"http://127.0.0.1:{port}"
    config.mkdir(parents=True, exist_ok=True)
    (config / "configuration.yaml").write_text(CONFIGURATION.format(url=url, port=port, config=config) + extra)
    # HA's network: only loopback, so an mDNS browser (HA's Cast uses one) joins no LAN.
    (config / ".storage").mkdir(exist_ok=True)
    (config / ".storage" / "core.network").write_text(json.dumps({"version": 1, "minor_version": 1, "key": "core.network", "data": {"configured_adapters": ["lo"]}}))
    for component in custom_components:
        (config / "custom_components").mkdir(exist_ok=True)
        (config / "custom_components" / component.name).symlink_to(component.resolve(), target_is_directory=True)
    (config / "www").mkdir(exist_ok=True)
    (config / "www" / "pagecast-barcode.js").write_text(BARCODE_CARD)
    # The camera's picture: a test pattern, made here rather than kept in the repository.
    made = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720", "-frames:v", "1", "-y", str(config / "porch.jpg")],
        capture_output=True, text=True, timeout=30,
    )
    if made.returncode != 0:
        raise Unavailable(f"ffmpeg could not make the camera picture: {made.stderr[-300:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# Running it


@dataclass(frozen=True)
class HomeAssistant:
    url: str
    token: str  # a long-lived access token: kept out of repr and the bench's output (main() shows it, to log in by hand)
    dashboard_url: str
    pid: int
    config: Path | None = None  # its configuration directory (home-assistant.log is there)

    def __repr__(self) -> str:
        return f"HomeAssistant({self.url}, pid {self.pid})"


async def _websocket(url: str, access_token: str, calls: list[dict[str, Any]]) -> list[Any]:
    """Authenticate on HA's websocket API and make ``calls`` in order; their results."""
    results = []
    async with trio_websocket.open_websocket_url(url.replace("http://", "ws://") + "/api/websocket") as ws:
        await ws.get_message()  # auth_required
        await ws.send_message(json.dumps({"type": "auth", "access_token": access_token}))
        reply = json.loads(await ws.get_message())
        if reply.get("type") != "auth_ok":
            raise RuntimeError(f"Home Assistant refused the websocket login: {reply.get('type')}")
        for n, call in enumerate(calls, 1):
            await ws.send_message(json.dumps({"id": n, **call}))
            while True:
                msg = json.loads(await ws.get_message())
                if msg.get("id") == n and msg.get("type") == "result":
                    break
            if not msg.get("success"):
                raise RuntimeError(f"Home Assistant refused {call['type']}: {msg.get('error')}")
            results.append(msg.get("result"))
    return results


async def _onboard(client: Any, url: str) -> str:
    """Onboard a fresh Home Assistant over its API; an access token of its owner."""
    client_id = url + "/"
    r = await client.post("/api/onboarding/users", json={
        "client_id": client_id, "name": "Bench", "username": "bench", "password": secrets.token_urlsafe(16), "language": "en",
    })
    r.raise_for_status()
    r = await client.post("/auth/token", data={"grant_type": "authorization_code", "code": r.json()["auth_code"], "client_id": client_id})
    r.raise_for_status()
    access = r.json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    for step, body in (("core_config", {}), ("analytics", {}), ("integration", {"client_id": client_id, "redirect_uri": client_id})):
        r = await client.post(f"/api/onboarding/{step}", json=body, headers=headers)
        if r.status_code not in (200, 404):  # 404: that step is done already
            raise RuntimeError(f"Home Assistant onboarding step {step} answered {r.status_code}")
    return access


@contextlib.asynccontextmanager
async def open_home_assistant(
    workdir: Path,
    progress: Callable[[str], None],
    *,
    custom_components: Sequence[Path] = (),
    configuration: str = "",
    cast: bool = False,
) -> AsyncIterator[HomeAssistant]:
    """A running, onboarded Home Assistant with the bench dashboard, until the block ends;
    with ``custom_components`` and ``configuration`` added (see :func:`write_config`), and
    with what HA's Cast integration needs installed if ``cast``."""
    httpx = _import_httpx()
    await (install_cast if cast else install)(progress)
    port = _free_port()
    config = workdir / f"ha-config-{port}"
    write_config(config, port, custom_components, configuration)
    url = f"http://127.0.0.1:{port}"
    progress(f"ha: starting Home Assistant {HA_VERSION} on {url}")
    argv = [str(hass_binary()), "-c", str(config), "--skip-pip", "--log-no-color"]
    async with owned(argv, "home-assistant") as (child, tail), httpx.AsyncClient(base_url=url, timeout=30) as client:
        ready = False
        with trio.move_on_after(START_TIMEOUT):
            while not ready and child.poll() is None:
                with contextlib.suppress(httpx.HTTPError):
                    ready = (await client.get("/manifest.json")).status_code == 200
                if not ready:
                    await trio.sleep(0.3)
        if not ready:
            raise RuntimeError(f"Home Assistant did not start within {START_TIMEOUT:g} s ({child!r}): {tail.text()[-1200:]}")
        access = await _onboard(client, url)
        token, _, _ = await _websocket(url, access, [
            {"type": "auth/long_lived_access_token", "client_name": f"pagecast bench {secrets.token_hex(4)}", "lifespan": 30},
            {"type": "lovelace/resources/create", "res_type": "module", "url": "/local/pagecast-barcode.js"},
            {"type": "lovelace/config/save", "config": dashboard()},
        ])
        yield HomeAssistant(url, token, f"{url}/{DASHBOARD_PATH}", child.pid, config)


async def change_times(ha: HomeAssistant, since_iso: str) -> list[float]:
    """Epoch seconds at which :data:`TICKING` changed since ``since_iso``, from HA's history."""
    httpx = _import_httpx()
    async with httpx.AsyncClient(base_url=ha.url, timeout=30, headers={"Authorization": f"Bearer {ha.token}"}) as client:
        r = await client.get(f"/api/history/period/{since_iso}", params={"filter_entity_id": TICKING, "minimal_response": "", "no_attributes": ""})
        r.raise_for_status()
    rows = r.json()[0] if r.json() else []
    return [datetime.fromisoformat(row["last_changed"]).timestamp() for row in rows]


def main() -> int:  # pragma: no cover - a manual helper: python -m pagecast.bench.homeassistant
    """Start the bench's Home Assistant and keep it running until Ctrl-C (to look at it)."""
    import tempfile

    async def run() -> None:
        with tempfile.TemporaryDirectory(prefix="pagecast-ha-") as tmp:
            async with open_home_assistant(Path(tmp), lambda s: print(s, file=sys.stderr)) as ha:
                print(f"{ha.dashboard_url}\ntoken: {ha.token}", flush=True)
                await trio.sleep_forever()

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
