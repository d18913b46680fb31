"""Signing pagecast's pages in to Home Assistant without a pasted token, as HA's own Cast does:
a system user in the read-only group, made once per entry, and a refresh token of it. The
dashboard's frontend trades that refresh token for access tokens by itself for as long as the
page runs. Only the user's id is kept in the entry; the token lives in memory."""

from __future__ import annotations

from homeassistant.auth.const import GROUP_ID_READ_ONLY
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .const import CONF_SYSTEM_USER_ID, SYSTEM_USER_NAME


async def async_refresh_token(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The refresh token of the entry's system user, making the user the first time."""
    user = None
    if (user_id := entry.data.get(CONF_SYSTEM_USER_ID)) is not None:
        user = await hass.auth.async_get_user(user_id)
    if user is None:
        user = await hass.auth.async_create_system_user(SYSTEM_USER_NAME, group_ids=[GROUP_ID_READ_ONLY])
        hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_SYSTEM_USER_ID: user.id})
    if user.refresh_tokens:
        token = next(iter(user.refresh_tokens.values()))
    else:
        token = await hass.auth.async_create_refresh_token(user)
    return token.token


async def async_remove_system_user(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Remove the entry's system user (and with it its tokens)."""
    if (user_id := entry.data.get(CONF_SYSTEM_USER_ID)) is None:
        return
    if (user := await hass.auth.async_get_user(user_id)) is not None:
        await hass.auth.async_remove_user(user)
