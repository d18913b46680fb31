"""Every way pagecast gets set up, against a real pagecast serve."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from conftest import free_port
from custom_components.pagecast.const import CONF_API_TOKEN, CONF_URL, DOMAIN
from helpers import add_entry, instance_id


@pytest.fixture
async def pagecast_id(hass: HomeAssistant, pagecast) -> str:
    found = await instance_id(hass, pagecast.url)
    if not found:
        pytest.skip("this pagecast's /health has no instance_id yet")
    return found


def zeroconf_info(port: int, instance: str) -> ZeroconfServiceInfo:
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"), ip_addresses=[ip_address("127.0.0.1")], port=port,
        hostname="pagecast.local.", type="_pagecast._tcp.local.", name=f"pagecast-{instance[:8]}._pagecast._tcp.local.",
        properties={"id": instance, "version": "0.1.0", "base": "/"},
    )


async def test_user_step_makes_an_entry_keyed_by_pagecast_instance_id(hass: HomeAssistant, pagecast, pagecast_id) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_URL: pagecast.url + "/"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == pagecast_id
    assert result["data"] == {CONF_URL: pagecast.url}
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED


async def test_user_step_says_cannot_connect_when_nothing_answers(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_URL: f"http://127.0.0.1:{free_port()}"})
    assert result["type"] is FlowResultType.FORM and result["errors"] == {"base": "cannot_connect"}


async def test_user_step_says_invalid_auth_for_a_wrong_or_missing_token(hass: HomeAssistant, pagecast_with_token) -> None:
    if not await instance_id(hass, pagecast_with_token.url):
        pytest.skip("this pagecast's /health has no instance_id yet")
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    for token in ("wrong", ""):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_URL: pagecast_with_token.url, CONF_API_TOKEN: token})
        assert result["type"] is FlowResultType.FORM and result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_URL: pagecast_with_token.url, CONF_API_TOKEN: pagecast_with_token.token})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_API_TOKEN] == pagecast_with_token.token
    await hass.async_block_till_done()


async def test_zeroconf_discovery_is_confirmed_then_set_up(hass: HomeAssistant, pagecast, pagecast_id) -> None:
    port = int(pagecast.url.rsplit(":", 1)[1])
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=zeroconf_info(port, pagecast_id))
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "zeroconf_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == pagecast_id and result["data"] == {CONF_URL: pagecast.url}
    await hass.async_block_till_done()


async def test_supervisor_discovery_is_confirmed_then_set_up_by_instance_id_not_app_uuid(hass: HomeAssistant, pagecast, pagecast_id) -> None:
    port = int(pagecast.url.rsplit(":", 1)[1])
    info = HassioServiceInfo(config={"host": "127.0.0.1", "port": port, "instance_id": pagecast_id}, name="pagecast", slug="pagecast", uuid="a" * 32)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_HASSIO}, data=info)
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "hassio_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == pagecast_id
    await hass.async_block_till_done()


async def test_a_discovered_instance_already_set_up_is_not_offered_again_and_moves_to_its_new_address(hass: HomeAssistant, pagecast, pagecast_id) -> None:
    entry = await add_entry(hass, "http://127.0.0.1:9", setup=False, unique_id=pagecast_id)
    port = int(pagecast.url.rsplit(":", 1)[1])
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=zeroconf_info(port, pagecast_id))
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "already_configured"
    assert entry.data[CONF_URL] == pagecast.url
    info = HassioServiceInfo(config={"host": "127.0.0.1", "port": port, "instance_id": pagecast_id}, name="pagecast", slug="pagecast", uuid="b" * 32)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_HASSIO}, data=info)
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "already_configured"
    await hass.async_block_till_done()


async def test_a_refused_token_asks_for_the_new_one(hass: HomeAssistant, pagecast_with_token) -> None:
    if not await instance_id(hass, pagecast_with_token.url):
        pytest.skip("this pagecast's /health has no instance_id yet")
    entry = await add_entry(hass, pagecast_with_token.url, "an-old-token")
    assert entry.state is ConfigEntryState.SETUP_ERROR
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == config_entries.SOURCE_REAUTH and flow["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {CONF_API_TOKEN: "still-wrong"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {CONF_API_TOKEN: pagecast_with_token.token})
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_API_TOKEN] == pagecast_with_token.token
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_moves_the_entry_and_refuses_another_instance(hass: HomeAssistant, pagecast, pagecast_with_token, pagecast_id) -> None:
    entry = await add_entry(hass, "http://127.0.0.1:9", setup=False, unique_id=pagecast_id)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_URL: f"http://127.0.0.1:{free_port()}"})
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_URL: pagecast_with_token.url, CONF_API_TOKEN: pagecast_with_token.token})
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "wrong_instance"
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_URL: pagecast.url})
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_URL] == pagecast.url
    assert entry.state is ConfigEntryState.LOADED
