"""The virtual Cast TV, driven by pychromecast (the sender Home Assistant uses) and by a raw
CASTV2 client where the wire itself is the point (network faults)."""

from __future__ import annotations

import re
import signal
import ssl
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
import psutil
import pychromecast
import pytest
import trio
from pychromecast import dial
from pychromecast.controllers.media import MediaStatusListener
from pychromecast.controllers.receiver import CastStatusListener
from pychromecast.discovery import CastBrowser, SimpleCastListener
from pychromecast.socket_client import ConnectionStatusListener

from helpers import lo, live_url

from pagecast.lowlevel.binaries import find_players_dir
from pagecast.lowlevel.proc import LineTail, open_child, pump_lines
from pagecast.virtual_tv import BindError, open_virtual_tv
from pagecast.virtual_tv.castv2 import (
    NS_CONNECTION,
    NS_HEARTBEAT,
    NS_MEDIA,
    NS_RECEIVER,
    FrameDecoder,
    Message,
    encode,
)

DMR = "CC1AD845"
BACKDROP = "E8C28D3C"
YOUTUBE = "233637DE"
HLS = "application/vnd.apple.mpegurl"
FMP4_HINTS = {"hlsSegmentFormat": "fmp4", "hlsVideoSegmentFormat": "fmp4"}


# ----------------------------------------------------------------------------- pychromecast


class Watcher(CastStatusListener, MediaStatusListener, ConnectionStatusListener):
    """pychromecast's listener calls, handed into Trio (they arrive on its socket thread)."""

    def __init__(self, cast: pychromecast.Chromecast):
        self.cast = cast
        self.connections: list[str] = []
        self.media: list[dict] = []
        self.load_failures: list[tuple[int, int]] = []
        self._token = trio.lowlevel.current_trio_token()
        self._changed = trio.Event()
        cast.register_status_listener(self)
        cast.register_connection_listener(self)
        cast.media_controller.register_status_listener(self)

    def _poke(self) -> None:
        try:
            trio.from_thread.run_sync(self._wake, trio_token=self._token)
        except trio.RunFinishedError:
            pass

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def new_cast_status(self, status) -> None:
        self._poke()

    def new_connection_status(self, status) -> None:
        self.connections.append(status.status)
        self._poke()

    def new_media_status(self, status) -> None:
        self.media.append({
            "state": status.player_state, "idle_reason": status.idle_reason, "time": status.current_time,
            "session": status.media_session_id, "content_id": status.content_id,
        })
        self._poke()

    def load_media_failed(self, queue_item_id: int, error_code: int) -> None:
        self.load_failures.append((queue_item_id, error_code))
        self._poke()

    async def until(self, predicate, timeout: float = 10.0, what: str = "condition") -> None:
        with trio.move_on_after(timeout):
            while not predicate():
                await self._changed.wait()
            return
        raise AssertionError(f"pychromecast never saw {what}: status={self.cast.status} media={self.media[-3:]} connections={self.connections}")


def serialize_writes(cast: pychromecast.Chromecast) -> None:
    """pychromecast writes to its TLS socket from whichever thread sends (its own, ours), and
    two SSL writes at once corrupt the stream: the TV (virtual or real) drops the connection
    (home-assistant/core#111762). One lock per client keeps these tests about the TV."""
    client = cast.socket_client
    lock = threading.RLock()
    send = client.send_message

    def locked(*args, **kwargs):
        with lock:
            return send(*args, **kwargs)

    client.send_message = locked


@asynccontextmanager
async def sender(tv, **options) -> AsyncIterator[tuple[pychromecast.Chromecast, Watcher]]:
    """pychromecast connected by host, as Home Assistant does with a known host."""
    info = await trio.to_thread.run_sync(partial(dial.get_device_info, tv.host, timeout=10))
    assert info is not None, "eureka_info did not answer"
    cast = await trio.to_thread.run_sync(
        partial(pychromecast.get_chromecast_from_host, (tv.host, 8009, info.uuid, info.model_name, info.friendly_name), retry_wait=0.3, timeout=5, **options)
    )
    serialize_writes(cast)
    watcher = Watcher(cast)
    try:
        await trio.to_thread.run_sync(cast.wait, 10)
        yield cast, watcher
    finally:
        if cast.socket_client.ident is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(cast.disconnect, 5)


