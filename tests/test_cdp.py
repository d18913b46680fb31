"""pagecast.lowlevel.cdp against a scripted fake DevTools server, plus one real Chromium."""

from __future__ import annotations

import json
import re
import shutil
import signal
from functools import partial

import pytest
import trio
import trio_websocket

from pagecast.lowlevel.binaries import find_chromium
from pagecast.lowlevel.cdp import CdpConnectionClosed, CdpError, CdpTimeout, open_cdp
from pagecast.lowlevel.proc import LineTail, open_child, pump_lines


class FakeBrowser:
    """Answers commands by name; ``never`` is not answered, ``close`` drops the socket."""

    def __init__(self):
        self.received: list[dict] = []
        self.connections = 0

    async def handler(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        self.connections += 1
        try:
            async with trio.open_nursery() as nursery:  # answers may overtake each other
                while True:
                    msg = json.loads(await ws.get_message())
                    self.received.append(msg)
                    nursery.start_soon(self.answer, ws, msg)
        except* trio_websocket.ConnectionClosed:
            pass

    async def answer(self, ws, msg: dict) -> None:
        try:
            await self._answer(ws, msg)
        except trio_websocket.ConnectionClosed:
            pass

    async def _answer(self, ws, msg: dict) -> None:
        method, params, mid = msg["method"], msg.get("params", {}), msg["id"]
        sid = {"sessionId": msg["sessionId"]} if "sessionId" in msg else {}
        if method == "echo":
            await ws.send_message(json.dumps({"id": mid, "result": {"params": params, **sid}, **sid}))
        elif method == "fail":
            await ws.send_message(json.dumps({"id": mid, "error": {"code": -32000, "message": "no such thing"}}))
        elif method == "big":
            await ws.send_message(json.dumps({"id": mid, "result": {"data": "x" * params["size"]}}))
        elif method == "slow":
            await trio.sleep(params["delay"])
            await ws.send_message(json.dumps({"id": mid, "result": {"late": True}}))
        elif method == "emit":
            for event in params["events"]:
                await ws.send_message(json.dumps(event))
            await ws.send_message(json.dumps({"id": mid, "result": {}}))
        elif method == "close":
            await ws.aclose()
        elif method == "never":
            pass


@pytest.fixture
async def fake(nursery):
    browser = FakeBrowser()
    server = await nursery.start(partial(trio_websocket.serve_websocket, browser.handler, "127.0.0.1", 0, ssl_context=None))
    browser.url = f"ws://127.0.0.1:{server.port}/devtools/browser/fake"
    yield browser


async def test_execute_returns_the_result_and_sends_session_id(fake):
    async with open_cdp(fake.url) as cdp:
        assert await cdp.execute("echo", {"a": 1}) == {"params": {"a": 1}}
        assert await cdp.session("S1").execute("echo") == {"params": {}, "sessionId": "S1"}
    assert [m.get("sessionId") for m in fake.received] == [None, "S1"]


async def test_error_answer_raises_cdp_error_with_method_code_and_message(fake):
    async with open_cdp(fake.url) as cdp:
        with pytest.raises(CdpError) as info:
            await cdp.execute("fail")
        assert (info.value.method, info.value.code, info.value.message) == ("fail", -32000, "no such thing")
        assert await cdp.execute("echo") == {"params": {}}  # still usable


async def test_concurrent_calls_get_their_own_answers(fake):
    results = {}
    async with open_cdp(fake.url) as cdp:
        async def call(i):
            results[i] = await cdp.execute("slow" if i % 2 else "echo", {"delay": 0.05 + i / 100, "i": i})
        async with trio.open_nursery() as n:
            for i in range(10):
                n.start_soon(call, i)
    assert all(results[i] == ({"late": True} if i % 2 else {"params": {"delay": 0.05 + i / 100, "i": i}}) for i in range(10))


async def test_pending_calls_fail_at_once_when_the_connection_closes(fake):
    errors = []
    async with open_cdp(fake.url) as cdp:
        async def waiter():
            with pytest.raises(CdpConnectionClosed):
                await cdp.execute("never", timeout=None)
            errors.append(trio.current_time())
        async with trio.open_nursery() as n:
            n.start_soon(waiter)
            n.start_soon(waiter)
            await trio.sleep(0.1)
            start = trio.current_time()
            with pytest.raises(CdpConnectionClosed):
                await cdp.execute("close")
        assert len(errors) == 2 and max(errors) - start < 1.0
        assert cdp.closed
        with pytest.raises(CdpConnectionClosed):
            await cdp.execute("echo")  # later calls fail immediately too


async def test_listeners_get_matching_events_and_end_when_the_connection_closes(fake):
    events = [
        {"method": "Page.loadEventFired", "params": {"n": 1}, "sessionId": "A"},
        {"method": "Page.loadEventFired", "params": {"n": 2}, "sessionId": "B"},
        {"method": "Target.targetCrashed", "params": {"n": 3}},
        {"method": "Page.frameNavigated", "params": {"n": 4}, "sessionId": "A"},
    ]
    async with open_cdp(fake.url) as cdp:
        async with cdp.session("A").listen("Page.loadEventFired") as page_a, cdp.listen("Target.targetCrashed", session_id=None) as browser, cdp.listen() as everything:
            await cdp.execute("emit", {"events": events})
            await trio.sleep(0.05)
            assert [e.params["n"] for e in [page_a.receive_nowait()]] == [1]
            with pytest.raises(trio.WouldBlock):
                page_a.receive_nowait()
            crashed = browser.receive_nowait()
            assert (crashed.method, crashed.session_id, crashed.params) == ("Target.targetCrashed", None, {"n": 3})
            with pytest.raises(CdpConnectionClosed):
                await cdp.execute("close")
            got = [e.params["n"] async for e in everything]  # ends: no hang
            assert got == [1, 2, 3, 4]


async def test_timeout_raises_and_a_late_answer_is_ignored(fake):
    async with open_cdp(fake.url) as cdp:
        with pytest.raises(CdpTimeout):
            await cdp.execute("slow", {"delay": 0.3}, timeout=0.05)
        assert not cdp._pending
        await trio.sleep(0.4)
        assert await cdp.execute("echo", {"ok": 1}) == {"params": {"ok": 1}}


async def test_cancelled_call_leaves_connection_usable(fake):
    async with open_cdp(fake.url) as cdp:
        with trio.move_on_after(0.05):
            await cdp.execute("never")
        with trio.move_on_after(0.05):
            await cdp.execute("slow", {"delay": 0.1})
        assert not cdp._pending
        await trio.sleep(0.15)
        assert await cdp.execute("echo") == {"params": {}}


async def test_cancel_right_after_sending_is_clean(fake):
    # Cancel at every checkpoint count in turn; the socket must never be left half-written.
    async with open_cdp(fake.url) as cdp:
        for _ in range(20):
            with trio.CancelScope() as scope:
                scope.cancel()
                await cdp.execute("echo")
        assert await cdp.execute("echo", {"last": True}) == {"params": {"last": True}}


async def test_large_messages_are_accepted(fake):
    async with open_cdp(fake.url) as cdp:
        result = await cdp.execute("big", {"size": 3_000_000})
    assert len(result["data"]) == 3_000_000


async def test_exception_in_block_comes_out_unwrapped(fake):
    with pytest.raises(KeyError):
        async with open_cdp(fake.url) as cdp:
            await cdp.execute("echo")
            raise KeyError("mine")


async def test_outer_cancellation_of_the_block_is_clean(fake):
    with trio.move_on_after(0.2) as scope:
        async with open_cdp(fake.url) as cdp:
            await cdp.execute("never", timeout=None)
    assert scope.cancelled_caught


# -- a real browser -----------------------------------------------------------------


@pytest.mark.skipif(not shutil.which(find_chromium()), reason="Chromium not installed")
async def test_real_chromium_flattened_session_and_crash_fails_pending_call(tmp_path):
    argv = [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
            "--disable-default-apps", "--mute-audio", f"--user-data-dir={tmp_path}", "--remote-debugging-port=0", "about:blank"]
    async with open_child(argv, name="chromium") as child:
        tail = LineTail()
        url = None
        while url is None:
            data = await child.stderr.receive_some(65536)
            assert data, tail.text()
            for line in tail.feed(data):
                if m := re.search(r"DevTools listening on (ws://\S+)", line):
                    url = m.group(1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump_lines, child.stderr, tail, lambda line: None)
            async with open_cdp(url) as cdp:
                target = await cdp.execute("Target.createTarget", {"url": "about:blank"})
                attached = await cdp.execute("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
                page = cdp.session(attached["sessionId"])
                value = await page.execute("Runtime.evaluate", {"expression": "6 * 7", "returnByValue": True})
                assert value["result"]["value"] == 42
                with pytest.raises(CdpError):
                    await page.execute("No.suchMethod")

                async def kill_soon():
                    await trio.sleep(0.3)
                    child.signal_group(signal.SIGKILL)

                nursery.start_soon(kill_soon)
                start = trio.current_time()
                with pytest.raises(CdpConnectionClosed):
                    await page.execute("Runtime.evaluate", {"expression": "new Promise(() => {})", "awaitPromise": True}, timeout=None)
                assert trio.current_time() - start < 3
