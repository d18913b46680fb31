"""The one way pagecast writes a moment: ISO 8601 in UTC with milliseconds (``2026-12-07T12:00:00.250Z``),
in /status, the playlist's EXT-X-PROGRAM-DATE-TIME and JSON log lines."""

from __future__ import annotations

from datetime import datetime, timezone


def iso_ms(ts: float) -> str:
    """``ts`` (seconds since the epoch) as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_ms_or_none(ts: float | None) -> str | None:
    return None if ts is None else iso_ms(ts)
