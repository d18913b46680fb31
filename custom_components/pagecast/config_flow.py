"""Setting pagecast up: typed in, found on the network (zeroconf), or offered by its app
(Supervisor discovery); the API token again when pagecast refuses it; a new address."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv6Address, ip_address
from typing import Any

import voluptuous as vol

from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigFlow, ConfigFlowResult
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import TextSelector, TextSelectorConfig, TextSelectorType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from .api import PagecastAuthError, PagecastClient, PagecastError, normalize_url
from .const import CONF_API_TOKEN, CONF_INSTANCE_ID, CONF_URL, DOMAIN

_TOKEN = {vol.Optional(CONF_API_TOKEN): TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))}
_URL_AND_TOKEN = vol.Schema({vol.Required(CONF_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)), **_TOKEN})


class NotPagecastEnough(PagecastError):
    """pagecast answered, but too old to say its instance id."""


async def _check(flow: ConfigFlow, url: str, token: str | None) -> tuple[str | None, dict[str, str]]:
    """pagecast's instance id at ``url`` once /health answers and /status takes the token;
    else no id, and the errors the form shows."""
    client = PagecastClient(async_get_clientsession(flow.hass), url, token)
    try:
        health = await client.health()
        instance_id = health.get(CONF_INSTANCE_ID)
        if not isinstance(instance_id, str) or not instance_id:
            raise NotPagecastEnough(f"{client.url}/health has no instance_id")
        await client.status()
    except PagecastError as exc:
        return None, _errors_of(exc)
    return instance_id, {}


def _errors_of(exc: PagecastError) -> dict[str, str]:
    if isinstance(exc, PagecastAuthError):
        return {"base": "invalid_auth"}
    if isinstance(exc, NotPagecastEnough):
        return {"base": "outdated"}
    return {"base": "cannot_connect"}


def _url_of(host: str, port: int | None) -> str:
    try:
        if isinstance(ip_address(host), IPv6Address):
            host = f"[{host}]"
    except ValueError:
        pass
    return f"http://{host}:{port}" if port else f"http://{host}"


class PagecastConfigFlow(ConfigFlow, domain=DOMAIN):
    """pagecast's config flow; the entry's unique id is pagecast's own instance id."""

    VERSION = 1

    def __init__(self) -> None:
        self._url: str | None = None

    def _entry_data(self, url: str, token: str | None) -> dict[str, Any]:
        return {CONF_URL: normalize_url(url), **({CONF_API_TOKEN: token} if token else {})}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._url_step("user", user_input, {})

    async def _url_step(self, step_id: str, user_input: dict[str, Any] | None, suggested: dict[str, Any]) -> ConfigFlowResult:
        """The form asking for the URL and token: a new entry, or (reconfigure) the entry's new address."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url, token = user_input[CONF_URL], user_input.get(CONF_API_TOKEN) or None
            instance_id, errors = await _check(self, url, token)
            if instance_id is not None:
                await self.async_set_unique_id(instance_id)
                if self.source != SOURCE_RECONFIGURE:
                    self._abort_if_unique_id_configured()
                    return self.async_create_entry(title=f"pagecast ({normalize_url(url).split('://', 1)[1]})", data=self._entry_data(url, token))
                self._abort_if_unique_id_mismatch(reason="wrong_instance")
                entry = self._get_reconfigure_entry()
                kept = {k: v for k, v in entry.data.items() if k not in (CONF_URL, CONF_API_TOKEN)}
                return self.async_update_reload_and_abort(entry, data={**kept, **self._entry_data(url, token)})
        return self.async_show_form(step_id=step_id, data_schema=self.add_suggested_values_to_schema(_URL_AND_TOKEN, user_input or suggested), errors=errors)

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        instance_id = discovery_info.properties.get("id")
        if not instance_id:
            return self.async_abort(reason="outdated")
        return await self._discovered(instance_id, _url_of(discovery_info.host, discovery_info.port), "zeroconf_confirm")

    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        config = discovery_info.config
        if not config.get(CONF_INSTANCE_ID) or not config.get("host"):
            return self.async_abort(reason="outdated")
        return await self._discovered(str(config[CONF_INSTANCE_ID]), _url_of(str(config["host"]), config.get("port")), "hassio_confirm")

    async def _discovered(self, instance_id: str, url: str, confirm_step: str) -> ConfigFlowResult:
        """A pagecast already set up keeps its entry, at the address it now has."""
        await self.async_set_unique_id(instance_id)
        self._abort_if_unique_id_configured(updates={CONF_URL: url})
        self._url = url
        self.context["title_placeholders"] = {"url": url}
        return await getattr(self, f"async_step_{confirm_step}")()

    async def _confirm(self, step_id: str, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        assert self._url is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            token = user_input.get(CONF_API_TOKEN) or None
            instance_id, errors = await _check(self, self._url, token)
            if instance_id is not None:
                if instance_id != self.unique_id:
                    return self.async_abort(reason="wrong_instance")
                return self.async_create_entry(title=f"pagecast ({self._url.split('://', 1)[1]})", data=self._entry_data(self._url, token))
        return self.async_show_form(step_id=step_id, data_schema=vol.Schema(_TOKEN), errors=errors, description_placeholders={"url": self._url})

    async def async_step_zeroconf_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._confirm("zeroconf_confirm", user_input)

    async def async_step_hassio_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._confirm("hassio_confirm", user_input)

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            token = user_input.get(CONF_API_TOKEN) or None
            instance_id, errors = await _check(self, entry.data[CONF_URL], token)
            if instance_id is not None:
                await self.async_set_unique_id(instance_id)
                self._abort_if_unique_id_mismatch(reason="wrong_instance")
                data = {k: v for k, v in entry.data.items() if k != CONF_API_TOKEN}
                return self.async_update_reload_and_abort(entry, data={**data, **({CONF_API_TOKEN: token} if token else {})})
        return self.async_show_form(step_id="reauth_confirm", data_schema=vol.Schema(_TOKEN), errors=errors, description_placeholders={"url": entry.data[CONF_URL]})

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        entry = self._get_reconfigure_entry()
        return await self._url_step("reconfigure", user_input, {CONF_URL: entry.data[CONF_URL], CONF_API_TOKEN: entry.data.get(CONF_API_TOKEN, "")})
