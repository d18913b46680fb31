"""Device directory and the screen model: names, uuids and addresses resolve to one device;
what counts as a person's media, which the service must not interrupt."""

from __future__ import annotations

import pytest
import trio

from helpers import lo
from pagecast.core.screen import DMR_APP_ID, Media, Screen, Stream
from pagecast.core.device import Device, looks_like_address, parse_eureka as _parse_eureka
from pagecast.server.devices import Directory
from pagecast.core.settings import Settings
from pagecast.core.errors import Conflict, NotFound

LIVING = Device(name="Living Room TV", uuid="8d1a6c9e-0000-4000-8000-000000000001", model="Chromecast", manufacturer="Google", host="192.168.1.20")
KITCHEN = Device(name="Kitchen", uuid="8d1a6c9e-0000-4000-8000-000000000002", model="Nest Hub", manufacturer="Google", host="192.168.1.21")


def directory(*devices: Device) -> Directory:
    d = Directory(Settings.from_env({}, mdns=False))
    d._polled.set()
    for dev in devices:
        d.devices[dev.uuid] = dev
    return d


@pytest.mark.parametrize("spec", ["Living Room TV", "living room tv", LIVING.uuid, LIVING.uuid.replace("-", "").upper(), "192.168.1.20"])
async def test_a_device_is_found_by_name_any_case_uuid_or_address(spec):
    assert await directory(LIVING, KITCHEN).resolve(spec) == LIVING


async def test_two_devices_with_one_name_ask_for_a_uuid():
    twin = Device(**{**LIVING.__dict__, "uuid": "8d1a6c9e-0000-4000-8000-000000000009", "host": "192.168.1.29"})
    with pytest.raises(Conflict, match="give a uuid or address"):
        await directory(LIVING, twin).resolve("Living Room TV")


async def test_an_unknown_name_lists_the_known_devices():
    with pytest.raises(NotFound, match="known devices: 'Kitchen'") as info:
        await directory(KITCHEN).resolve("Bedroom")
    assert "PAGECAST_CAST_HOSTS" in str(info.value)


def test_eureka_info_names_the_device_as_pychromecast_reads_it():
    d = _parse_eureka("10.0.0.5", {"name": "x", "device_info": {"name": "Den", "ssdp_udn": "8d1a6c9e-0000-4000-8000-00000000000a", "model_name": "Chromecast Ultra", "manufacturer": "Google Inc."}}, "static", 1_800_000_000.0)
    assert (d.name, d.uuid, d.model, d.host) == ("Den", "8d1a6c9e-0000-4000-8000-00000000000a", "Chromecast Ultra", "10.0.0.5")
    assert d.public()["last_seen"] == "2027-01-15T08:00:00.000Z"
    with pytest.raises(ValueError, match="ssdp_udn"):
        _parse_eureka("10.0.0.5", {"name": "no uuid"}, "static", 0.0)


@pytest.mark.parametrize("text, expected", [("192.168.1.20", True), ("::1", True), ("tv.lan", True), ("Living Room TV", False), ("Kitchen", False)])
def test_addresses_are_told_from_names(text, expected):
    assert looks_like_address(text) is expected


def screen(app_id=None, name=None, media=None, standby=False, active_input=True) -> Screen:
    return Screen(app_id=app_id, app_name=name, app_session="s1", standby=standby, active_input=active_input, volume=0.5, muted=False, media=media)


def media(state="PLAYING", content_id="http://nas/movie.mp4") -> Media:
    return Media(1, state, None, content_id, "video/mp4", "BUFFERED", 12.0, "Movie")


OURS = "http://10.0.0.2:8000/streams/"


@pytest.mark.parametrize("s, busy", [
    (screen(), False),
    (screen("E8C28D3C", "Backdrop"), False),
    (screen(DMR_APP_ID, "Default Media Receiver"), False),
    (screen(DMR_APP_ID, "Default Media Receiver", media("IDLE")), False),
    (screen(DMR_APP_ID, "Default Media Receiver", media()), True),
    (screen(DMR_APP_ID, "Default Media Receiver", media(content_id=OURS + "abc/index.m3u8")), False),
    (screen("233637DE", "YouTube"), True),
    (screen("233637DE", "YouTube", standby=True, active_input=False), False),
])
def test_a_person_is_watching_unless_the_tv_is_idle_off_or_showing_our_stream(s, busy):
    assert s.busy(lambda m: m.content_id.startswith(OURS)) is busy


def test_hls_is_cast_with_the_fmp4_hints_the_default_receiver_needs():
    hls = Stream.for_session("http://h/streams/a/index.m3u8", "hls", "t")
    assert hls.content_type == "application/vnd.apple.mpegurl"
    assert hls.media_info == {"hlsSegmentFormat": "fmp4", "hlsVideoSegmentFormat": "fmp4"}
    assert Stream.for_session("http://h/streams/a/live.mp4", "fmp4", "t").content_type == "video/mp4"


def test_media_status_messages_are_read_like_pychromecast_reads_them():
    m = Media.from_message({"type": "MEDIA_STATUS", "status": [{"mediaSessionId": 3, "playerState": "IDLE", "idleReason": "CANCELLED", "currentTime": 5, "media": {"contentId": "u", "streamType": "LIVE", "metadata": {"title": "T"}}}]})
    assert (m.media_session_id, m.player_state, m.idle_reason, m.stream_type, m.title, m.active) == (3, "IDLE", "CANCELLED", "LIVE", "T", False)
    assert Media.from_message({"type": "MEDIA_STATUS", "status": []}) is None


async def test_a_tv_announced_by_mdns_is_found_and_listed():
    from pagecast.virtual_tv import open_virtual_tv

    async with open_virtual_tv(lo("127.0.43.2"), "Announced TV", mdns=True) as tv, trio.open_nursery() as nursery:
        d = Directory(Settings.from_env({}, mdns=True))
        await nursery.start(d.run)
        with trio.fail_after(15):
            while str(tv.uuid) not in d.devices:
                await trio.sleep(0.1)
        found = await d.resolve("announced tv")
        assert (found.host, found.source, found.model) == (lo("127.0.43.2"), "mdns", "pagecast virtual TV")
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("spec, named", [
    ("Living Room TV", True), ("living room tv", True), (" Living Room TV ", True),
    ("8d1a6c9e-0000-4000-8000-00000000000a", True), ("8D1A6C9E00004000800000000000000A", True),
    ("10.0.0.5", True), ("10.0.0.50", False), ("Living Room", False), ("", False),
])
def test_one_rule_says_whether_a_spec_names_a_tv(spec, named):
    """The rule /devices, /start, /stop and a screen's path all use (core.device.names)."""
    from pagecast.core.device import names

    tv = Device("Living Room TV", "8d1a6c9e-0000-4000-8000-00000000000a", "Chromecast", "Google", "10.0.0.5")
    assert names(tv, spec) is named
