"""Diagnostics: the entry and what pagecast last said, with every token and secret redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_API_TOKEN, CONF_SYSTEM_USER_ID
from .coordinator import PagecastConfigEntry

TO_REDACT = {CONF_API_TOKEN, CONF_SYSTEM_USER_ID, "ha_refresh_token", "ha_token", "refresh_token", "access_token", "token", "auth", "cookies", "headers", "local_storage"}


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: PagecastConfigEntry) -> dict[str, Any]:
    runtime = entry.runtime_data
    data = runtime.coordinator.data
    return {
        "entry": async_redact_data(dict(entry.data), TO_REDACT),
        "health": async_redact_data(runtime.health, TO_REDACT),
        "status": async_redact_data(data.status, TO_REDACT) if data else None,
        "devices": async_redact_data(list(data.devices.values()), TO_REDACT) if data else None,
        "last_update_success": runtime.coordinator.last_update_success,
    }
