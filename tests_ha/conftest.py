"""Real parts for the integration's tests: a `pagecast serve` and a virtual Cast TV, each a
process of pagecast's own .venv, started here and killed by pid after. Home Assistant is the
real one of pytest-homeassistant-custom-component (its `hass` fixture)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_socket

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # custom_components/pagecast
sys.path.insert(0, str(Path(__file__).resolve().parent))

PAGECAST_PYTHON = REPO / ".venv" / "bin" / "python"
#: Loopback addresses of this folder's TVs; no other test uses them.
TV_HOSTS = [f"127.0.60.{n}" for n in range(2, 10)]
START_DEADLINE = 20.0


def free_port() -> int:
    with pytest_socket._true_socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # fixtures run with sockets blocked
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(log: Path, needle: str, proc: subprocess.Popen, what: str, deadline: float = START_DEADLINE) -> str:
    """The first line of ``log`` with ``needle``: what the child prints once it listens."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        text = log.read_text(errors="replace") if log.exists() else ""
        for line in text.splitlines():
            if needle in line:
                return line
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not print {needle!r} within {deadline} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM (a clean stop gives a TV back), then SIGKILL; by pid, its group with it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything of its group left behind
    except ProcessLookupError:
        pass


@dataclass
class VirtualTV:
    host: str
    name: str
    uuid: str
    proc: subprocess.Popen

    @property
    def state_url(self) -> str:
        return f"http://{self.host}:8008/state"


@dataclass
class Pagecast:
    url: str
    token: str | None
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_process(self.proc)


def start_tv(host: str, name: str, tmp: Path) -> VirtualTV:
    tv_uuid = str(uuid.uuid4())
    log = tmp / f"tv-{host}.log"
    proc = subprocess.Popen(
        [str(PAGECAST_PYTHON), "-m", "pagecast.virtual_tv", "--host", host, "--name", name, "--uuid", tv_uuid],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )
    try:
        wait_for_line(log, "screen: http://", proc, f"virtual TV at {host}")
    except BaseException:
        stop_process(proc)
        raise
    return VirtualTV(host, name, tv_uuid, proc)


def start_pagecast(tmp: Path, cast_hosts: list[str], token: str | None = None, *, port: int | None = None, state: Path | None = None) -> Pagecast:
    """``state``: its state directory, where it keeps its instance id (the same one: the same
    pagecast, restarted)."""
    port = port or free_port()
    state = state or tmp / f"state-{port}"
    runtime = tmp / f"run-{port}-{time.monotonic_ns()}"
    state.mkdir(exist_ok=True)
    runtime.mkdir()
    env = {
        **os.environ,
        "PAGECAST_CAST_HOSTS": ",".join(cast_hosts),
        "PAGECAST_MDNS": "false",
        "PAGECAST_ANNOUNCE": "false",
        "PAGECAST_STATE_DIR": str(state),
        "PAGECAST_RUNTIME_DIR": str(runtime),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PAGECAST_API_TOKEN", None)
    if token:
        env["PAGECAST_API_TOKEN"] = token
    log = tmp / f"pagecast-{port}-{time.monotonic_ns()}.log"
    proc = subprocess.Popen(
        [str(PAGECAST_PYTHON), "-m", "pagecast", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        wait_for_line(log, "pagecast listening on", proc, "pagecast serve")
    except BaseException:
        stop_process(proc)
        raise
    return Pagecast(f"http://127.0.0.1:{port}", token, proc, log)


@pytest.fixture(scope="session")
def tv(tmp_path_factory) -> Iterator[VirtualTV]:
    """A virtual Cast TV that every test may cast to."""
    tv = start_tv(TV_HOSTS[0], "HA Test TV", tmp_path_factory.mktemp("tv"))
    yield tv
    stop_process(tv.proc)


@pytest.fixture(scope="session")
def tv2(tmp_path_factory) -> Iterator[VirtualTV]:
    """A second TV, for actions on several at once."""
    tv = start_tv(TV_HOSTS[1], "HA Bedroom TV", tmp_path_factory.mktemp("tv2"))
    yield tv
    stop_process(tv.proc)


@pytest.fixture(scope="session")
def pagecast(tmp_path_factory, tv, tv2) -> Iterator[Pagecast]:
    """A pagecast without an API token that knows both virtual TVs."""
    service = start_pagecast(tmp_path_factory.mktemp("pagecast"), [tv.host, tv2.host])
    yield service
    service.stop()


@pytest.fixture(scope="session")
def pagecast_with_token(tmp_path_factory) -> Iterator[Pagecast]:
    """A pagecast that needs an API token (and knows no TV)."""
    service = start_pagecast(tmp_path_factory.mktemp("pagecast-token"), [], token="s3cret-pagecast-token")
    yield service
    service.stop()


@pytest.fixture
def own_pagecast(tmp_path, tv) -> Iterator[Pagecast]:
    """A pagecast of this test alone (it may be stopped), knowing the virtual TV."""
    service = start_pagecast(tmp_path, [tv.host])
    yield service
    service.stop()


@pytest.fixture(autouse=True)
def loopback_only(socket_enabled, enable_custom_integrations):
    """Real connections, to the loopback addresses of these tests only."""
    pytest_socket.socket_allow_hosts(["127.0.0.1", *TV_HOSTS], allow_unix_socket=True)
    yield


LOGIN_PAGE = '''
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/auth/authorize"):
            body = b"<html><body>Home Assistant login</body></html>"
            self.send_response(200); self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        else:
            self.send_response(302)
            self.send_header("Location", "/auth/authorize?response_type=code&client_id=x&redirect_uri=" + self.path)
            self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", flush=True)
server.serve_forever()
'''


@pytest.fixture(scope="session")
def login_page(tmp_path_factory) -> Iterator[str]:
    """Base URL of a stand-in for a signed-out Home Assistant: every page sends the browser to
    /auth/authorize, as HA's frontend does without valid tokens."""
    port = free_port()
    log = tmp_path_factory.mktemp("login") / "login.log"
    proc = subprocess.Popen([sys.executable, "-c", LOGIN_PAGE, str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_line(log, "listening", proc, "the login page server")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)
