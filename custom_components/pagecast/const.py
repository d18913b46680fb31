"""Names shared by the integration's modules."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "pagecast"

CONF_URL: Final = "url"
CONF_API_TOKEN: Final = "api_token"
CONF_INSTANCE_ID: Final = "instance_id"
CONF_SYSTEM_USER_ID: Final = "system_user_id"

SYSTEM_USER_NAME: Final = "pagecast"

#: /status is the cheap poll; /devices connects to every TV, so it is asked rarely.
STATUS_INTERVAL: Final = timedelta(seconds=10)
DEVICES_INTERVAL: Final = timedelta(minutes=5)
#: How long pagecast may be unreachable before a repair issue says so.
UNREACHABLE_ISSUE_AFTER: Final = timedelta(minutes=5)

ACTIVE_STATES: Final = frozenset({"starting", "live"})
QUALITIES: Final = ("1080p", "720p", "low-latency", "nest-hub", "nest-hub-max", "4k", "portrait")
MODES: Final = ("hls", "fmp4")
THEMES: Final = ("dark", "light")

#: What pagecast's error says when a page landed on a sign-in page (core/page.py).
LOGIN_FAILURE_MARK: Final = "missing or expired"

ISSUE_UNREACHABLE: Final = "unreachable"
ISSUE_VERSION_MISMATCH: Final = "version_mismatch"
ISSUE_DASHBOARD_SIGNED_OUT: Final = "dashboard_signed_out"
