"""Schemathesis hooks for tests/test_contract.py (loaded through SCHEMATHESIS_HOOKS).

Whatever it generates stays on this machine and off any TV, and ends by itself: in a /start,
a url the document allows is replaced by the test page (CONTRACT_PAGE), a device it allows
by null (stream only), and a missing duration is set short. Each replacement is a value the
document allows too, so a body that breaks it still breaks it, and must still be refused."""

from __future__ import annotations

import os
import re

import schemathesis

from pagecast.core.request import START_FIELDS, _blank

PAGE = os.environ["CONTRACT_PAGE"]
URL = START_FIELDS["url"].json_schema(nullable=False)
URL_PATTERN = re.compile(URL["pattern"])


def _allowed_url(value) -> bool:
    return isinstance(value, str) and len(value) <= URL["maxLength"] and URL_PATTERN.search(value) is not None


def _allowed_device(value) -> bool:
    return isinstance(value, str) and not _blank(value)


@schemathesis.hook
def map_body(ctx, body):
    if ctx.operation.path == "/start" and isinstance(body, dict):
        if _allowed_url(body.get("url")):
            body["url"] = PAGE
        if _allowed_device(body.get("device")):
            body["device"] = None
        body.setdefault("duration", 3)
    return body
