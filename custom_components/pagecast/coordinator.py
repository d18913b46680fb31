"""Polls pagecast's /status (cheap) every 10 s, and /devices (it connects to every TV) every
5 minutes or when a session is on a TV not yet known; tells issues.py what it sees."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from . import issues
from .api import PagecastAuthError, PagecastClient, PagecastError
from .const import ACTIVE_STATES, DEVICES_INTERVAL, DOMAIN, STATUS_INTERVAL, UNREACHABLE_ISSUE_AFTER

_LOGGER = logging.getLogger(__package__)


@dataclass
class PagecastData:
    """What the entities show: the last /status and the TVs of the last /devices."""

    status: dict[str, Any]
    devices: dict[str, dict[str, Any]]  # by Cast uuid

    def session_on(self, uuid: str) -> dict[str, Any] | None:
        """The starting or live session on the TV with this uuid, if any."""
        for session in self.status.get("sessions") or []:
            if session.get("state") in ACTIVE_STATES and any(screen.get("uuid") == uuid for screen in screens_of(session)):
                return session
        return None


def screens_of(session: dict[str, Any]) -> list[dict[str, Any]]:
    """The TVs a session is on now: its ``screens`` that have not left (one render may be
    shown on several TVs), or its one ``cast`` from a pagecast that lists no screens."""
    screens = session.get("screens")
    if isinstance(screens, list):
        return [s for s in screens if isinstance(s, dict) and s.get("ended") is None]
    return [session["cast"]] if isinstance(session.get("cast"), dict) else []


@dataclass
class PagecastRuntime:
    """An entry's live parts (entry.runtime_data)."""

    client: PagecastClient
    coordinator: PagecastCoordinator
    instance_id: str
    health: dict[str, Any]
    refresh_token: str = field(repr=False)


type PagecastConfigEntry = ConfigEntry[PagecastRuntime]


class PagecastCoordinator(DataUpdateCoordinator[PagecastData]):
    """One pagecast service's state."""

    config_entry: PagecastConfigEntry

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, client: PagecastClient, integration_version: str) -> None:
        super().__init__(hass, _LOGGER, config_entry=entry, name=f"pagecast at {client.url}", update_interval=STATUS_INTERVAL)
        self.client = client
        self.integration_version = integration_version
        self.unreachable_issue_after: timedelta = UNREACHABLE_ISSUE_AFTER
        #: Sessions this integration started with a Home Assistant dashboard, and when (monotonic).
        self.dashboard_sessions: dict[str, float] = {}
        self._devices: dict[str, dict[str, Any]] = {}
        self._devices_at: float | None = None

    async def _async_update_data(self) -> PagecastData:
        try:
            status = await self.client.status()
            if self._devices_due(status):
                await self._refresh_devices()
        except PagecastAuthError as exc:
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="invalid_auth") from exc
        except PagecastError as exc:
            issues.note_unreachable(self.hass, self.config_entry, self.client.url, self.unreachable_issue_after)
            raise UpdateFailed(translation_domain=DOMAIN, translation_key="unreachable", translation_placeholders={"url": self.client.url, "error": str(exc)}) from exc
        issues.note_reachable(self.hass, self.config_entry)
        issues.check_version(self.hass, self.config_entry, self.client.url, str(status.get("version", "")), self.integration_version)
        sessions = list(status.get("sessions") or [])
        listed = {s.get("id") for s in sessions}
        for gone in [sid for sid in self.dashboard_sessions if sid not in listed]:
            del self.dashboard_sessions[gone]  # pagecast keeps only its last ended sessions
        issues.check_dashboards(self.hass, self.config_entry, sessions, self.dashboard_sessions)
        return PagecastData(status=status, devices=dict(self._devices))

    def _devices_due(self, status: dict[str, Any]) -> bool:
        if self._devices_at is None or time.monotonic() - self._devices_at >= DEVICES_INTERVAL.total_seconds():
            return True
        for session in status.get("sessions") or []:
            for screen in screens_of(session):
                if screen.get("uuid") and screen["uuid"] not in self._devices:
                    return True
        return False

    async def _refresh_devices(self) -> None:
        """Ask /devices; a slow or failing answer keeps the TVs known so far (tried again later)."""
        self._devices_at = time.monotonic()
        try:
            devices = await self.client.devices()
        except PagecastAuthError:
            raise
        except PagecastError as exc:
            _LOGGER.debug("pagecast's device list could not be read, keeping the last one: %s", exc)
            return
        self._devices = {d["uuid"]: d for d in devices if isinstance(d, dict) and d.get("uuid")}

    async def async_refresh_devices(self) -> None:
        """Ask /devices at the next poll (a show on a TV HA has not seen through pagecast)."""
        self._devices_at = None
        await self.async_request_refresh()
