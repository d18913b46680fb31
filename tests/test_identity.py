"""pagecast's instance id is made once and kept, so Home Assistant knows the same pagecast after
a restart; and the service announces itself by mDNS with it, so Home Assistant discovers it."""

from __future__ import annotations

import logging
from functools import partial

import httpx
import trio

from pagecast import __version__
from pagecast.server.announce import SERVICE_TYPE
from pagecast.server.identity import instance_id

from helpers import running_service


def test_the_instance_id_is_made_once_and_kept(tmp_path):
    first = instance_id(tmp_path / "state")
    assert len(first) == 32 and int(first, 16) >= 0
    assert instance_id(tmp_path / "state") == first
    assert (tmp_path / "state" / "instance_id").read_text().strip() == first


def test_a_damaged_id_file_is_replaced_and_an_unwritable_directory_still_gives_an_id(tmp_path, caplog):
    state = tmp_path / "state"
    state.mkdir()
    (state / "instance_id").write_text("not an id")
    replaced = instance_id(state)
    assert replaced != "not an id" and instance_id(state) == replaced
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the directory should be: nothing can be kept there
    caplog.set_level(logging.WARNING)
    assert len(instance_id(blocked / "state")) == 32
    assert "PAGECAST_STATE_DIR" in caplog.text


async def test_health_shows_the_same_instance_id_across_restarts(nursery, tmp_path):
    ids = []
    for _ in range(2):
        async with running_service(nursery, tmp_path) as svc:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}") as client:
                ids.append((await client.get("/health")).json()["instance_id"])
    assert ids[0] == ids[1] == (tmp_path / "state" / "instance_id").read_text().strip()


async def test_the_service_is_discovered_by_mdns_with_its_id_version_port_and_api_base(nursery, tmp_path):
    from zeroconf import ServiceBrowser, Zeroconf

    found: dict[str, dict] = {}

    class Listener:
        def __init__(self, zc):
            self.zc = zc

        def add_service(self, zc, type_, name):
            info = zc.get_service_info(type_, name, timeout=3000)
            if info is not None:
                found[name] = {"port": info.port, "addresses": info.parsed_addresses(),
                               **{k.decode(): (v or b"").decode() for k, v in info.properties.items()}}

        update_service = add_service

        def remove_service(self, zc, type_, name):
            pass

    async with running_service(nursery, tmp_path, announce=True) as svc:
        zc = await trio.to_thread.run_sync(partial(Zeroconf, interfaces=["127.0.0.1"]))
        try:
            browser = await trio.to_thread.run_sync(ServiceBrowser, zc, SERVICE_TYPE, Listener(zc))
            with trio.fail_after(15):
                while not any(v.get("id") == svc.instance_id for v in found.values()):
                    await trio.sleep(0.1)
            await trio.to_thread.run_sync(browser.cancel)
        finally:
            await trio.to_thread.run_sync(zc.close)
    [ours] = [v for v in found.values() if v["id"] == svc.instance_id]
    assert ours == {"id": svc.instance_id, "version": __version__, "base": "/", "port": svc.port, "addresses": ["127.0.0.1"]}