async def play(cast: pychromecast.Chromecast, url: str, content_type: str = HLS, **media_info) -> None:
    """Launch the Default Media Receiver if needed and LOAD, like Home Assistant's cast."""
    await trio.to_thread.run_sync(
        partial(cast.media_controller.play_media, url, content_type, stream_type="LIVE" if content_type == HLS else "BUFFERED", media_info=media_info or None)
    )


def last_media(watcher: Watcher) -> dict:
    return watcher.media[-1] if watcher.media else {}


# ----------------------------------------------------------------------------- raw CASTV2


class RawSender:
    """A bare CASTV2 client over TLS, for what a library would hide."""

    def __init__(self, stream: trio.SSLStream):
        self.stream = stream
        self._decoder = FrameDecoder()
        self._pending: list[Message] = []

    async def send(self, namespace: str, payload: dict, destination: str = "receiver-0") -> None:
        await self.stream.send_all(encode("sender-raw", destination, namespace, payload))

    async def receive(self, timeout: float = 5.0) -> Message:
        with trio.fail_after(timeout):
            while not self._pending:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError("device closed the connection")
                self._pending += self._decoder.feed(data)
        return self._pending.pop(0)


@asynccontextmanager
async def raw_sender(host: str) -> AsyncIterator[RawSender]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    tcp = await trio.open_tcp_stream(host, 8009)
    stream = trio.SSLStream(tcp, context)
    try:
        await stream.do_handshake()
        client = RawSender(stream)
        await client.send(NS_CONNECTION, {"type": "CONNECT"})
        yield client
    finally:
        tcp.socket.close()


# ----------------------------------------------------------------------------- discovery


async def discovered(tv, **browser_options):
    """The TV as pychromecast's CastBrowser finds it (by known host or by mDNS)."""
    found = trio.Event()
    token = trio.lowlevel.current_trio_token()
    browser = CastBrowser(SimpleCastListener(lambda uuid, service: trio.from_thread.run_sync(found.set, trio_token=token)), **browser_options)
    browser.start_discovery()
    try:
        with trio.fail_after(15):
            await found.wait()
    finally:
        await trio.to_thread.run_sync(browser.stop_discovery)
    return browser.devices[tv.uuid]


async def test_pychromecast_finds_the_tv_by_host_with_its_name_uuid_and_model():
    async with open_virtual_tv(lo("127.0.42.2"), "Living Room TV") as tv:
        info = await trio.to_thread.run_sync(dial.get_device_info, tv.host)
        assert (info.friendly_name, info.uuid, info.model_name, info.manufacturer) == ("Living Room TV", tv.uuid, "pagecast virtual TV", "pagecast")
        assert info.cast_type == "cast" and info.multizone_supported is False

        device = await discovered(tv, known_hosts=[tv.host])
        assert (device.friendly_name, device.model_name, device.cast_type, device.host, device.port) == ("Living Room TV", "pagecast virtual TV", "cast", tv.host, 8009)

        async with sender(tv) as (cast, _):
            assert cast.status.app_id == BACKDROP and cast.is_idle
            assert cast.status.is_stand_by is False and cast.status.is_active_input is True


async def test_eureka_info_answers_on_https_8443_and_http_8008_for_any_params():
    async with open_virtual_tv(lo("127.0.42.3"), "Kitchen") as tv, httpx.AsyncClient(verify=False, timeout=5) as client:
        for url in (f"https://{tv.host}:8443/setup/eureka_info?params=device_info,name", f"http://{tv.host}:8008/setup/eureka_info?params=multizone"):
            info = (await client.get(url)).json()
            assert info["name"] == "Kitchen" and info["ssdp_udn"] == str(tv.uuid)
            assert info["device_info"]["ssdp_udn"] == str(tv.uuid)
            assert info["device_info"]["capabilities"] == {**info["device_info"]["capabilities"], "display_supported": True, "multizone_supported": False}


