"""A URL's secrets (user info, query values, fragment) appear in no answer, status or log line,
whatever way the session fails; only the renderer's navigation sees the raw URL."""

from __future__ import annotations

import contextlib
import logging

import psutil
import pytest

from helpers import session, wait_for
from pagecast.lowlevel.proc import descendants, is_renderer

MARKER = "Zq9sEcReT"


def secret_url(base: str, path: str) -> str:
    """``base`` + ``path`` with the marker in each place a URL carries a secret."""
    host = base.split("://", 1)[1]
    return f"http://viewer:{MARKER}pw@{host}{path}?token={MARKER}tok&view=kitchen#{MARKER}frag"


#: A service whose pages time out after 2 s.
pytestmark = pytest.mark.settings(load_timeout=2.0)


def failed(status: dict) -> str | None:
    return status["error"] if status["state"] == "failed" else None


def restarted(status: dict) -> str | None:
    return (status["last_restart"] or {}).get("reason")


async def fail_and_collect(client, url: str, caplog, then=None, outcome=failed) -> tuple[str, str]:
    """Start a session of ``url`` and wait for ``outcome`` (its failure, or its renderer's
    restart); everything a user or a log reader could see of it, as one text, and the reason."""
    caplog.set_level(logging.DEBUG)
    answer = await client.post("/start?wait=1", json={"url": url, "quality": "720p"})
    sid = answer.json()["id"]
    if then is not None:
        await then()
    status = await wait_for(lambda: session(client, sid), outcome)
    seen = "\n".join([answer.text, (await client.get("/status")).text, (await client.get(f"/sessions/{sid}")).text, caplog.text])
    await client.post("/stop", json={})
    return seen, outcome(status)


@pytest.mark.parametrize("how, path, says", [
    ("an HTTP error", "/missing", "answered HTTP 404"),
    ("a login page", "/ha/lovelace", "login page"),
    ("a page that never loads", "/hang", "did not finish loading within 2 s"),
    ("a renderer crash", "/dashboard.html", "crashed"),
])
async def test_no_answer_status_or_log_line_shows_a_urls_secrets_when_a_session_fails(client, pages, caplog, how, path, says):
    then, outcome = None, failed
    if how == "a renderer crash":  # healed by a new Chromium: the reason is in last_restart and the log
        async def then():
            for renderer in descendants(kind=is_renderer):
                with contextlib.suppress(psutil.NoSuchProcess):
                    renderer.kill()
        outcome = restarted
    seen, reason = await fail_and_collect(client, secret_url(pages, path), caplog, then, outcome)
    assert says in reason, reason
    assert MARKER not in seen, f"{how}: the secret shows in {[line for line in seen.splitlines() if MARKER in line][:3]}"
    assert f"{path}?token=***&view=***#***" in seen  # what is left still says which page


async def test_a_host_that_does_not_resolve_fails_without_showing_the_urls_secrets(client, caplog):
    seen, reason = await fail_and_collect(client, secret_url("http://no-such-host.invalid", "/dash"), caplog)
    assert "could not load" in reason and "no-such-host.invalid/dash" in reason
    assert MARKER not in seen


@pytest.mark.parametrize("auth", [
    {"ha_token": f"{MARKER}long-lived"},
    {"ha_refresh_token": f"{MARKER}refresh"},
    {"ha_refresh_token": f"{MARKER}refresh", "ha_client_id": "http://ha.local/"},
])
async def test_no_answer_status_or_log_line_shows_a_home_assistant_token(client, pages, caplog, auth):
    caplog.set_level(logging.DEBUG)
    answer = await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p", "auth": auth})
    sid = answer.json()["id"]
    assert answer.json()["state"] == "live", answer.text
    seen = "\n".join([answer.text, (await client.get("/status")).text, (await client.get(f"/sessions/{sid}")).text, (await client.get("/metrics")).text])
    stopped = await client.post("/stop", json={"id": sid})
    seen += stopped.text + caplog.text
    assert MARKER not in seen, [line for line in seen.splitlines() if MARKER in line][:3]
