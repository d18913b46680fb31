"""Optional mDNS announcement (``_googlecast._tcp.local.``), as a real Cast device makes.

zeroconf runs its own threads; they exist only inside :func:`announce` and are closed (and
joined) on the way out, whatever ends the block.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..lowlevel.mdns import registered

SERVICE_TYPE = "_googlecast._tcp.local."
#: Cast device capability bits in the TXT ``ca`` field: video out, audio out, … (4101 is what
#: video Chromecasts announce; inferred from published TXT dumps).
CAPABILITIES_VIDEO = 4101


def txt_record(device_id: uuid.UUID, name: str, model: str, status_text: str = "") -> dict[str, str]:
    """The TXT keys pychromecast reads (``id``, ``md``, ``fn``; discovery.py) and the rest a
    device sends."""
    return {
        "id": device_id.hex,
        "cd": device_id.hex[:32].upper(),
        "rm": "",
        "ve": "05",
        "md": model,
        "ic": "/setup/icon.png",
        "fn": name,
        "ca": str(CAPABILITIES_VIDEO),
        "st": "0",
        "bs": device_id.hex[:12].upper(),
        "nf": "1",
        "rs": status_text,
    }


@asynccontextmanager
async def announce(host: str, device_id: uuid.UUID, name: str, model: str, port: int = 8009) -> AsyncIterator[None]:
    from zeroconf import ServiceInfo

    info = ServiceInfo(
        SERVICE_TYPE,
        f"{model.replace(' ', '-')}-{device_id.hex}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(host)],
        port=port,
        properties=txt_record(device_id, name, model),
        server=f"{device_id.hex}.local.",
    )
    async with registered(info, ["127.0.0.1"]):
        yield