async def test_a_second_tv_on_the_same_address_or_a_foreign_address_fails_with_a_clear_error():
    async with open_virtual_tv(lo("127.0.42.4")):
        with pytest.raises(BindError, match=re.escape(lo("127.0.42.4")) + r":8009.*already"):
            async with open_virtual_tv(lo("127.0.42.4")):
                pass
    foreign = "203.0.113.77"
    assert all(a.address != foreign for addrs in psutil.net_if_addrs().values() for a in addrs)
    with pytest.raises(BindError, match=r"203\.0\.113\.77:8009.*not on any interface"):
        async with open_virtual_tv(foreign):
            pass


async def test_mdns_announces_the_tv_to_zeroconf_browsers_on_this_host():
    from zeroconf import Zeroconf

    async with open_virtual_tv(lo("127.0.42.23"), "Announced TV", mdns=True) as tv:
        device = await discovered(tv, zeroconf_instance=await trio.to_thread.run_sync(Zeroconf))
        assert (device.friendly_name, device.model_name, device.host, device.port) == ("Announced TV", "pagecast virtual TV", tv.host, 8009)


# ----------------------------------------------------------------------------- playing


async def test_live_hls_plays_with_time_advancing_then_buffering_when_the_stream_stalls(media, request):
    async with open_virtual_tv(lo("127.0.42.5")) as tv, sender(tv) as (cast, watcher):
        url = live_url(media, request, stall_after=5)
        await play(cast, url, **FMP4_HINTS)
        await watcher.until(lambda: last_media(watcher).get("state") == "PLAYING", what="PLAYING")
        assert cast.status.app_id == DMR and cast.media_controller.status.content_id == url
        first = (await tv.wait_for(lambda st: st["current_time"] > 0)).get("current_time")
        st = await tv.wait_for(lambda st: st["current_time"] >= first + 1.0, timeout=5)
        assert st["player_state"] == "PLAYING" and st["stats"]["frames"] > 15
        assert st["media"]["hlsVideoSegmentFormat"] == "fmp4" and st["media"]["streamType"] == "LIVE"

        await watcher.until(lambda: last_media(watcher).get("state") == "BUFFERING", timeout=10, what="BUFFERING after the stall")
        assert tv.state()["stats"]["stalls"] == 1
        assert 3.0 <= tv.state()["current_time"] <= 5.5


async def test_progressive_fmp4_plays_to_the_end_and_finishes(media):
    async with open_virtual_tv(lo("127.0.42.6")) as tv, sender(tv) as (cast, watcher):
        await play(cast, f"{media}/clip.mp4", "video/mp4")
        await watcher.until(lambda: last_media(watcher).get("state") == "PLAYING", what="PLAYING")
        await watcher.until(lambda: last_media(watcher).get("idle_reason") == "FINISHED", timeout=10, what="IDLE/FINISHED")
        st = tv.state()
        assert st["player_state"] == "IDLE" and st["stats"]["seconds_played"] >= 2.0 and st["stats"]["stalls"] == 0


async def test_a_missing_stream_fails_the_load_and_ends_idle_with_error(media):
    async with open_virtual_tv(lo("127.0.42.7")) as tv, sender(tv) as (cast, watcher):
        await play(cast, f"{media}/missing.m3u8", **FMP4_HINTS)
        await watcher.until(lambda: watcher.load_failures, what="LOAD_FAILED")
        assert watcher.load_failures == [(1, 311)]  # HLS_NETWORK_MASTER_PLAYLIST
        await watcher.until(lambda: last_media(watcher).get("idle_reason") == "ERROR", what="IDLE/ERROR")
        assert "404" in tv.state()["stats"]["error"]


async def test_a_new_load_interrupts_the_playing_media_and_the_same_session_plays_again(media, request):
    async with open_virtual_tv(lo("127.0.42.8")) as tv, sender(tv) as (cast, watcher):
        await play(cast, live_url(media, request), **FMP4_HINTS)
        await watcher.until(lambda: last_media(watcher).get("state") == "PLAYING", what="PLAYING")
        session = cast.status.session_id
        second = live_url(media, request)
        await play(cast, second, **FMP4_HINTS)
        await watcher.until(lambda: any(m["idle_reason"] == "INTERRUPTED" for m in watcher.media), what="INTERRUPTED")
        await watcher.until(lambda: last_media(watcher).get("state") == "PLAYING" and last_media(watcher)["content_id"] == second, what="the second stream PLAYING")
        assert cast.status.session_id == session and tv.state()["media_status"]["mediaSessionId"] == 2


