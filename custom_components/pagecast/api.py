"""pagecast's HTTP API, spoken through Home Assistant's own aiohttp session."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)
#: /devices connects to every TV to see what it shows: it may take a while.
DEVICES_TIMEOUT = aiohttp.ClientTimeout(total=30)


class PagecastError(Exception):
    """Something went wrong talking to pagecast."""


class PagecastConnectionError(PagecastError):
    """pagecast did not answer (down, wrong address, not pagecast)."""


class PagecastAuthError(PagecastError):
    """pagecast answered 401: the API token is missing or wrong."""


class PagecastRefused(PagecastError):
    """pagecast refused a request (4xx/5xx) and said why in its own words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def normalize_url(url: str) -> str:
    """The base URL without a trailing slash, with http:// when no scheme was typed."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


class PagecastClient:
    """One pagecast service: its base URL and (optional) bearer token."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None = None) -> None:
        self._session = session
        self.url = normalize_url(url)
        self._token = token or None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT) -> Any:
        try:
            async with self._session.request(method, self.url + path, json=body, headers=self._headers(), timeout=timeout) as resp:
                if resp.status == 401:
                    raise PagecastAuthError(await _message(resp))
                if resp.status >= 400:
                    raise PagecastRefused(resp.status, await _message(resp))
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise PagecastConnectionError(f"{method} {self.url}{path}: {exc or type(exc).__name__}") from exc

    async def health(self) -> dict[str, Any]:
        """GET /health (needs no token): version, instance id."""
        data = await self._request("GET", "/health")
        if not isinstance(data, dict) or data.get("status") != "ok":
            raise PagecastConnectionError(f"{self.url}/health did not answer as pagecast does")
        return data

    async def status(self) -> dict[str, Any]:
        return await self._request("GET", "/status")

    async def devices(self) -> list[dict[str, Any]]:
        data = await self._request("GET", "/devices", timeout=DEVICES_TIMEOUT)
        return list(data.get("devices") or [])

    async def start(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", "/start", body)

    async def stop(self, body: dict[str, Any]) -> list[str]:
        data = await self._request("POST", "/stop", body)
        return list(data.get("stopped") or [])

    async def thumbnail(self, session_id: str) -> bytes | None:
        """The session's newest picture, or None when it has none (yet, or any more)."""
        try:
            async with self._session.get(f"{self.url}/sessions/{session_id}/thumbnail.jpg", timeout=REQUEST_TIMEOUT) as resp:
                if resp.status != 200:
                    return None
                return await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None


async def _message(resp: aiohttp.ClientResponse) -> str:
    """pagecast's own words from its {"error": …} body, else the HTTP reason."""
    try:
        data = await resp.json(content_type=None)
    except (aiohttp.ClientError, ValueError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    return f"HTTP {resp.status} {resp.reason or ''}".strip()
