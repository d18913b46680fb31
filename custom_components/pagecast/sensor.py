"""Diagnostic sensors of the pagecast service: sessions running, its version."""

from __future__ import annotations

from homeassistant.components.sensor import SensorEntity, SensorStateClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import PagecastConfigEntry
from .entity import PagecastEntity

PARALLEL_UPDATES = 0  # the coordinator polls; entities only read its data


async def async_setup_entry(hass: HomeAssistant, entry: PagecastConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    async_add_entities([ActiveSessionsSensor(entry), VersionSensor(entry)])


class ActiveSessionsSensor(PagecastEntity, SensorEntity):
    """Sessions starting or live on the service."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, entry: PagecastConfigEntry) -> None:
        super().__init__(entry, "active_sessions")

    @property
    def native_value(self) -> int:
        return int(self.coordinator.data.status.get("active") or 0)


class VersionSensor(PagecastEntity, SensorEntity):
    """The version the service reports: a mismatch with this integration is a repair issue."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, entry: PagecastConfigEntry) -> None:
        super().__init__(entry, "version")

    @property
    def native_value(self) -> str | None:
        return self.coordinator.data.status.get("version")
