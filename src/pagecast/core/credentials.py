"""A page's credentials as Chromium takes them: cookies with a URL, and a script that fills
localStorage (a Home Assistant token among them) for the page's origin only."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .errors import RenderError
from .request import Auth

#: ``expires`` of a long-lived token's blob: far future, so the frontend never refreshes it.
_HA_EXPIRES_MS = 32503680000000  # 3000-01-01


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def ha_tokens(auth: Auth) -> dict[str, Any] | None:
    """Home Assistant's ``hassTokens`` without ``hassUrl`` (the page's origin, added in the page).

    A long-lived token never expires, so the frontend never refreshes it. A refresh token comes
    with an access token already expired: the frontend fetches its own at once and renews it
    every 30 minutes for as long as the page runs, as HA's own Cast receiver signs in. A system
    user's refresh token has no client id, and home-assistant-js-websocket then leaves
    ``client_id`` out of the refresh request, which HA accepts for such a token."""
    if auth.ha_token:
        return {"access_token": auth.ha_token, "token_type": "Bearer", "expires_in": 1800, "refresh_token": "", "expires": _HA_EXPIRES_MS}
    if auth.ha_refresh_token:
        return {"access_token": "", "token_type": "Bearer", "expires_in": 0, "refresh_token": auth.ha_refresh_token, "expires": 0, "clientId": auth.ha_client_id}
    return None


def storage_script(url: str, auth: Auth, defaults: list[tuple[str, str]] | tuple = ()) -> str:
    """JS run before any page script: set localStorage for the page's origin only.
    ``defaults`` (the look's settings) go first, so the user's own items win."""
    items = [[k, v] for k, v in (*defaults, *auth.local_storage)]
    ha = ha_tokens(auth)
    return (
        "(() => {\n"
        f"  const origin = new URL({json.dumps(url)}).origin;\n"
        "  if (location.origin !== origin) return;\n"
        "  try {\n"
        f"    for (const [k, v] of {json.dumps(items)}) localStorage.setItem(k, v);\n"
        f"    const ha = {json.dumps(ha)};\n"
        "    if (ha) localStorage.setItem('hassTokens', JSON.stringify(Object.assign({hassUrl: origin, clientId: origin + '/'}, ha)));\n"
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
