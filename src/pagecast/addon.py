"""The Home Assistant app's start-up (addon/): the app's options become pagecast's settings,
``pagecast serve`` runs, and once it answers, the Supervisor is told where it is (discovery), so
Home Assistant offers to set up the pagecast integration without anyone typing an address.

Standard library only, and nothing else of pagecast: it runs before the service and beside it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

#: The app's port: config.yaml's ingress_port and watchdog name it, so it is not an option.
PORT = 8000
OPTIONS = Path("/data/options.json")
#: The app's own folder (config.yaml `map: addon_config`), where a profiles file may live.
CONFIG_DIR = Path("/config")
#: How long pagecast may take to answer /health before the app gives up on discovery
#: (the encoder probe runs first; a slow device needs a while).
HEALTH_TIMEOUT = 120.0

log = logging.getLogger("pagecast.addon")


def read_options(path: Path = OPTIONS) -> dict[str, Any]:
    """The options the Supervisor wrote (already checked against config.yaml's schema)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        log.warning("%s does not exist: pagecast starts with its defaults", path)
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def settings_env(options: dict[str, Any], config_dir: Path = CONFIG_DIR) -> dict[str, str]:
    """The PAGECAST_* variables for the app's options. An option left out or empty keeps
    pagecast's default; /data (kept across restarts and in backups) holds the instance id. The
    listening address stays the image's (0.0.0.0), so a test can keep the app on loopback."""
    env = {"PAGECAST_STATE_DIR": "/data", "PAGECAST_PORT": str(PORT)}
    if options.get("api_token"):
        env["PAGECAST_API_TOKEN"] = str(options["api_token"])
    if options.get("max_sessions") not in (None, ""):
        env["PAGECAST_MAX_SESSIONS"] = str(int(options["max_sessions"]))
    hosts = options.get("cast_hosts") or []
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    hosts = [str(h).strip() for h in hosts if str(h).strip()]
    if hosts:
        env["PAGECAST_CAST_HOSTS"] = ",".join(hosts)
    if options.get("log_level"):
        env["PAGECAST_LOG_LEVEL"] = str(options["log_level"])
    profiles = config_dir / "profiles.toml"
    if profiles.is_file():
        env["PAGECAST_PROFILES_FILE"] = str(profiles)
    return env


def discovery_message(host: str, instance_id: str) -> dict[str, Any]:
    """What the Supervisor hands to the integration's hassio step (custom_components/pagecast)."""
    return {"service": "pagecast", "config": {"host": host, "port": PORT, "instance_id": instance_id}}


def _call(url: str, token: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def app_hostname(supervisor: str, token: str) -> str:
    """The name Home Assistant reaches this app by: the Supervisor's answer (its DNS serves it,
    also for an app on the host network), else this machine's name."""
    try:
        status, text = _call(f"{supervisor}/addons/self/info", token)
        if status == 200:
            return json.loads(text)["data"]["hostname"]
        log.warning("the Supervisor answered %s to /addons/self/info: %s", status, text[:200])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("cannot ask the Supervisor for this app's host name: %s", exc)
    return socket.gethostname()


def announce(supervisor: str, token: str, instance_id: str) -> bool:
    """POST the discovery message; a failure is logged (pagecast works without it)."""
    if not token:
        log.warning("no SUPERVISOR_TOKEN: not running as a Home Assistant app, so no discovery")
        return False
    message = discovery_message(app_hostname(supervisor, token), instance_id)
    try:
        status, text = _call(f"{supervisor}/discovery", token, message)
    except OSError as exc:
        log.warning("discovery not sent: cannot reach the Supervisor at %s: %s", supervisor, exc)
        return False
    if status >= 300:
        log.warning("discovery refused by the Supervisor (%s): %s", status, text[:300])
        return False
    log.info("discovery sent (%s, host %s): the Supervisor answered %s %s",
             message["service"], message["config"]["host"], status, text[:300])
    return True


def wait_for_health(url: str, child: subprocess.Popen, timeout: float = HEALTH_TIMEOUT) -> dict[str, Any] | None:
    """/health's answer once pagecast gives one; None if it exits or takes longer than timeout."""
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except (OSError, ValueError):
            time.sleep(0.5)
    return None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    env = settings_env(read_options())
    shown = {k: ("***" if k == "PAGECAST_API_TOKEN" else v) for k, v in env.items()}
    log.info("starting pagecast serve with %s", " ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    child = subprocess.Popen([sys.executable, "-m", "pagecast", "serve"], env={**os.environ, **env})

    stopping = []

    def forward(signum, frame):
        """The Supervisor stops the app with SIGTERM: pagecast gives the TVs back and exits 0."""
        stopping.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    health = wait_for_health(f"http://127.0.0.1:{PORT}/health", child)
    if stopping:
        pass
    elif health is None:
        log.warning("pagecast did not answer /health: no discovery")
    elif not health.get("instance_id"):
        log.warning("pagecast's /health has no instance_id: no discovery")
    else:
        supervisor = os.environ.get("SUPERVISOR_URL", "http://supervisor").rstrip("/")
        announce(supervisor, os.environ.get("SUPERVISOR_TOKEN", ""), health["instance_id"])
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