async def test_pause_play_and_stop_from_the_sender_drive_the_player(media, request):
    async with open_virtual_tv(lo("127.0.42.9")) as tv, sender(tv) as (cast, watcher):
        await play(cast, live_url(media, request), **FMP4_HINTS)
        await watcher.until(lambda: last_media(watcher).get("state") == "PLAYING", what="PLAYING")
        await trio.to_thread.run_sync(cast.media_controller.pause)
        await watcher.until(lambda: last_media(watcher).get("state") == "PAUSED", what="PAUSED")
        await trio.sleep(0.3)  # a progress report already on its way may still land
        paused_at = tv.state()["current_time"]
        await trio.sleep(1.2)
        assert tv.state()["current_time"] == paused_at and tv.state()["stats"]["stalls"] == 0
        await trio.to_thread.run_sync(cast.media_controller.play)
        await tv.wait_for(lambda st: st["current_time"] > paused_at + 0.4)
        assert tv.player_state == "PLAYING"
        await trio.to_thread.run_sync(cast.media_controller.stop)
        await watcher.until(lambda: last_media(watcher).get("idle_reason") == "CANCELLED", what="IDLE/CANCELLED")
        assert tv.app_id == DMR


# ----------------------------------------------------------------------------- faults


async def test_remote_stop_ends_the_media_cancelled_and_keeps_the_app(media, request):
    async with open_virtual_tv(lo("127.0.42.10")) as tv, sender(tv) as (cast, watcher):
        await play(cast, live_url(media, request), **FMP4_HINTS)
        await watcher.until(lambda: last_media(watcher).get("state") in ("BUFFERING", "PLAYING"), what="the media loaded")
        tv.remote_stop()
        await watcher.until(lambda: last_media(watcher).get("idle_reason") == "CANCELLED", what="IDLE/CANCELLED")
        assert cast.status.app_id == DMR and tv.app_id == DMR and tv.player_state == "IDLE"


async def test_remote_quit_returns_to_the_idle_screen_and_closes_the_app_channel(media, request):
    async with open_virtual_tv(lo("127.0.42.11")) as tv, sender(tv) as (cast, watcher):
        await trio.to_thread.run_sync(cast.start_app, DMR)
        transport = cast.status.transport_id
        tv.remote_quit()
        await watcher.until(lambda: cast.status.app_id == BACKDROP, what="the idle screen")
        assert cast.is_idle and tv.media is None
        await tv.wait_for(lambda st: not any(transport in v for c in st["connections"] for v in c["virtual"]))


async def test_quit_app_from_the_sender_returns_to_the_idle_screen():
    async with open_virtual_tv(lo("127.0.42.24")) as tv, sender(tv) as (cast, watcher):
        await trio.to_thread.run_sync(cast.start_app, DMR)
        await trio.to_thread.run_sync(cast.quit_app)
        await watcher.until(lambda: cast.status.app_id == BACKDROP, what="the idle screen")
        assert tv.app_id == BACKDROP


async def test_another_app_taking_over_interrupts_our_media(media, request):
    async with open_virtual_tv(lo("127.0.42.12")) as tv, sender(tv) as (cast, watcher):
        await play(cast, live_url(media, request), **FMP4_HINTS)
        await watcher.until(lambda: last_media(watcher).get("state") == "PLAYING", what="PLAYING")
        ours = cast.status.session_id
        tv.launch_app(YOUTUBE, "YouTube")
        await watcher.until(lambda: cast.status.app_id == YOUTUBE, what="YouTube running")
        assert cast.status.display_name == "YouTube" and cast.status.session_id != ours
        assert any(m["idle_reason"] == "INTERRUPTED" for m in watcher.media)
        assert tv.state()["app_name"] == "YouTube"


async def test_standby_is_reported_and_a_launch_wakes_the_tv():
    async with open_virtual_tv(lo("127.0.42.13")) as tv, sender(tv) as (cast, watcher):
        tv.standby(True)
        await watcher.until(lambda: cast.status.is_stand_by is True and cast.status.is_active_input is False, what="standby")
        await trio.to_thread.run_sync(cast.start_app, DMR)
        await watcher.until(lambda: cast.status.is_stand_by is False and cast.status.is_active_input is True, what="awake")
        assert tv.state()["standby"] is False


