"""Per Cast TV: the live thumbnail of the pagecast session on it (none when idle)."""

from __future__ import annotations

from homeassistant.components.image import ImageEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .coordinator import PagecastConfigEntry
from .entity import PagecastTvEntity, track_tvs

PARALLEL_UPDATES = 0  # the coordinator polls; the picture is fetched when the frontend asks


async def async_setup_entry(hass: HomeAssistant, entry: PagecastConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    track_tvs(entry, Platform.IMAGE, lambda uuid: [ThumbnailImage(hass, entry, uuid)], async_add_entities)


class ThumbnailImage(PagecastTvEntity, ImageEntity):
    """What the TV shows from pagecast, about as fresh as the last poll."""

    _attr_content_type = "image/jpeg"

    def __init__(self, hass: HomeAssistant, entry: PagecastConfigEntry, uuid: str) -> None:
        PagecastTvEntity.__init__(self, entry, "thumbnail", uuid)
        ImageEntity.__init__(self, hass)
        self._session_id: str | None = None
        self._follow()

    def _follow(self) -> None:
        """A new picture at each poll while a session is on the TV: the frontend fetches again
        when the last-updated time changes."""
        session = self.session
        self._session_id = session["id"] if session else None
        self._attr_image_last_updated = dt_util.utcnow() if session else None

    @callback
    def _handle_coordinator_update(self) -> None:
        self._follow()
        super()._handle_coordinator_update()

    async def async_image(self) -> bytes | None:
        if self._session_id is None:
            return None
        return await self.coordinator.client.thumbnail(self._session_id)
