"""The entities' common ground: one device for the pagecast service, and per-TV entities that
come and go with the TVs pagecast knows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import PagecastConfigEntry, PagecastCoordinator


class PagecastEntity(CoordinatorEntity[PagecastCoordinator]):
    """An entity of the pagecast service's device."""

    _attr_has_entity_name = True

    def __init__(self, entry: PagecastConfigEntry, key: str) -> None:
        super().__init__(entry.runtime_data.coordinator)
        runtime = entry.runtime_data
        self._attr_translation_key = key
        self._attr_unique_id = f"{runtime.instance_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, runtime.instance_id)},
            name="pagecast",
            manufacturer="pagecast",
            model="pagecast service",
            sw_version=str(runtime.health.get("version") or "") or None,
            entry_type=DeviceEntryType.SERVICE,
            configuration_url=runtime.client.url + "/",
        )


class PagecastTvEntity(PagecastEntity):
    """An entity about one Cast TV pagecast knows (by its Cast uuid)."""

    def __init__(self, entry: PagecastConfigEntry, key: str, uuid: str) -> None:
        super().__init__(entry, key)
        self.uuid = uuid
        self._attr_unique_id = f"{entry.runtime_data.instance_id}_{uuid}_{key}"
        tv = self.coordinator.data.devices.get(uuid) or {}
        self._attr_translation_placeholders = {"tv": str(tv.get("name") or uuid)}

    @property
    def available(self) -> bool:
        return super().available and self.uuid in self.coordinator.data.devices

    @property
    def session(self) -> dict[str, Any] | None:
        return self.coordinator.data.session_on(self.uuid)


def track_tvs(
    entry: PagecastConfigEntry,
    domain: str,
    make: Callable[[str], list[Entity]],
    add: Callable[[list[Entity]], None],
) -> None:
    """Add ``make(uuid)``'s entities for each TV pagecast knows, now and as TVs appear; remove
    the registry entries of TVs pagecast no longer lists (they come back if the TV does)."""
    coordinator = entry.runtime_data.coordinator
    registry = er.async_get(coordinator.hass)
    known: set[str] = set()

    @callback
    def sync() -> None:
        current = set(coordinator.data.devices)
        for uuid in known - current:
            for entity_id in [e.entity_id for e in er.async_entries_for_config_entry(registry, entry.entry_id) if e.domain == domain and e.unique_id.startswith(f"{entry.runtime_data.instance_id}_{uuid}_")]:
                registry.async_remove(entity_id)
        new = current - known
        known.clear()
        known.update(current)
        if new:
            add([entity for uuid in sorted(new) for entity in make(uuid)])

    sync()
    entry.async_on_unload(coordinator.async_add_listener(sync))
