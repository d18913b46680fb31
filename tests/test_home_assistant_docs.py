"""docs/home-assistant.md is what Home Assistant would run: its YAML parses, and every call an
automation or script makes, with its data filled into the rest_command's payload, is a body
that POST /start or POST /stop accepts: by the API's document (GET /openapi.json) and by the
service's own validation, with the doc's profiles."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jinja2
import jsonschema_rs
import yaml

from pagecast.core.request import parse_start, parse_stop
from pagecast.core.settings import Settings
from pagecast.server.openapi import document

DOC = Path(__file__).parents[1] / "docs" / "home-assistant.md"


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!secret", lambda loader, node: f"<secret {loader.construct_scalar(node)}>")


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), re.S)


def _fill(template: str, data: dict) -> str:
    """A payload with an action's data in it, as Home Assistant's rest_command renders it:
    a Jinja template rendered to text (``parse_result=False``), so a bare ``{{ flag }}`` is
    Python's ``False``, not JSON, unless the guide says ``| tojson``."""
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(**data)


def _calls(node) -> list[tuple[str, dict]]:
    """Every ``action: rest_command.X`` with its data, anywhere in the YAML."""
    found = []
    if isinstance(node, dict):
        action = node.get("action") or node.get("service")
        if isinstance(action, str) and action.startswith("rest_command."):
            found.append((action.split(".", 1)[1], node.get("data") or {}))
        for v in node.values():
            found += _calls(v)
    elif isinstance(node, list):
        for v in node:
            found += _calls(v)
    return found


def test_every_call_in_the_home_assistant_guide_is_a_request_pagecast_accepts():
    profiles = {}
    for block in _blocks("toml"):
        profiles.update(tomllib.loads(block).get("profiles", {}))
    assert {"cameras", "morning"} <= set(profiles)
    documents = [yaml.load(block, Loader=_Loader) for block in _blocks("yaml")]
    commands = {name: spec for d in documents for name, spec in (d.get("rest_command") or {}).items()}
    calls = [call for d in documents for call in _calls(d)]
    assert {name for name, _ in calls} == set(commands), "every rest_command is used, and only those"
    settings = Settings()
    paths = document("test", token=True)["paths"]
    for name, data in calls:
        spec = commands[name]
        path = "/" + spec["url"].rsplit("/", 1)[1]
        assert path in ("/start", "/stop") and spec["method"].upper() == "POST" and "secret" in spec["headers"]["authorization"]
        body = json.loads(_fill(spec["payload"], data))
        schema = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        errors = [e.message for e in jsonschema_rs.Draft202012Validator(schema).iter_errors(body)]
        assert not errors, (name, errors)
        if path == "/start":
            request = parse_start(body, settings, profiles)  # raises InvalidRequest/NotFound with the reason
            assert request.device == data["device"] and request.duration == data["duration"]
        else:
            assert parse_stop(body) != (None, None)
    assert len(calls) >= 3


def test_the_profiles_in_the_guide_look_right_on_a_tv():
    profiles = {}
    for block in _blocks("toml"):
        profiles.update(tomllib.loads(block).get("profiles", {}))
    morning = parse_start({"profile": "morning"}, Settings(), profiles)
    assert morning.appearance.kiosk and morning.appearance.theme == "dark" and morning.appearance.burn_in > 0
    assert parse_start({"profile": "cameras"}, Settings(), profiles).appearance.motion == "full"
