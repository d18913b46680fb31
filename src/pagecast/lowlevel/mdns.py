"""An mDNS service registered for a block: the service's announcement and the virtual TV's.

zeroconf runs its own threads and blocks in its calls; here they run off Trio's thread, and
the threads live only inside :func:`registered`: unregistered, closed and joined on the way
out, whatever ends the block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio


@asynccontextmanager
async def registered(info: Any, interfaces: Any, *, allow_name_change: bool = False) -> AsyncIterator[None]:
    """``info`` (a zeroconf ``ServiceInfo``) announced on ``interfaces`` for the block's life."""
    from zeroconf import Zeroconf

    zc = await trio.to_thread.run_sync(partial(Zeroconf, interfaces=interfaces))
    try:
        await trio.to_thread.run_sync(partial(zc.register_service, info, allow_name_change=allow_name_change))
        yield
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_close, zc, info)


def _close(zc: Any, info: Any) -> None:
    try:
        zc.unregister_service(info)
    finally:
        zc.close()
