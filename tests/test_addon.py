"""The Home Assistant app (addon/): its options become pagecast's settings, its discovery message
reaches a Supervisor, its config.yaml says what the Supervisor needs, and the status page works
below the ingress path (no containers here: `ops/container addon-check` runs the app's image)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import tomllib
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import trio
import yaml

from pagecast import addon
from pagecast.core.settings import Settings
from pagecast.lowlevel.browser import open_player_browser
from pagecast.lowlevel.httpserve import serve_http

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "addon" / "config.yaml").read_text())
SETTINGS = {"PAGECAST_" + f.name.upper() for f in dataclasses.fields(Settings)}


def test_every_option_becomes_the_pagecast_setting_of_the_same_meaning(tmp_path):
    env = addon.settings_env(
        {"api_token": "s3cret", "max_sessions": 2, "cast_hosts": ["192.168.1.20", " tv.lan "], "log_level": "debug"},
        config_dir=tmp_path,
    )
    assert env == {
        "PAGECAST_STATE_DIR": "/data",
        "PAGECAST_PORT": "8000",
        "PAGECAST_API_TOKEN": "s3cret",
        "PAGECAST_MAX_SESSIONS": "2",
        "PAGECAST_CAST_HOSTS": "192.168.1.20,tv.lan",
        "PAGECAST_LOG_LEVEL": "debug",
    }
    assert set(env) <= SETTINGS, sorted(set(env) - SETTINGS)
    settings = Settings.from_env({k: v for k, v in env.items() if k != "PAGECAST_STATE_DIR"} | {"PAGECAST_ENCODER": "x264"})
    assert (settings.max_sessions, settings.cast_hosts, settings.api_token) == (2, ("192.168.1.20", "tv.lan"), "s3cret")


def test_options_left_out_or_empty_keep_pagecast_defaults(tmp_path):
    base = {"PAGECAST_STATE_DIR": "/data", "PAGECAST_PORT": "8000"}
    assert addon.settings_env({}, config_dir=tmp_path) == base
    assert addon.settings_env({"api_token": "", "cast_hosts": [], "log_level": ""}, config_dir=tmp_path) == base


def test_cast_hosts_may_also_be_one_comma_separated_string(tmp_path):
    env = addon.settings_env({"cast_hosts": "192.168.1.20, 192.168.1.21,"}, config_dir=tmp_path)
    assert env["PAGECAST_CAST_HOSTS"] == "192.168.1.20,192.168.1.21"


def test_a_profiles_file_in_the_apps_config_folder_is_used(tmp_path):
    assert "PAGECAST_PROFILES_FILE" not in addon.settings_env({}, config_dir=tmp_path)
    (tmp_path / "profiles.toml").write_text('[doorbell]\nurl = "http://example.invalid/"\n')
    assert addon.settings_env({}, config_dir=tmp_path)["PAGECAST_PROFILES_FILE"] == str(tmp_path / "profiles.toml")


def test_options_file_is_read_missing_means_defaults_and_a_non_object_is_refused(tmp_path):
    path = tmp_path / "options.json"
    assert addon.read_options(path) == {}
    path.write_text('{"max_sessions": 3}')
    assert addon.read_options(path) == {"max_sessions": 3}
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        addon.read_options(path)


class StandIn:
    """An HTTP stand-in on loopback for the with-block; ``url`` is where it answers (it stays
    known after the block, when nothing listens there any more)."""

    path = ""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str):
        self._serving = serve_http(handler, name)

    def __enter__(self):
        self.url = self._serving.__enter__() + self.path
        return self

    def __exit__(self, *exc):
        return self._serving.__exit__(*exc)


class StandInSupervisor(StandIn):
    """A Supervisor on loopback that answers /addons/self/info and records /discovery posts."""

    def __init__(self, status: int = 200):
        self.posts: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/addons/self/info":
                    self.answer(200, {"result": "ok", "data": {"hostname": "local-pagecast"}})
                else:
                    self.answer(404, {"result": "error"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts.append((self.headers.get("Authorization", ""), body))
                if status == 200:
                    self.answer(200, {"result": "ok", "data": {"uuid": "0" * 32}})
                else:
                    self.answer(status, {"result": "error", "message": "Apps must list services they provide via discovery in their config!"})

        super().__init__(Handler, "stand-in supervisor")


def test_discovery_posts_host_port_and_instance_id_with_the_supervisor_token(caplog):
    caplog.set_level(logging.INFO, logger="pagecast.addon")
    with StandInSupervisor() as supervisor:
        assert addon.announce(supervisor.url, "tok", "a" * 32)
    assert supervisor.posts == [(
        "Bearer tok",
        {"service": "pagecast", "config": {"host": "local-pagecast", "port": 8000, "instance_id": "a" * 32}},
    )]
    assert "discovery sent" in caplog.text and '"uuid"' in caplog.text


def test_a_refused_or_unreachable_supervisor_is_logged_not_fatal(caplog):
    with StandInSupervisor(status=403) as supervisor:
        assert addon.announce(supervisor.url, "tok", "b" * 32) is False
    assert "discovery refused by the Supervisor (403)" in caplog.text
    closed = supervisor.url  # its server is closed now: nothing listens there
    assert addon.announce(closed, "tok", "b" * 32) is False
    assert "cannot reach the Supervisor" in caplog.text


def test_without_a_supervisor_token_nothing_is_sent(caplog):
    with StandInSupervisor() as supervisor:
        assert addon.announce(supervisor.url, "", "c" * 32) is False
    assert supervisor.posts == []
    assert "no SUPERVISOR_TOKEN" in caplog.text


def test_config_yaml_declares_what_the_supervisor_needs():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert CONFIG["version"] == version
    assert CONFIG["slug"] == "pagecast" and CONFIG["name"] and CONFIG["description"]
    assert CONFIG["url"].startswith("https://")
    assert CONFIG["arch"] == ["amd64", "aarch64"]
    assert CONFIG["init"] is False  # tini is the image's PID 1
    assert CONFIG["host_network"] is True
    assert CONFIG["watchdog"] == f"http://[HOST]:[PORT:{addon.PORT}]/health"
    assert CONFIG["ingress"] is True and CONFIG["ingress_port"] == addon.PORT
    assert CONFIG["panel_icon"].startswith("mdi:")
    assert CONFIG["discovery"] == [addon.discovery_message("h", "i")["service"]]
    assert CONFIG["homeassistant_api"] is True and CONFIG["video"] is True


def test_options_and_schema_agree_and_every_option_is_translated():
    schema, options = CONFIG["schema"], CONFIG["options"]
    assert set(schema) == {"api_token", "max_sessions", "cast_hosts", "log_level"}
    assert set(options) <= set(schema)
    assert schema["api_token"] == "password?"
    assert schema["max_sessions"] == "int(1,16)?"
    assert schema["cast_hosts"] == ["str"] and options["cast_hosts"] == []
    assert schema["log_level"] == "list(debug|info|warning|error)?" and options["log_level"] == "info"
    assert options["max_sessions"] == Settings.__dataclass_fields__["max_sessions"].default
    translations = yaml.safe_load((ROOT / "addon" / "translations" / "en.yaml").read_text())["configuration"]
    assert set(translations) == set(schema)
    assert all(t["name"] and t["description"] for t in translations.values())


def test_the_app_is_built_from_pagecasts_image_of_the_same_version():
    dockerfile = (ROOT / "addon" / "Dockerfile").read_text()
    base = re.search(r"^ARG PAGECAST_IMAGE=(\S+)$", dockerfile, re.M).group(1)
    assert base.endswith(":" + CONFIG["version"])
    assert re.search(r"^FROM \$\{PAGECAST_IMAGE\}$", dockerfile, re.M)
    assert "BUILD_FROM" not in dockerfile.replace("no BUILD_FROM", "")
    assert '"-m", "pagecast.addon"]' in dockerfile and '["/usr/bin/tini", "--"' in dockerfile


def test_the_repository_is_an_app_repository_with_docs():
    repository = yaml.safe_load((ROOT / "repository.yaml").read_text())
    assert repository["name"] and repository["url"] == CONFIG["url"]
    for name in ("DOCS.md", "README.md", "CHANGELOG.md"):
        assert (ROOT / "addon" / name).read_text().strip(), name
    assert CONFIG["version"] in (ROOT / "addon" / "CHANGELOG.md").read_text()


def test_the_status_page_and_watch_page_use_relative_urls_so_ingress_paths_work():
    """Under ingress the page is at /api/hassio_ingress/<token>/: an absolute /status would ask
    Home Assistant itself, a relative one goes through the ingress to pagecast."""
    for page in ("index.html", "watch.html"):
        text = (ROOT / "src" / "pagecast" / "static" / page).read_text()
        # (a path's own separator, "/streams/", is not a URL)
        absolute = re.findall(r"""["'`]/(?:status|start|stop|health|devices|sessions|watch|players|streams)\b(?!/["'`])""", text)
        assert not absolute, (page, absolute)


class StandInIngress(StandIn):
    """Home Assistant's ingress on loopback: /api/hassio_ingress/<token>/<path> reaches pagecast
    as /<path> with X-Ingress-Path, as Core and the Supervisor pass it on; anything else is
    Home Assistant's own (404 here). Records every path asked for."""

    def __init__(self, upstream: str, token: str = "Xb3k9"):
        self.prefix = f"/api/hassio_ingress/{token}"
        self.path = self.prefix + "/"
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def forward(self):
                outer.paths.append(self.path)
                if not self.path.startswith(outer.prefix + "/"):
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                request = urllib.request.Request(
                    upstream + self.path[len(outer.prefix):],
                    data=self.rfile.read(length) if length else None,
                    method=self.command,
                    headers={k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type", "accept")}
                    | {"X-Ingress-Path": outer.prefix},
                )
                try:
                    response = urllib.request.urlopen(request, timeout=20)
                except urllib.error.HTTPError as exc:
                    response = exc
                with response:
                    body = response.read()
                    self.send_response(response.status)
                    for key in ("Content-Type", "Cache-Control"):
                        if response.headers.get(key):
                            self.send_header(key, response.headers[key])
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the browser went on (a newer thumbnail)

            do_GET = do_POST = forward

        super().__init__(Handler, "stand-in ingress")


async def _until(tab, expression: str, seconds: float = 20):
    with trio.fail_after(seconds):
        while not (value := await tab.evaluate(expression)):
            await trio.sleep(0.2)
        return value


@pytest.mark.e2e
async def test_the_status_page_and_its_watch_link_work_below_the_ingress_path(client, service, pages):
    started = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()
    assert started["state"] == "live", started
    card = f"document.querySelector('[data-session=\"{started['id']}\"]')"
    with StandInIngress(f"http://127.0.0.1:{service.port}") as ingress:
        async with open_player_browser() as browser:
            tab = await browser.open(ingress.url)
            await _until(tab, "document.getElementById('health')?.textContent.startsWith('version')")
            await _until(tab, f"{card} && {card}.querySelector('img') && {card}.querySelector('img').naturalWidth > 0")
            watch = await tab.evaluate(f"{card}.querySelector('a').href")
            assert watch == f"{ingress.url}watch/{started['id']}"
            player = await browser.open(watch + "?player=hlsjs")
            await _until(player, "window.pagecastStats && window.pagecastStats.currentTime > 0", 30)
            assert not (await player.stats())["errors"]
    await client.post("/stop", json={})
    outside = [p for p in ingress.paths if not p.startswith(ingress.prefix + "/") and p != "/favicon.ico"]
    assert not outside, outside
    asked = {p[len(ingress.prefix):].split("?")[0].rsplit("/", 1)[0] for p in ingress.paths if p.startswith(ingress.prefix)}
    assert {"", "/sessions/" + started["id"], "/watch", "/players", "/streams/" + started["id"]} <= asked, asked
