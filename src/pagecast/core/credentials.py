"""A page's credentials as Chromium takes them: cookies with a URL, and a script that fills
localStorage (a Home Assistant token among them) for the page's origin only."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .errors import RenderError
from .request import Auth

#: ``expires`` of the Home Assistant token blob: far future, so the frontend never refreshes.
_HA_EXPIRES_MS = 32503680000000  # 3000-01-01


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def storage_script(url: str, auth: Auth, defaults: list[tuple[str, str]] | tuple = ()) -> str:
    """JS run before any page script: set localStorage for the page's origin only.
    ``defaults`` (the look's settings) go first, so the user's own items win."""
    items = [[k, v] for k, v in (*defaults, *auth.local_storage)]
    ha = None
    if auth.ha_token:
        ha = {
            "access_token": auth.ha_token,
            "token_type": "Bearer",
            "expires_in": 1800,
            "refresh_token": "",
            "expires": _HA_EXPIRES_MS,
        }
    return (
        "(() => {\n"
        f"  const origin = new URL({json.dumps(url)}).origin;\n"
        "  if (location.origin !== origin) return;\n"
        "  try {\n"
        f"    for (const [k, v] of {json.dumps(items)}) localStorage.setItem(k, v);\n"
        f"    const ha = {json.dumps(ha)};\n"
        "    if (ha) localStorage.setItem('hassTokens', JSON.stringify(Object.assign(ha, {hassUrl: origin, clientId: origin + '/'})));\n"
        "  } catch (e) {}\n"
        "})();"
    )


def cookie_params(url: str, auth: Auth) -> list[dict[str, Any]]:
    cookies = []
    for cookie in auth.cookies:
        c = dict(cookie)
        if "name" not in c or "value" not in c:
            raise RenderError("each cookie needs a 'name' and a 'value'")
        if not c.get("url") and not c.get("domain"):
            c["url"] = url
        cookies.append(c)
    return cookies
