"""The pagecast.show and pagecast.stop actions.

show sends one /start for all its TVs: pagecast renders the page once and shows it on each
(one session, a screen per TV). stop takes each targeted TV off whatever pagecast shows there,
so a session on several TVs keeps playing on the others."""

from __future__ import annotations

import time
from typing import Any

import voluptuous as vol

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, entity_registry as er
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.service import async_extract_referenced_entity_ids

from .api import PagecastAuthError, PagecastError, PagecastRefused
from .const import DOMAIN, MODES, QUALITIES, THEMES
from .coordinator import PagecastConfigEntry, screens_of

SERVICE_SHOW = "show"
SERVICE_STOP = "stop"

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_DEVICE = "device"
ATTR_DASHBOARD = "dashboard"
ATTR_URL = "url"
ATTR_SESSION_ID = "session_id"
ATTR_ALL = "all"

#: Fields passed to pagecast's /start as they are.
PASSED = ("duration", "keep_on", "if_idle", "volume", "quiet", "quality", "kiosk", "theme", "mode")

_TARGET = {**cv.ENTITY_SERVICE_FIELDS, vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string, vol.Optional(ATTR_DEVICE): vol.All(cv.ensure_list, [cv.string])}

SHOW_SCHEMA = vol.Schema({
    **_TARGET,
    vol.Optional(ATTR_DASHBOARD): cv.string,
    vol.Optional(ATTR_URL): cv.string,
    vol.Optional("duration"): vol.All(vol.Coerce(float), vol.Range(min=1)),
    vol.Optional("keep_on"): cv.boolean,
    vol.Optional("if_idle"): cv.boolean,
    vol.Optional("volume"): vol.All(vol.Coerce(float), vol.Range(min=0, max=1)),
    vol.Optional("quiet"): cv.boolean,
    vol.Optional("quality"): vol.In(QUALITIES),
    vol.Optional("kiosk"): cv.boolean,
    vol.Optional("theme"): vol.In(THEMES),
    vol.Optional("mode"): vol.In(MODES),
})

STOP_SCHEMA = vol.Schema({
    **_TARGET,
    vol.Optional(ATTR_SESSION_ID): cv.string,
    vol.Optional(ATTR_ALL): cv.boolean,
})


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    async def show(call: ServiceCall) -> ServiceResponse:
        if (call.data.get(ATTR_DASHBOARD) is None) == (call.data.get(ATTR_URL) is None):
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="dashboard_or_url")
        entry = _entry(hass, call)
        page_url, auth = _page(hass, entry, call)
        body: dict[str, Any] = {"url": page_url, **{key: call.data[key] for key in PASSED if key in call.data}}
        if auth:
            body["auth"] = auth
        runtime = entry.runtime_data
        devices = _devices(hass, call)
        if devices:
            body["device"] = devices[0] if len(devices) == 1 else devices
        answer = await _call(entry, runtime.client.start(body))
        if auth:
            runtime.coordinator.dashboard_sessions[answer["id"]] = time.monotonic()
        await runtime.coordinator.async_request_refresh()
        return {"sessions": [{"id": answer["id"], "device": _shown_on(answer, device)} for device in devices or [None]]}

    async def stop(call: ServiceCall) -> ServiceResponse:
        entry = _entry(hass, call)
        client = entry.runtime_data.client
        devices = _devices(hass, call)
        session_id = call.data.get(ATTR_SESSION_ID)
        everything = call.data.get(ATTR_ALL, False)
        if everything and (devices or session_id):
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="stop_all_and_more")
        if not (everything or devices or session_id):
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="stop_what")
        stopped: list[str] = []
        if everything:
            stopped += await _call(entry, client.stop({}))
        if session_id:
            stopped += await _call(entry, client.stop({"id": session_id}))
        for device in devices:
            stopped += await _call(entry, client.stop({"device": device}))
        await entry.runtime_data.coordinator.async_request_refresh()
        return {"stopped": stopped}

    hass.services.async_register(DOMAIN, SERVICE_SHOW, show, schema=SHOW_SCHEMA, supports_response=SupportsResponse.OPTIONAL)
    hass.services.async_register(DOMAIN, SERVICE_STOP, stop, schema=STOP_SCHEMA, supports_response=SupportsResponse.OPTIONAL)


def _entry(hass: HomeAssistant, call: ServiceCall) -> PagecastConfigEntry:
    """The loaded pagecast entry the call is for: the one named, or the only one."""
    if (entry_id := call.data.get(ATTR_CONFIG_ENTRY_ID)) is not None:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="entry_not_loaded", translation_placeholders={"entry_id": entry_id})
        return entry
    loaded = hass.config_entries.async_loaded_entries(DOMAIN)
    if not loaded:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_entry_loaded")
    if len(loaded) > 1:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="several_entries")
    return loaded[0]


def _page(hass: HomeAssistant, entry: PagecastConfigEntry, call: ServiceCall) -> tuple[str, dict[str, str] | None]:
    """The page to show, and the sign-in it needs: a dashboard is Home Assistant's own
    internal URL plus its path, signed in as pagecast's system user; a url goes as it is."""
    dashboard, url = call.data.get(ATTR_DASHBOARD), call.data.get(ATTR_URL)
    if url is not None:
        return url, None
    try:
        base = get_url(hass, allow_external=False, allow_cloud=False)
    except NoURLAvailableError as exc:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_internal_url") from exc
    return f"{base.rstrip('/')}/{dashboard.strip().lstrip('/')}", {"ha_refresh_token": entry.runtime_data.refresh_token}


def _devices(hass: HomeAssistant, call: ServiceCall) -> list[str]:
    """The TVs the call targets, as pagecast knows them: a Cast entity's uuid (its registry
    unique id), or a pagecast device name as given. An entity named outright must be a Cast
    media player; areas and devices contribute only their Cast media players."""
    registry = er.async_get(hass)
    selected = async_extract_referenced_entity_ids(hass, call)
    uuids: list[str] = []
    for entity_id in sorted(selected.referenced | selected.indirectly_referenced):
        entry = registry.async_get(entity_id)
        is_cast = entry is not None and entry.platform == "cast" and entry.domain == "media_player"
        if not is_cast:
            if entity_id in selected.referenced:
                raise ServiceValidationError(translation_domain=DOMAIN, translation_key="not_cast_entity", translation_placeholders={"entity_id": entity_id})
            continue
        if entry.unique_id not in uuids:
            uuids.append(entry.unique_id)
    return uuids + list(call.data.get(ATTR_DEVICE) or [])


def _shown_on(answer: dict[str, Any], device: str | None) -> str | None:
    """The name of one TV a /start was for, as pagecast knows it. The answer lists every screen
    of the session: the TVs of this /start, and others when it joined a session already
    showing the identical page."""
    screens = screens_of(answer)
    if device is None:
        return screens[0].get("device") if screens else None
    wanted = device.casefold()
    for screen in screens:
        if wanted in (str(screen.get("uuid", "")).casefold(), str(screen.get("device", "")).casefold(), str(screen.get("address", "")).casefold()):
            return screen.get("device") or device
    return device


async def _call(entry: PagecastConfigEntry, request: Any) -> Any:
    """pagecast's answer, or a HomeAssistantError in its own words."""
    try:
        return await request
    except PagecastAuthError as exc:
        entry.async_start_reauth(entry.runtime_data.coordinator.hass)
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth") from exc
    except PagecastRefused as exc:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="refused", translation_placeholders={"message": exc.message}) from exc
    except PagecastError as exc:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="cannot_connect", translation_placeholders={"url": entry.runtime_data.client.url, "error": str(exc)}) from exc