async def test_set_volume_and_mute_from_the_sender():
    async with open_virtual_tv(lo("127.0.42.14")) as tv, sender(tv) as (cast, watcher):
        await trio.to_thread.run_sync(cast.set_volume, 0.35)
        await trio.to_thread.run_sync(cast.set_volume_muted, True)
        await watcher.until(lambda: cast.status.volume_muted, what="muted")
        assert cast.status.volume_level == pytest.approx(0.35) and tv.volume_level == pytest.approx(0.35)


async def test_refused_loads_fail_with_load_failed_until_accepted_again(media, request):
    async with open_virtual_tv(lo("127.0.42.15")) as tv, sender(tv) as (cast, watcher):
        tv.refuse_load("APP_ERROR")
        await play(cast, live_url(media, request), **FMP4_HINTS)
        await watcher.until(lambda: watcher.load_failures, what="LOAD_FAILED")
        assert watcher.load_failures == [(1, 905)] and tv.player_state == "IDLE"
        assert ("urn:x-cast:com.google.cast.media", "LOAD") in {(ns, p.get("type")) for ns, p in tv.received}
        tv.refuse_load(None)
        await play(cast, live_url(media, request), **FMP4_HINTS)
        await watcher.until(lambda: last_media(watcher).get("state") == "PLAYING", what="PLAYING")


async def test_receiver_requests_are_answered_as_cast_devices_answer_them():
    async with open_virtual_tv(lo("127.0.42.25")) as tv, raw_sender(tv.host) as raw:
        await raw.send(NS_MEDIA, {"type": "GET_STATUS", "requestId": 1}, destination="nobody")
        await raw.send(NS_CONNECTION, {"type": "CONNECT", "protocolVersionList": [0, 1, 3, 9]})
        assert (await raw.receive()).payload == {"type": "CONNECTED", "protocolVersion": 3}

        await raw.send(NS_RECEIVER, {"type": "LAUNCH", "appId": "00000000", "requestId": 2})
        assert (await raw.receive()).payload == {"type": "LAUNCH_ERROR", "reason": "NOT_FOUND", "requestId": 2}
        await raw.send(NS_RECEIVER, {"type": "GET_APP_AVAILABILITY", "appId": [DMR, "00000000"], "requestId": 3})
        assert (await raw.receive()).payload == {"responseType": "GET_APP_AVAILABILITY", "availability": {DMR: "APP_AVAILABLE", "00000000": "APP_UNAVAILABLE"}, "requestId": 3}

        await raw.send(NS_RECEIVER, {"type": "LAUNCH", "appId": DMR, "requestId": 4})
        launched = await raw.receive()
        assert (launched.destination_id, launched.type, launched.request_id) == ("*", "RECEIVER_STATUS", 4)
        (app,) = launched.payload["status"]["applications"]
        assert app["appId"] == DMR and app["transportId"] == app["sessionId"] and {"name": NS_MEDIA} in app["namespaces"]
        assert launched.payload["status"]["isStandBy"] is False and launched.payload["status"]["volume"]["controlType"] == "attenuation"

        await raw.send(NS_CONNECTION, {"type": "CONNECT"}, destination="no-such-transport")
        closed = await raw.receive()
        assert (closed.source_id, closed.type) == ("no-such-transport", "CLOSE")
        await raw.send(NS_RECEIVER, {"type": "STOP", "sessionId": "someone-else", "requestId": 5})
        assert (await raw.receive()).payload == {"type": "INVALID_REQUEST", "reason": "INVALID_SESSION_ID", "requestId": 5}
        assert [ns for ns, p in tv.received if p.get("requestId") == 1] == [NS_MEDIA]  # received, not answered: no virtual connection


