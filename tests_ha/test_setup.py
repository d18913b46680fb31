"""Setting an entry up and taking it down: the system user, unloading, diagnostics."""

from __future__ import annotations

import json
import threading

from homeassistant.auth.const import GROUP_ID_READ_ONLY
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry

from custom_components.pagecast.const import CONF_SYSTEM_USER_ID
from helpers import add_entry


async def test_a_read_only_system_user_is_made_once_and_removed_with_the_entry(hass: HomeAssistant, pagecast) -> None:
    entry = await add_entry(hass, pagecast.url)
    assert entry.state is ConfigEntryState.LOADED
    user_id = entry.data[CONF_SYSTEM_USER_ID]
    user = await hass.auth.async_get_user(user_id)
    assert user is not None and user.system_generated
    assert [g.id for g in user.groups] == [GROUP_ID_READ_ONLY]
    token = entry.runtime_data.refresh_token
    assert token and token not in json.dumps(dict(entry.data))

    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.data[CONF_SYSTEM_USER_ID] == user_id
    assert entry.runtime_data.refresh_token == token
    assert [u.name for u in await hass.auth.async_get_users()].count("pagecast") == 1

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.auth.async_get_user(user_id) is None


async def test_unloading_leaves_no_poll_timer_or_thread(hass: HomeAssistant, pagecast) -> None:
    threads_before = set(threading.enumerate())
    entry = await add_entry(hass, pagecast.url)
    coordinator = entry.runtime_data.coordinator
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert not coordinator._listeners and coordinator._unsub_refresh is None
    # Home Assistant's own executor pool (SyncWorker_n) is shut down by the harness after each test.
    ours = {t for t in set(threading.enumerate()) - threads_before if t.is_alive() and not t.name.startswith(("waitpid-", "SyncWorker_"))}
    assert ours == set()


async def test_diagnostics_redact_every_token(hass: HomeAssistant, hass_client, pagecast_with_token) -> None:
    entry = await add_entry(hass, pagecast_with_token.url, pagecast_with_token.token)
    assert entry.state is ConfigEntryState.LOADED
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)
    assert diagnostics["entry"]["api_token"] == "**REDACTED**"
    assert pagecast_with_token.token not in text
    assert entry.runtime_data.refresh_token not in text
    assert diagnostics["status"]["version"]
