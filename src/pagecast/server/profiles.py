"""The profiles file (PAGECAST_PROFILES_FILE), read at start and again whenever it changes, in a
worker thread: a /start never reads the disk. A broken file keeps the last good profiles, and
says so in /health and the log, until it is mended."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import trio

from ..core.settings import ConfigError, parse_profiles

log = logging.getLogger(__name__)

#: How often the file's modification time is looked at.
CHECK_INTERVAL = 2.0


class Profiles:
    """The profiles now in force (``current``), and what is wrong with the file, if anything."""

    def __init__(self, path: str, interval: float = CHECK_INTERVAL):
        self.path = Path(path) if path else None
        self.interval = interval
        self.current: dict[str, dict[str, Any]] = {}
        self.error: str | None = None
        self.loaded_at: float | None = None
        self._seen: tuple[float, int] | None = None

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load now, then follow the file until cancelled."""
        await self.reload()
        task_status.started()
        if self.path is None:
            return
        while True:
            await trio.sleep(self.interval)
            if await trio.to_thread.run_sync(self._stamp) != self._seen:
                await self.reload()

    async def reload(self) -> None:
        if self.path is None:
            return
        stamp, text, why = await trio.to_thread.run_sync(self._read)
        self._seen = stamp
        try:
            if why is not None:
                raise ConfigError(why)
            profiles = parse_profiles(text, self.path.name)
        except ConfigError as exc:
            self.error = str(exc)
            kept = f"keeping the {len(self.current)} profile(s) loaded before" if self.loaded_at is not None else "no profiles are loaded"
            log.warning("%s; %s", exc, kept)
            return
        if self.error is not None or self.loaded_at is not None:
            log.info("profiles loaded from %s: %s", self.path, ", ".join(sorted(profiles)) or "none")
        self.current, self.error, self.loaded_at = profiles, None, time.time()

    def _stamp(self) -> tuple[float, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime, st.st_size

    def _read(self) -> tuple[tuple[float, int] | None, str, str | None]:
        stamp = self._stamp()
        try:
            return stamp, self.path.read_text(), None
        except OSError as exc:
            return stamp, "", f"PAGECAST_PROFILES_FILE: cannot read {self.path}: {exc.strerror}"

    def health(self) -> dict[str, Any]:
        return {
            "file": str(self.path) if self.path else None,
            "names": sorted(self.current),
            "error": self.error,
        }
