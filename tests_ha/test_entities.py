"""The per-TV binary sensor and picture, the service's sensors, and what happens when pagecast
goes away."""

from __future__ import annotations

import logging
from datetime import timedelta

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir

from custom_components.pagecast.const import DOMAIN
from helpers import add_entry, until

JPEG_MAGIC = b"\xff\xd8\xff"


def entity_ids(hass: HomeAssistant, entry, tv) -> tuple[str, str]:
    registry = er.async_get(hass)
    instance = entry.runtime_data.instance_id
    showing = registry.async_get_entity_id("binary_sensor", DOMAIN, f"{instance}_{tv.uuid}_showing")
    picture = registry.async_get_entity_id("image", DOMAIN, f"{instance}_{tv.uuid}_thumbnail")
    assert showing and picture
    return showing, picture


async def test_showing_sensor_and_picture_follow_a_session_and_go_unavailable_without_pagecast(hass: HomeAssistant, hass_client, own_pagecast, tv, caplog) -> None:
    entry = await add_entry(hass, own_pagecast.url)
    coordinator = entry.runtime_data.coordinator
    showing, picture = entity_ids(hass, entry, tv)
    assert showing == "binary_sensor.pagecast_ha_test_tv_showing_pagecast"
    assert hass.states.get(showing).state == STATE_OFF
    assert hass.states.get(picture).state == STATE_UNKNOWN
    assert hass.states.get("sensor.pagecast_active_sessions").state == "0"

    answer = await hass.services.async_call(DOMAIN, "show", {"device": tv.uuid, "url": f"{own_pagecast.url}/demo/dashboard"}, blocking=True, return_response=True)
    [session] = answer["sessions"]

    async def on() -> bool:
        await coordinator.async_refresh()
        return hass.states.get(showing).state == STATE_ON
    await until(on, "the binary sensor turns on")
    assert hass.states.get(showing).attributes["session_id"] == session["id"]
    assert hass.states.get("sensor.pagecast_active_sessions").state == "1"
    assert hass.states.get(picture).state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)

    client = await hass_client()

    async def jpeg() -> bytes | None:
        resp = await client.get(f"/api/image_proxy/{picture}")
        body = await resp.read()
        return body if resp.status == 200 and body.startswith(JPEG_MAGIC) else None
    await until(jpeg, "the picture is the session's JPEG thumbnail")

    caplog.set_level(logging.INFO, logger="custom_components.pagecast")
    own_pagecast.stop()
    coordinator.unreachable_issue_after = timedelta(0)
    for _ in range(3):
        await coordinator.async_refresh()
    for entity_id in (showing, picture, "sensor.pagecast_active_sessions", "sensor.pagecast_version"):
        assert hass.states.get(entity_id).state == STATE_UNAVAILABLE, entity_id
    lost = [r for r in caplog.records if r.name == "custom_components.pagecast" and r.levelno >= logging.ERROR]
    assert len(lost) == 1, [r.getMessage() for r in lost]
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"unreachable_{entry.entry_id}") is not None


async def test_the_service_device_carries_every_entity(hass: HomeAssistant, pagecast, tv) -> None:
    entry = await add_entry(hass, pagecast.url)
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, entry.runtime_data.instance_id)})
    assert device is not None and device.entry_type is dr.DeviceEntryType.SERVICE
    assert device.sw_version == entry.runtime_data.health["version"]
    entities = er.async_entries_for_device(er.async_get(hass), device.id)
    assert {e.translation_key for e in entities} == {"showing", "thumbnail", "active_sessions", "version"}
    assert {e.entity_category for e in entities if e.domain == "sensor"} == {er.EntityCategory.DIAGNOSTIC}


async def test_a_version_other_than_the_integrations_is_a_repair_issue(hass: HomeAssistant, pagecast) -> None:
    entry = await add_entry(hass, pagecast.url)
    issues = ir.async_get(hass)
    issue_id = f"version_mismatch_{entry.entry_id}"
    assert issues.async_get_issue(DOMAIN, issue_id) is None  # pagecast and the integration are both 0.1.0
    coordinator = entry.runtime_data.coordinator
    coordinator.integration_version = "0.0.1"
    await coordinator.async_refresh()
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None and issue.translation_placeholders["integration_version"] == "0.0.1"


async def test_a_tv_pagecast_no_longer_lists_loses_its_entities_and_pagecast_coming_back_is_logged_once(hass: HomeAssistant, tmp_path, tv, tv2, caplog) -> None:
    from conftest import start_pagecast

    state = tmp_path / "state"
    first = start_pagecast(tmp_path, [tv.host, tv2.host], state=state)
    try:
        entry = await add_entry(hass, first.url)
        registry = er.async_get(hass)
        instance = entry.runtime_data.instance_id
        tv_entities = [registry.async_get_entity_id(p, DOMAIN, f"{instance}_{tv.uuid}_{k}") for p, k in (("binary_sensor", "showing"), ("image", "thumbnail"))]
        assert all(tv_entities)
        port = int(first.url.rsplit(":", 1)[1])
        first.stop()
        caplog.set_level(logging.INFO, logger="custom_components.pagecast")
        await entry.runtime_data.coordinator.async_refresh()
        assert hass.states.get(tv_entities[0]).state == STATE_UNAVAILABLE
        second = start_pagecast(tmp_path, [tv2.host], port=port, state=state)  # the same pagecast, without the first TV
    finally:
        first.stop()
    try:
        await entry.runtime_data.coordinator.async_refresh_devices()
        await hass.async_block_till_done()
        assert all(registry.async_get(entity_id) is None for entity_id in tv_entities)
        assert hass.states.get(tv_entities[0]) is None
        assert registry.async_get_entity_id("binary_sensor", DOMAIN, f"{instance}_{tv2.uuid}_showing")
        ours = [r.getMessage() for r in caplog.records if r.name == "custom_components.pagecast"]
        assert sum("recovered" in m for m in ours) == 1, ours
    finally:
        second.stop()