async def test_a_load_reports_loading_until_the_player_has_the_stream(media, request):
    async with open_virtual_tv(lo("127.0.42.26")) as tv, raw_sender(tv.host) as raw:
        await raw.send(NS_RECEIVER, {"type": "LAUNCH", "appId": DMR, "requestId": 1})
        transport = (await raw.receive()).payload["status"]["applications"][0]["transportId"]
        await raw.send(NS_CONNECTION, {"type": "CONNECT"}, destination=transport)
        url = live_url(media, request)
        await raw.send(NS_MEDIA, {"type": "LOAD", "requestId": 2, "media": {"contentId": url, "contentType": HLS, "streamType": "LIVE", **FMP4_HINTS}}, destination=transport)
        loading = (await raw.receive()).payload
        assert loading["requestId"] == 0 and loading["status"][0]["playerState"] == "IDLE" and "idleReason" not in loading["status"][0]
        assert loading["status"][0]["extendedStatus"]["playerState"] == "LOADING"
        answer = (await raw.receive(timeout=10)).payload
        assert answer["requestId"] == 2 and answer["status"][0]["playerState"] in ("BUFFERING", "PLAYING")
        assert answer["status"][0]["media"]["contentId"] == url and answer["status"][0]["media"]["duration"] == -1
        assert tv.player_state in ("BUFFERING", "PLAYING")


async def test_a_load_without_autoplay_loads_and_stays_paused_until_play(media, request):
    async with open_virtual_tv(lo("127.0.42.27")) as tv, raw_sender(tv.host) as raw:
        await raw.send(NS_RECEIVER, {"type": "LAUNCH", "appId": DMR, "requestId": 1})
        transport = (await raw.receive()).payload["status"]["applications"][0]["transportId"]
        await raw.send(NS_CONNECTION, {"type": "CONNECT"}, destination=transport)
        media_info = {"contentId": live_url(media, request), "contentType": HLS, "streamType": "LIVE", **FMP4_HINTS}
        await raw.send(NS_MEDIA, {"type": "LOAD", "requestId": 2, "autoplay": False, "media": media_info}, destination=transport)
        while (answer := await raw.receive(timeout=10)).request_id != 2:
            pass
        status = answer.payload["status"][0]
        assert status["playerState"] == "PAUSED"
        await trio.sleep(0.3)
        paused_at = tv.state()["current_time"]
        await trio.sleep(1.0)
        assert tv.player_state == "PAUSED" and tv.state()["current_time"] == paused_at
        await raw.send(NS_MEDIA, {"type": "PLAY", "requestId": 3, "mediaSessionId": status["mediaSessionId"]}, destination=transport)
        await tv.wait_for(lambda st: st["player_state"] == "PLAYING" and st["current_time"] > paused_at + 0.4)


async def test_a_silent_network_holds_every_byte_and_new_handshakes_until_restored():
    async with open_virtual_tv(lo("127.0.42.16")) as tv, raw_sender(tv.host) as raw:
        await raw.send(NS_HEARTBEAT, {"type": "PING"})
        assert (await raw.receive()).payload == {"type": "PONG"}
        tv.drop_network("silent")
        await raw.send(NS_HEARTBEAT, {"type": "PING"})
        with pytest.raises(trio.TooSlowError):
            await raw.receive(timeout=1.0)
        with trio.move_on_after(1.0) as handshake:
            async with raw_sender(tv.host):
                pass
        assert handshake.cancelled_caught, "a new connection completed its TLS handshake on a silent network"
        assert tv.state()["network"]["mode"] == "silent"
        async with httpx.AsyncClient(verify=False, timeout=1.0) as client:
            with pytest.raises(httpx.TimeoutException):
                await client.get(f"https://{tv.host}:8443/setup/eureka_info")
        tv.restore_network()
        assert (await raw.receive(timeout=2.0)).payload == {"type": "PONG"}


async def test_a_reset_network_aborts_connections_and_refuses_new_ones_until_restored():
    async with open_virtual_tv(lo("127.0.42.17")) as tv, sender(tv) as (cast, watcher):
        async with raw_sender(tv.host) as raw:
            tv.drop_network("reset")
            with pytest.raises((trio.BrokenResourceError, EOFError)):
                await raw.receive(timeout=2.0)
        with pytest.raises(OSError):
            await trio.open_tcp_stream(tv.host, 8009)
        assert await trio.to_thread.run_sync(partial(dial.get_device_info, tv.host, timeout=4)) is None
        await watcher.until(lambda: "LOST" in watcher.connections, what="the connection LOST")
        tv.restore_network()
        await watcher.until(lambda: watcher.connections[-1] == "CONNECTED", what="CONNECTED again")
        await watcher.until(lambda: cast.status is not None and cast.status.app_id == BACKDROP, what="the receiver status again")


