"""Schemathesis hooks for tests/test_contract.py (loaded through SCHEMATHESIS_HOOKS).

Whatever it generates stays on this machine and off any TV: a /start whose url is valid is
sent to the test page server instead (CONTRACT_PAGE), and one that names a device only
streams. Bodies that break the schema are left as they are, so they are still refused."""

from __future__ import annotations

import os
import re

import schemathesis

PAGE = os.environ["CONTRACT_PAGE"]
HTTP_URL = re.compile(r"^\s*[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]")


@schemathesis.hook
def map_body(ctx, body):
    if ctx.operation.path == "/start" and isinstance(body, dict):
        if isinstance(body.get("url"), str) and HTTP_URL.match(body["url"]):
            body["url"] = PAGE
        if isinstance(body.get("device"), str) and body["device"].strip():
            body["device"] = None
    return body
