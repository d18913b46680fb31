"""pagecast.show and pagecast.stop, casting for real to a virtual TV through a real pagecast."""

from __future__ import annotations

import json

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component

from custom_components.pagecast.const import DOMAIN
from helpers import add_entry, get_json, until

BACKDROP = "E8C28D3C"  # the TV's idle screen


def cast_entity(hass: HomeAssistant, tv) -> str:
    """The Cast integration's media player of the TV, as its registry entry (unique id: the uuid)."""
    return er.async_get(hass).async_get_or_create("media_player", "cast", tv.uuid, suggested_object_id="living_room_tv").entity_id


async def test_show_a_url_on_a_cast_entity_plays_on_that_tv_and_stop_gives_it_back(hass: HomeAssistant, pagecast, tv) -> None:
    await add_entry(hass, pagecast.url)
    entity_id = cast_entity(hass, tv)
    answer = await hass.services.async_call(
        DOMAIN, "show", {"entity_id": entity_id, "url": f"{pagecast.url}/demo/dashboard", "quality": "720p"},
        blocking=True, return_response=True,
    )
    [session] = answer["sessions"]
    assert session["device"] == tv.name
    status = await get_json(hass, f"{pagecast.url}/sessions/{session['id']}")
    assert status["cast"]["uuid"] == tv.uuid and status["quality"] == "720p"
    await until(lambda: _player_state(hass, tv, "PLAYING"), "the TV plays the stream", timeout=30)

    stopped = await hass.services.async_call(DOMAIN, "stop", {"entity_id": entity_id}, blocking=True, return_response=True)
    assert stopped == {"stopped": [session["id"]]}
    await until(lambda: _app(hass, tv, BACKDROP), "the TV is back at its idle screen")


async def _player_state(hass: HomeAssistant, tv, wanted: str) -> bool:
    return (await get_json(hass, tv.state_url))["player_state"] == wanted


async def _app(hass: HomeAssistant, tv, wanted: str) -> bool:
    return (await get_json(hass, tv.state_url))["app_id"] == wanted


async def test_show_refuses_an_entity_that_is_not_a_cast_media_player(hass: HomeAssistant, pagecast) -> None:
    await add_entry(hass, pagecast.url)
    other = er.async_get(hass).async_get_or_create("media_player", "sonos", "RINCON_1", suggested_object_id="kitchen").entity_id
    for entity_id in (other, "light.hall"):
        with pytest.raises(ServiceValidationError) as refused:
            await hass.services.async_call(DOMAIN, "show", {"entity_id": entity_id, "url": "http://127.0.0.1/"}, blocking=True)
        assert refused.value.translation_key == "not_cast_entity"
        assert refused.value.translation_placeholders == {"entity_id": entity_id}


async def test_show_needs_exactly_one_of_dashboard_or_url(hass: HomeAssistant, pagecast) -> None:
    await add_entry(hass, pagecast.url)
    for data in ({}, {"dashboard": "lovelace/0", "url": "http://127.0.0.1/"}):
        with pytest.raises(ServiceValidationError) as refused:
            await hass.services.async_call(DOMAIN, "show", {"device": "HA Test TV", **data}, blocking=True)
        assert refused.value.translation_key == "dashboard_or_url"
        assert str(refused.value).startswith("Give exactly one of dashboard")


