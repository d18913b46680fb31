"""pagecast.show and pagecast.stop, casting for real to a virtual TV through a real pagecast."""

from __future__ import annotations

import json

import pytest
from homeassistant.const import STATE_OFF, STATE_ON
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


async def test_several_targets_share_one_session_and_stopping_one_target_leaves_the_other_playing(hass: HomeAssistant, pagecast, tv, tv2) -> None:
    """One TV by its Cast entity, one by pagecast's name for it: one /start, so one render
    shown on both (a screen each, with the action's options); the answer has an entry per TV,
    both with the session's id. Stopping one target takes only that TV off."""
    entry = await add_entry(hass, pagecast.url)
    entity_id = cast_entity(hass, tv)
    answer = await hass.services.async_call(
        DOMAIN, "show", {"entity_id": entity_id, "device": [tv2.name], "url": f"{pagecast.url}/demo/dashboard", "quiet": True},
        blocking=True, return_response=True,
    )
    assert sorted(s["device"] for s in answer["sessions"]) == sorted([tv.name, tv2.name]), answer
    [sid] = {s["id"] for s in answer["sessions"]}
    status = await get_json(hass, f"{pagecast.url}/sessions/{sid}")
    screens = {s["uuid"]: s for s in status["screens"]}
    assert set(screens) == {tv.uuid, tv2.uuid} and all(s["quiet"] is True for s in screens.values()), status
    for screen in (tv, tv2):
        await until(lambda screen=screen: _player_state(hass, screen, "PLAYING"), f"{screen.name} plays the stream", timeout=30)
    showing = {screen.name: _showing_entity(hass, entry, screen) for screen in (tv, tv2)}
    await _refreshed_until(hass, entry, lambda: all(hass.states.get(e).state == STATE_ON for e in showing.values()), "both TVs show pagecast")
    assert {hass.states.get(e).attributes["session_id"] for e in showing.values()} == {sid}

    stopped = await hass.services.async_call(DOMAIN, "stop", {"entity_id": entity_id}, blocking=True, return_response=True)
    assert stopped == {"stopped": [sid]}
    await until(lambda: _app(hass, tv, BACKDROP), f"{tv.name} is back at its idle screen")

    async def only_the_other_tv_on():
        status = await get_json(hass, f"{pagecast.url}/sessions/{sid}")
        return status["state"] == "live" and [s["uuid"] for s in status["screens"] if s["ended"] is None] == [tv2.uuid]

    # The TV is given back a moment before its screen says it has left.
    await until(only_the_other_tv_on, f"the session goes on with {tv2.name} alone")
    assert await _player_state(hass, tv2, "PLAYING")
    await _refreshed_until(hass, entry, lambda: hass.states.get(showing[tv.name]).state == STATE_OFF, f"{tv.name} no longer shows pagecast")
    assert hass.states.get(showing[tv2.name]).state == STATE_ON

    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(DOMAIN, "stop", {"all": True, "device": [tv2.name]}, blocking=True)
    assert refused.value.translation_key == "stop_all_and_more"
    stopped = await hass.services.async_call(DOMAIN, "stop", {"session_id": sid}, blocking=True, return_response=True)
    assert stopped == {"stopped": [sid]}
    await until(lambda: _app(hass, tv2, BACKDROP), f"{tv2.name} is back at its idle screen")


def _showing_entity(hass: HomeAssistant, entry, tv) -> str:
    entity_id = er.async_get(hass).async_get_entity_id("binary_sensor", DOMAIN, f"{entry.runtime_data.instance_id}_{tv.uuid}_showing")
    assert entity_id
    return entity_id


async def _refreshed_until(hass: HomeAssistant, entry, check, what: str) -> None:
    async def refreshed() -> bool:
        await entry.runtime_data.coordinator.async_refresh()
        return check()
    await until(refreshed, what)
