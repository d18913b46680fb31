"""A virtual Google Cast TV: a real CASTV2 peer that senders (pychromecast, or any other that
skips device authentication) accept as a Chromecast running the Default Media Receiver, which
really plays what it is sent and can be made to fail in the ways real TVs do.

See ``docs/virtual-tv.md``.
"""

from __future__ import annotations

from .cli import main
from .device import MODEL_NAME, VirtualTV, open_virtual_tv
from .net import BindError
from .players import PlayerError

__all__ = ["MODEL_NAME", "BindError", "PlayerError", "VirtualTV", "main", "open_virtual_tv"]