async def test_actions_without_a_loaded_entry_say_so(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(DOMAIN, "show", {"url": "http://127.0.0.1/"}, blocking=True)
    assert refused.value.translation_key == "no_entry_loaded"
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(DOMAIN, "stop", {"all": True}, blocking=True)
    assert refused.value.translation_key == "no_entry_loaded"


async def test_pagecast_refusal_comes_back_in_its_own_words(hass: HomeAssistant, pagecast) -> None:
    await add_entry(hass, pagecast.url)
    with pytest.raises(HomeAssistantError) as refused:
        await hass.services.async_call(DOMAIN, "show", {"device": "No Such TV", "url": "http://127.0.0.1/"}, blocking=True)
    assert refused.value.translation_key == "refused"
    assert "No Such TV" in refused.value.translation_placeholders["message"]
    assert str(refused.value).startswith("pagecast refused: ") and "No Such TV" in str(refused.value)
    with pytest.raises(HomeAssistantError) as refused:
        await hass.services.async_call(DOMAIN, "stop", {"device": "No Such TV"}, blocking=True)
    assert "known devices" in refused.value.translation_placeholders["message"]


async def test_a_dashboard_opens_at_home_assistants_internal_url_signed_in_as_pagecasts_user(hass: HomeAssistant, pagecast, login_page) -> None:
    """pagecast never echoes the refresh token; what shows it was sent is that pagecast takes
    the /start (it checks auth's fields) and opens Home Assistant's internal URL + the path.
    The page here is a stand-in for a signed-out Home Assistant: it sends the browser to
    /auth/authorize, so the session fails as a dashboard does whose sign-in is gone, and that
    becomes a repair issue."""
    await async_process_ha_core_config(hass, {"internal_url": login_page})
    entry = await add_entry(hass, pagecast.url)
    answer = await hass.services.async_call(DOMAIN, "show", {"dashboard": "/lovelace/cameras", "kiosk": True}, blocking=True, return_response=True)
    [session] = answer["sessions"]
    assert session["device"] is None
    status = await get_json(hass, f"{pagecast.url}/sessions/{session['id']}")
    assert status["url"] == f"{login_page}/lovelace/cameras"
    token = entry.runtime_data.refresh_token
    assert token not in json.dumps(status) and token not in json.dumps(await get_json(hass, f"{pagecast.url}/status"))
    failed = await until(lambda: _ended(hass, pagecast, session["id"]), "the session ends at the login page", timeout=30)
    assert failed["state"] == "failed" and "missing or expired" in failed["error"], failed
    coordinator = entry.runtime_data.coordinator
    await coordinator.async_refresh()
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"dashboard_signed_out_{entry.entry_id}") is not None


async def _ended(hass: HomeAssistant, pagecast, session_id: str):
    status = await get_json(hass, f"{pagecast.url}/sessions/{session_id}")
    return status if status["state"] in ("failed", "stopped") else None


async def test_several_targets_each_get_the_page_and_stop_takes_a_session_or_all(hass: HomeAssistant, pagecast, tv, tv2) -> None:
    """One TV by its Cast entity, one by pagecast's name for it: each plays (one render or
    two: pagecast may share one render between TVs showing the identical page)."""
    await add_entry(hass, pagecast.url)
    answer = await hass.services.async_call(
        DOMAIN, "show", {"entity_id": cast_entity(hass, tv), "device": [tv2.name], "url": f"{pagecast.url}/demo/dashboard", "quiet": True},
        blocking=True, return_response=True,
    )
    sessions = {s["device"]: s["id"] for s in answer["sessions"]}
    assert set(sessions) == {tv.name, tv2.name}, answer
    for screen in (tv, tv2):
        status = await get_json(hass, f"{pagecast.url}/sessions/{sessions[screen.name]}")
        ours = [s for s in status.get("screens") or [status["cast"]] if s["uuid"] == screen.uuid]
        assert ours and ours[0].get("quiet") is True, status
        await until(lambda screen=screen: _player_state(hass, screen, "PLAYING"), f"{screen.name} plays the stream", timeout=30)

    stopped = await hass.services.async_call(DOMAIN, "stop", {"session_id": sessions[tv.name]}, blocking=True, return_response=True)
    assert stopped == {"stopped": [sessions[tv.name]]}
    await until(lambda: _app(hass, tv, BACKDROP), f"{tv.name} is back at its idle screen")
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(DOMAIN, "stop", {"all": True, "device": [tv2.name]}, blocking=True)
    assert refused.value.translation_key == "stop_all_and_more"
    await hass.services.async_call(DOMAIN, "stop", {"all": True}, blocking=True, return_response=True)
    await until(lambda: _app(hass, tv2, BACKDROP), f"{tv2.name} is back at its idle screen")
