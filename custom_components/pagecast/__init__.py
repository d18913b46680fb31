"""pagecast: show Home Assistant dashboards and any web page on Cast TVs, as a live stream."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType
from homeassistant.loader import async_get_integration

from .api import PagecastClient, PagecastError
from . import issues
from .const import CONF_API_TOKEN, CONF_URL, DOMAIN, UNREACHABLE_ISSUE_AFTER
from .coordinator import PagecastConfigEntry, PagecastCoordinator, PagecastRuntime
from .services import async_setup_services
from .system_user import async_refresh_token, async_remove_system_user

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.IMAGE, Platform.SENSOR]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """The actions exist once, whatever entries there are (they say so when none is loaded)."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: PagecastConfigEntry) -> bool:
    client = PagecastClient(async_get_clientsession(hass), entry.data[CONF_URL], entry.data.get(CONF_API_TOKEN))
    try:
        health = await client.health()
    except PagecastError as exc:
        issues.note_unreachable(hass, entry, client.url, UNREACHABLE_ISSUE_AFTER)
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="unreachable", translation_placeholders={"url": client.url, "error": str(exc)}) from exc
    integration = await async_get_integration(hass, DOMAIN)
    coordinator = PagecastCoordinator(hass, entry, client, str(integration.version))
    await coordinator.async_config_entry_first_refresh()
    refresh_token = await async_refresh_token(hass, entry)
    entry.runtime_data = PagecastRuntime(
        client=client, coordinator=coordinator, instance_id=str(entry.unique_id), health=health, refresh_token=refresh_token,
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PagecastConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Removing pagecast removes its Home Assistant user, and so every token it had."""
    await async_remove_system_user(hass, entry)
    issues.clear(hass, entry)
