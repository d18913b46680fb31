"""A Cast device as the directory knows it, and how its ``eureka_info`` answer names it."""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from .timestamps import iso_ms

CAST_PORT = 8009


@dataclass(frozen=True)
class Device:
    """A Cast device as the directory knows it."""

    name: str
    uuid: str
    model: str
    manufacturer: str
    host: str
    port: int = CAST_PORT
    source: str = "static"  # "static", "mdns" or "address" (named by address in a /start)
    display: bool = True
    last_seen: float = 0.0

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d["address"] = f"{self.host}:{self.port}" if self.port != CAST_PORT else self.host
        d["last_seen"] = iso_ms(self.last_seen) if self.last_seen else None
        return d


def parse_eureka(host: str, data: dict[str, Any], source: str, now: float) -> Device:
    """The device a ``/setup/eureka_info`` answer describes, seen at ``now`` (wall clock)."""
    info = data.get("device_info") or {}
    udn = info.get("ssdp_udn") or data.get("ssdp_udn")
    if not udn:
        raise ValueError("its device info has no ssdp_udn (uuid)")
    caps = info.get("capabilities") or {}
    return Device(
        name=info.get("name") or data.get("name") or host,
        uuid=str(UUID(udn.replace("-", ""))),
        model=info.get("model_name") or "unknown model",
        manufacturer=info.get("manufacturer") or "unknown manufacturer",
        host=host,
        source=source,
        display=bool(caps.get("display_supported", True)),
        last_seen=now,
    )


def looks_like_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return "." in text and " " not in text and not text.endswith(".")


def uuid_of(spec: str) -> str | None:
    """``spec`` as a device uuid (with or without dashes, any case), or None if it is none."""
    try:
        return str(UUID(spec.strip().replace("-", "")))
    except ValueError:
        return None


def names(device: Device, spec: str) -> bool:
    """Whether ``spec`` (as a /start, /stop or a screen's path names a TV) names ``device``: its
    uuid (with or without dashes), its friendly name in any case, or its address."""
    key = spec.strip()
    return uuid_of(key) == device.uuid or key.casefold() == device.name.casefold() or key == device.host
