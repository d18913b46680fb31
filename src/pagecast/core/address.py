"""The address TVs fetch streams from: which of this machine's interfaces to name when the
service listens on all of them, and whether a TV can reach the address at all.

A TV is told a URL in every LOAD and fetches the stream from it; a wrong one (a loopback
address, a Docker or VM bridge) fails only on the TV, so it is said once at start, loudly.
Pure: the interfaces are given as (name, IPv4 address) pairs of those that are up."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .settings import env_name

#: Interfaces that lead to containers or VMs on this machine, never to the TVs' network.
BRIDGE_PREFIXES = ("docker", "br-", "veth", "podman", "cni", "virbr", "flannel", "lxcbr", "lxdbr")

Interface = tuple[str, str]


def is_bridge(name: str) -> bool:
    return name.startswith(BRIDGE_PREFIXES)


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def pick_address(interfaces: list[Interface]) -> str:
    """The address to name for a service listening on every interface: the first that is
    neither loopback nor a bridge (the system's order), else the first bridge, else loopback."""
    outside = [(name, addr) for name, addr in interfaces if not _is_loopback(addr)]
    reachable = [addr for name, addr in outside if not is_bridge(name)]
    if reachable:
        return reachable[0]
    return outside[0][1] if outside else "127.0.0.1"


def reachability(url: str, interfaces: list[Interface]) -> tuple[str, str | None]:
    """What to log at start: the URL TVs will fetch from, and a warning if TVs cannot reach it
    (a loopback address, or the address of a container/VM bridge), naming the fix."""
    setting = env_name("public_url")
    told = f"TVs will fetch streams from {url} (set {setting} to change it)"
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    better = next((addr for name, addr in interfaces if not _is_loopback(addr) and not is_bridge(name)), None)
    example = f" (e.g. {parts.scheme}://{better}{port})" if better else ""
    fix = f"set {setting} to this machine's address on the TVs' network{example}"
    if _is_loopback(host):
        return told, (f"TVs cannot reach {url}: {host} is this machine's loopback address; {fix}. "
                      "(Only a virtual TV on this machine can play from it.)")
    on = next((name for name, addr in interfaces if addr == host), None)
    if on is not None and is_bridge(on):
        return told, f"TVs cannot reach {url}: {host} is on {on}, a bridge to containers or VMs on this machine, not the TVs' network; {fix}"
    return told, None