async def test_a_slow_network_delays_every_reply():
    async with open_virtual_tv(lo("127.0.42.18")) as tv, raw_sender(tv.host) as raw:
        tv.slow_network(0.5)
        started = trio.current_time()
        await raw.send(NS_RECEIVER, {"type": "GET_STATUS", "requestId": 7})
        reply = await raw.receive()
        assert reply.type == "RECEIVER_STATUS" and reply.request_id == 7
        assert trio.current_time() - started >= 0.5


async def test_restart_drops_connections_and_comes_back_at_the_idle_screen_without_the_media(media, request):
    async with open_virtual_tv(lo("127.0.42.19")) as tv, sender(tv) as (cast, watcher):
        await play(cast, live_url(media, request), **FMP4_HINTS)
        await watcher.until(lambda: last_media(watcher).get("state") == "PLAYING", what="PLAYING")
        await tv.restart()
        assert tv.app_id == BACKDROP and tv.media is None and tv.player_state == "IDLE"
        assert not [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]
        await watcher.until(lambda: "LOST" in watcher.connections and watcher.connections[-1] == "CONNECTED", what="a reconnect")
        await watcher.until(lambda: cast.status is not None and cast.status.app_id == BACKDROP, what="the idle screen")


async def test_faults_screen_and_state_over_http():
    async with open_virtual_tv(lo("127.0.42.20"), "Den") as tv, httpx.AsyncClient(base_url=f"http://{tv.host}:8008", timeout=5) as client:
        screen = await client.get("/")
        assert screen.status_code == 200 and "/state" in screen.text
        assert (await client.post("/fault/standby", json={"on": True})).json()["state"]["standby"] is True
        assert (await client.post("/fault/launch_app", json={"app_id": YOUTUBE})).json()["state"]["app_id"] == YOUTUBE
        assert (await client.post("/fault/slow_network?delay_s=0.2")).json()["state"]["network"]["delay_s"] == 0.2
        assert (await client.post("/fault/refuse_load", json={"reason": None})).json()["state"]["network"]["refuse_load"] is None
        assert (await client.post("/fault/melt")).status_code == 404
        assert (await client.post("/fault/drop_network", json={"mode": "sideways"})).status_code == 400
        state = (await client.get("/state")).json()
        assert state["name"] == "Den" and state["receiver"]["isStandBy"] is False
        if find_players_dir() is not None:
            assert (await client.get("/players/hls.js")).status_code == 200


async def test_cli_runs_until_sigterm_and_stops_cleanly():
    tail = LineTail()
    screen = trio.Event()

    def on_line(line: str) -> None:
        if f"screen: http://{lo('127.0.42.21')}:8008/" in line:
            screen.set()

    argv = [sys.executable, "-m", "pagecast.virtual_tv", "--host", lo("127.0.42.21"), "--name", "CLI TV"]
    async with open_child(argv, name="virtual-tv-cli", stdout=True) as child, trio.open_nursery() as nursery:
        nursery.start_soon(pump_lines, child.stdout, tail, on_line)
        with trio.fail_after(20):
            await screen.wait()
        info = await trio.to_thread.run_sync(dial.get_device_info, lo("127.0.42.21"))
        assert info.friendly_name == "CLI TV"
        child.signal_group(signal.SIGTERM)
        with trio.fail_after(10):
            assert await child.wait() == 0


@pytest.mark.e2e
async def test_shaka_player_plays_live_hls_in_headless_chromium(media, request):
    if find_players_dir() is None:
        pytest.skip("Shaka Player is not installed (ops/install)")
    async with open_virtual_tv(lo("127.0.42.22"), player="shaka") as tv, sender(tv) as (cast, watcher):
        await play(cast, live_url(media, request), **FMP4_HINTS)
        await watcher.until(lambda: last_media(watcher).get("state") == "PLAYING", timeout=30, what="PLAYING in Shaka")
        first = tv.state()["current_time"]
        st = await tv.wait_for(lambda st: st["current_time"] >= first + 1.0, timeout=5)
        assert st["stats"]["frames"] > 0 and st["player_state"] == "PLAYING"
