"""The service's mDNS announcement, ``_pagecast._tcp.local.``, so Home Assistant's zeroconf
discovery finds a pagecast on the LAN (a container needs host networking for it).

The TXT record carries what a client needs before it asks anything: the instance id (stable
across restarts and addresses), the version and the API's base path. zeroconf runs its own
threads; they live only inside :func:`announce` and are joined on the way out.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psutil

from ..lowlevel.mdns import registered

log = logging.getLogger(__name__)

SERVICE_TYPE = "_pagecast._tcp.local."
API_BASE = "/"


def txt_record(instance_id: str, version: str) -> dict[str, str]:
    return {"id": instance_id, "version": version, "base": API_BASE}


def service_name(instance_id: str) -> str:
    return f"pagecast-{instance_id[:8]}.{SERVICE_TYPE}"


def _lan_addresses() -> list[str]:
    stats = psutil.net_if_stats()
    return [
        a.address
        for name, addrs in psutil.net_if_addrs().items() if stats.get(name) and stats[name].isup
        for a in addrs if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]


def addresses_for(host: str, public_host: str | None) -> list[str]:
    """Where clients should connect: the public URL's address when it is one, else the bound
    address, else every LAN address of this host."""
    for candidate in (public_host, host):
        try:
            ip = ipaddress.ip_address(candidate or "")
        except ValueError:
            continue
        if ip.version == 4 and not ip.is_unspecified:
            return [str(ip)]
    return _lan_addresses() or ["127.0.0.1"]


@asynccontextmanager
async def announce(instance_id: str, version: str, port: int, addresses: list[str], bound_host: str) -> AsyncIterator[None]:
    """Announced for the block's life. A service bound to one address announces on that
    interface only; one bound to all on every interface."""
    from zeroconf import InterfaceChoice, ServiceInfo

    info = ServiceInfo(
        SERVICE_TYPE,
        service_name(instance_id),
        addresses=[socket.inet_aton(a) for a in addresses],
        port=port,
        properties=txt_record(instance_id, version),
        server=f"pagecast-{instance_id[:8]}.local.",
    )
    interfaces = InterfaceChoice.All if bound_host in ("", "0.0.0.0", "::") else [bound_host]
    async with registered(info, interfaces, allow_name_change=True):
        log.info("announced as %s on %s (mDNS)", info.name, ", ".join(addresses))
        yield
