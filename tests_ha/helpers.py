"""Waiting on real things, and setting pagecast up in a test's Home Assistant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pagecast.const import CONF_API_TOKEN, CONF_URL, DOMAIN

#: Until pagecast reports an instance id in /health, entries made here use this one.
FALLBACK_INSTANCE_ID = "0" * 32


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 20.0) -> Any:
    """``check()``'s first truthy answer, polled; a TimeoutError naming ``what`` otherwise."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what}: not within {timeout} s (last: {last!r})")


async def get_json(hass: HomeAssistant, url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with async_get_clientsession(hass).get(url, headers=headers) as resp:
        return await resp.json(content_type=None)


async def instance_id(hass: HomeAssistant, url: str) -> str | None:
    return (await get_json(hass, url + "/health")).get("instance_id")


async def add_entry(hass: HomeAssistant, url: str, token: str | None = None, *, setup: bool = True, unique_id: str | None = None) -> MockConfigEntry:
    """A pagecast entry as the config flow makes it, set up."""
    unique_id = unique_id or await instance_id(hass, url) or FALLBACK_INSTANCE_ID
    data = {CONF_URL: url, **({CONF_API_TOKEN: token} if token else {})}
    entry = MockConfigEntry(domain=DOMAIN, title="pagecast", data=data, unique_id=unique_id)
    entry.add_to_hass(hass)
    if setup:
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    return entry
