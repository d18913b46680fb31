"""Per Cast TV: is pagecast showing something there now."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import PagecastConfigEntry
from .entity import PagecastTvEntity, track_tvs

PARALLEL_UPDATES = 0  # the coordinator polls; entities only read its data


async def async_setup_entry(hass: HomeAssistant, entry: PagecastConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    track_tvs(entry, Platform.BINARY_SENSOR, lambda uuid: [ShowingSensor(entry, uuid)], async_add_entities)


class ShowingSensor(PagecastTvEntity, BinarySensorEntity):
    """On while a starting or live pagecast session is on the TV."""

    def __init__(self, entry: PagecastConfigEntry, uuid: str) -> None:
        super().__init__(entry, "showing", uuid)

    @property
    def is_on(self) -> bool:
        return self.session is not None

    @property
    def extra_state_attributes(self) -> dict[str, str | None]:
        session = self.session or {}
        return {"session_id": session.get("id"), "url": session.get("url"), "state": session.get("state")}
