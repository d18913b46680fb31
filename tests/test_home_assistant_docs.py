"""Every Home Assistant example in the project is what Home Assistant would run, in today's
syntax, and what pagecast and its integration accept: the README, docs/home-assistant.md,
docs/configuration.md and the doorbell blueprint.

- each ``rest_command`` call, with its data filled into the payload as Home Assistant renders
  it, is a body POST /start or POST /stop accepts: by the API's document (GET /openapi.json)
  and by the service's own validation, with the docs' profiles;
- each ``pagecast.*`` action uses only fields the integration declares
  (custom_components/pagecast/services.yaml), with values its selectors allow, and targets
  Cast media players;
- the blueprint's ``!input``s are all declared, and an automation made from it is checked as
  the others are;
- no automation uses the old ``platform:``/``service:`` keys;
- and Home Assistant's own code (in .venv-ha, ops/install-ha) takes every automation, script,
  rest_command, the blueprint and each pagecast action's data."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jsonschema_rs
import pytest
import yaml

from pagecast.core.request import parse_start, parse_stop
from pagecast.core.settings import Settings
from pagecast.server.openapi import document

ROOT = Path(__file__).parents[1]
GUIDE = ROOT / "docs" / "home-assistant.md"
DOCS = [ROOT / "README.md", GUIDE, ROOT / "docs" / "configuration.md"]
BLUEPRINT = ROOT / "blueprints" / "automation" / "pagecast" / "doorbell.yaml"
SERVICES = ROOT / "custom_components" / "pagecast" / "services.yaml"
HA_PYTHON = ROOT / ".venv-ha" / "bin" / "python"


@dataclass(frozen=True)
class Input:
    """A blueprint's ``!input name``, as Home Assistant's YAML loader keeps it."""

    name: str


class _Loader(yaml.SafeLoader):
    """Home Assistant's tags: ``!secret`` and a blueprint's ``!input``."""


_Loader.add_constructor("!secret", lambda loader, node: f"<secret {loader.construct_scalar(node)}>")
_Loader.add_constructor("!input", lambda loader, node: Input(loader.construct_scalar(node)))


def _blocks(kind: str, doc: Path) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", doc.read_text(), re.S)


def _yaml_documents() -> list[tuple[str, Any]]:
    """Every YAML block of the docs, and the blueprint, named by where it is."""
    found = [(f"{doc.relative_to(ROOT)} block {i}", yaml.load(block, Loader=_Loader))
             for doc in DOCS for i, block in enumerate(_blocks("yaml", doc), 1)]
    return found + [(str(BLUEPRINT.relative_to(ROOT)), _blueprint())]


def _profiles() -> dict[str, dict]:
    """The docs' profiles; one name means one profile wherever it is shown."""
    profiles: dict[str, dict] = {}
    for doc in DOCS:
        for block in _blocks("toml", doc):
            for name, profile in tomllib.loads(block).get("profiles", {}).items():
                assert profiles.setdefault(name, profile) == profile, f"profile {name!r} differs in {doc.name}"
    return profiles


def _blueprint() -> dict:
    return yaml.load(BLUEPRINT.read_text(), Loader=_Loader)


def _walk(node):
    """Every mapping in a YAML tree."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _calls(node, domain: str) -> list[dict]:
    """Every ``action: <domain>.X`` step, anywhere in a YAML tree."""
    return [n for n in _walk(node) if isinstance(n.get("action"), str) and n["action"].startswith(domain + ".")]


def _fill(template: str, data: dict) -> str:
    """A payload with an action's data in it, as Home Assistant's rest_command renders it:
    a Jinja template rendered to text (``parse_result=False``), so a bare ``{{ flag }}`` is
    Python's ``False``, not JSON, unless the guide says ``| tojson``."""
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(**data)


def _instantiate(blueprint: dict, inputs: dict) -> dict:
    """The automation a blueprint makes with these inputs (defaults for the rest), as Home
    Assistant substitutes each ``!input``."""
    declared = blueprint["blueprint"]["input"]

    def sub(node):
        if isinstance(node, Input):
            return inputs[node.name] if node.name in inputs else declared[node.name]["default"]
        if isinstance(node, dict):
            return {k: sub(v) for k, v in node.items() if k != "blueprint"}
        if isinstance(node, list):
            return [sub(v) for v in node]
        return node

    return sub(blueprint)


def _automations(*, made_from_blueprint: bool = True) -> list[tuple[str, dict]]:
    """Every automation in the docs; one that uses the blueprint as the blueprint makes it
    (or left out, when it is checked elsewhere)."""
    found = []
    for where, d in _yaml_documents():
        for automation in (d.get("automation") or []) if isinstance(d, dict) else []:
            if "use_blueprint" in automation:
                use = automation["use_blueprint"]
                assert use["path"] == "pagecast/doorbell.yaml", (where, use["path"])
                missing = {k for k, spec in _blueprint()["blueprint"]["input"].items() if "default" not in spec} - set(use.get("input") or {})
                assert not missing, (where, f"the blueprint needs {sorted(missing)}")
                if not made_from_blueprint:
                    continue
                automation = {**_instantiate(_blueprint(), use.get("input") or {}), "alias": automation["alias"]}
            found.append((where, automation))
    return found


def _services() -> dict[str, dict]:
    assert SERVICES.exists(), "the integration declares its actions in custom_components/pagecast/services.yaml"
    return yaml.safe_load(SERVICES.read_text())


def _fields(service: dict) -> dict[str, dict]:
    """A service's fields, with those inside collapsible sections brought up."""
    fields = {}
    for name, spec in (service.get("fields") or {}).items():
        spec = spec or {}
        if "fields" in spec and "selector" not in spec:
            fields.update(_fields(spec))
        else:
            fields[name] = spec
    return fields


def _selector_allows(selector: dict, value: Any) -> bool:
    """Whether a value fits a services.yaml selector (a template is checked by Home Assistant
    when it runs)."""
    if isinstance(value, str) and "{{" in value:
        return True
    kind, spec = next(iter((selector or {"text": None}).items()))
    spec = spec or {}
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and spec.get("min", value) <= value <= spec.get("max", value)
    if kind == "select":
        options = [o["value"] if isinstance(o, dict) else o for o in spec.get("options", [])]
        return value in options
    if kind == "text":
        return isinstance(value, str) or (spec.get("multiple") and isinstance(value, list) and all(isinstance(v, str) for v in value))
    return True


def test_every_rest_command_call_in_the_docs_is_a_request_pagecast_accepts():
    profiles = _profiles()
    documents = [d for _, d in _yaml_documents() if isinstance(d, dict)]
    commands = {name: spec for d in documents for name, spec in (d.get("rest_command") or {}).items()}
    calls = [(c["action"].split(".", 1)[1], c.get("data") or {}) for d in documents for c in _calls(d, "rest_command")]
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


def test_every_pagecast_action_in_the_docs_uses_only_what_the_integration_declares():
    services = _services()
    steps = [(where, step) for where, d in _yaml_documents() for step in _calls(d, "pagecast")]
    made = [a for a in _automations() if a not in _automations(made_from_blueprint=False)]
    assert made, "the guide makes an automation from the blueprint"
    steps += [(f"{where}: made from the blueprint", step) for where, a in made for step in _calls(a, "pagecast")]
    assert {step["action"] for _, step in steps} >= {"pagecast.show", "pagecast.stop"}
    for where, step in steps:
        name = step["action"].split(".", 1)[1]
        assert name in services, (where, f"{step['action']} is not an action of the integration")
        fields = _fields(services[name])
        data = step.get("data") or {}
        unknown = set(data) - set(fields)
        assert not unknown, (where, f"{step['action']} has no field {sorted(unknown)}")
        missing = {f for f, spec in fields.items() if spec.get("required")} - set(data)
        assert not missing, (where, f"{step['action']} needs {sorted(missing)}")
        for key, value in data.items():
            if not isinstance(value, Input):
                assert _selector_allows(fields[key].get("selector"), value), (where, key, value)
        target = step.get("target") or {}
        assert set(target) <= {"entity_id"}, (where, target)
        entity_ids = target.get("entity_id", [])
        if not isinstance(entity_ids, list):
            entity_ids = [entity_ids]
        assert all(isinstance(e, Input) or e.startswith("media_player.") for e in entity_ids), (where, entity_ids)
        if name == "show":
            assert entity_ids or "device" in data, (where, "a show names its TV")
            assert ("dashboard" in data) != ("url" in data), (where, "a show gives a dashboard or a url")
        declared = (services[name].get("target") or {}).get("entity") or {}
        for entity_filter in declared if isinstance(declared, list) else [declared]:
            assert entity_filter.get("domain") in (None, "media_player", ["media_player"]), entity_filter


def test_the_guide_explains_every_field_of_every_action():
    """Each action has its own section in the guide, naming every field services.yaml declares."""
    guide = GUIDE.read_text()
    for name, service in _services().items():
        section = re.search(rf"^### `pagecast\.{name}`\n(.*?)(?=^##)", guide, re.M | re.S)
        assert section, f"docs/home-assistant.md has no section for pagecast.{name}"
        missing = [f for f in _fields(service) if f"`{f}`" not in section.group(1)]
        assert not missing, f"pagecast.{name}'s section does not explain {missing}"


def test_the_doorbell_blueprint_declares_every_input_it_uses_and_picks_a_cast_tv():
    blueprint = _blueprint()
    meta = blueprint["blueprint"]
    assert meta["domain"] == "automation" and meta["name"]
    assert meta["homeassistant"]["min_version"] == json.loads((ROOT / "hacs.json").read_text())["homeassistant"], "the integration's own minimum"
    declared = meta["input"]
    used = {n.name for n in _inputs(blueprint)}
    assert used == set(declared), f"used but not declared: {used - set(declared)}; declared but not used: {set(declared) - used}"
    for name, spec in declared.items():
        assert spec["name"] and spec["description"] and spec["selector"], name
    assert declared["doorbell"]["selector"]["entity"]["filter"] == [{"domain": "binary_sensor"}]
    assert declared["tv"]["selector"]["entity"]["filter"] == [{"integration": "cast", "domain": "media_player"}]
    assert declared["dashboard"]["default"] == "lovelace/cameras"
    assert declared["duration"]["default"] == 60
    assert declared["quiet"]["default"] is False and "boolean" in declared["quiet"]["selector"]
    (show,) = _calls(blueprint, "pagecast")
    assert show["action"] == "pagecast.show" and show["target"] == {"entity_id": Input("tv")}
    assert show["data"]["quiet"] == Input("quiet") and show["data"]["if_idle"] is False


def _inputs(node) -> list[Input]:
    if isinstance(node, Input):
        return [node]
    if isinstance(node, dict):
        return [i for k, v in node.items() if k != "blueprint" for i in _inputs(v)]
    if isinstance(node, list):
        return [i for v in node for i in _inputs(v)]
    return []


def test_every_doorbell_example_is_the_same_doorbell():
    """The doorbell at binary_sensor.doorbell puts the camera dashboard on the living-room TV
    for 60 s, over what is playing: by the action, by the blueprint and by rest_command."""
    profiles = _profiles()
    doorbells = [(where, a) for where, a in _automations() if a["alias"].startswith("Doorbell")]
    assert {where.split(" ")[0] for where, _ in doorbells} >= {"README.md", "docs/home-assistant.md"}
    assert len(doorbells) >= 4, "the action (README and guide), the blueprint, rest_command"
    for where, automation in doorbells:
        assert automation["alias"] == "Doorbell → cameras on the living-room TV", where
        (trigger,) = automation["triggers"]
        assert trigger == {"trigger": "state", "entity_id": "binary_sensor.doorbell", "to": "on"}, where
        (step,) = automation["actions"]
        data = step["data"]
        assert data["duration"] == 60 and data["if_idle"] is False, where
        if step["action"] == "pagecast.show":
            assert step["target"] == {"entity_id": "media_player.living_room_tv"} and data["dashboard"] == "lovelace/cameras", where
        else:
            assert step["action"] == "rest_command.pagecast_start" and data["device"] == "Living Room TV", where
            assert profiles[data["profile"]]["url"].endswith("/lovelace/cameras"), where


def test_no_example_uses_the_old_trigger_and_service_keys():
    """Anywhere in the project's docs, not only the three above."""
    everywhere = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "addon").glob("*.md"))]
    documents = [(f"{doc.relative_to(ROOT)} block {i}", yaml.load(block, Loader=_Loader))
                 for doc in everywhere for i, block in enumerate(_blocks("yaml", doc), 1)]
    for where, d in documents + [(str(BLUEPRINT.relative_to(ROOT)), _blueprint())]:
        for node in _walk(d):
            assert "service" not in node, (where, "action:, not service:", node)
            for key in ("triggers", "trigger", "wait_for_trigger"):
                steps = node.get(key)
                for step in steps if isinstance(steps, list) else []:
                    assert "platform" not in step, (where, "trigger:, not platform:", step)
        for automation in (d.get("automation") or []) if isinstance(d, dict) else []:
            assert not {"trigger", "condition", "action"} & set(automation), (where, "triggers:/conditions:/actions:", automation.get("alias"))
    blueprint = _blueprint()
    assert {"triggers", "actions"} <= set(blueprint) and not {"trigger", "action"} & set(blueprint)


def test_wherever_a_profile_is_used_the_docs_say_it_needs_a_profiles_file():
    """Each section (## heading) with a profile in its examples names PAGECAST_PROFILES_FILE."""
    sections = [s for doc in DOCS for s in re.split(r"^(?=## )", doc.read_text(), flags=re.M)]
    using = [s for s in sections if re.search(r'```(?:yaml|toml)\n[^`]*(?:"profile":|\bprofile: \w|\[profiles\.)', s)]
    assert len(using) >= 2
    for section in using:
        assert "PAGECAST_PROFILES_FILE" in section, f"{section.splitlines()[0]!r} uses a profile but does not say it needs PAGECAST_PROFILES_FILE"


def test_the_profiles_in_the_docs_look_right_on_a_tv():
    profiles = _profiles()
    doorbell = parse_start({"profile": "doorbell"}, Settings(), profiles)
    assert doorbell.mode == "hls", "TVs play HLS"
    assert doorbell.duration == 60 and doorbell.appearance.kiosk and doorbell.appearance.motion == "full"
    morning = parse_start({"profile": "morning", "device": "Kitchen display"}, Settings(), profiles)
    assert morning.mode == "hls" and morning.quality.name == "nest-hub" and morning.quiet
    assert morning.appearance.kiosk and morning.appearance.theme == "dark" and morning.appearance.burn_in > 0


#: Run by Home Assistant's own Python: its config validation of automations (a blueprint's
#: loaded from a config folder and filled in by Home Assistant itself; trigger and condition
#: platforms looked up) and scripts, rest_command's schema, and the integration's own schemas
#: for the pagecast actions each automation and script calls. It walks the YAML with this
#: module's own ``_walk``.
HA_CHECK = inspect.getsource(_walk) + r"""
import asyncio, json, os, shutil, sys, tempfile
sys.path.insert(0, ".")
from homeassistant import loader
from homeassistant.core import HomeAssistant
from homeassistant.helpers import frame


async def main(docs, blueprint, config_dir):
    os.makedirs(f"{config_dir}/blueprints/automation/pagecast")
    shutil.copy(blueprint, f"{config_dir}/blueprints/automation/pagecast/doorbell.yaml")
    hass = HomeAssistant(config_dir)
    frame.async_setup(hass)
    loader.async_setup(hass)
    from homeassistant.components.automation.config import async_validate_config_item as automation
    from homeassistant.components.rest_command import CONFIG_SCHEMA as REST_COMMAND
    from homeassistant.components.script.config import async_validate_config_item as script
    from custom_components.pagecast import services
    errors, checked = [], {"automation": 0, "script": 0, "rest_command": 0, "pagecast": 0}

    async def check(where, kind, validate, config):
        try:
            valid = await validate(config)
        except Exception as exc:
            errors.append(f"{where}: {kind}: {type(exc).__name__}: {exc}")
            return
        if getattr(valid, "validation_error", None):
            errors.append(f"{where}: {kind}: {valid.validation_error}")
            return
        checked[kind] += 1
        for step in _walk(dict(valid) if kind in ("automation", "script") else {}):
            action = step.get("action")
            if isinstance(action, str) and action.startswith("pagecast."):
                schema = getattr(services, action.split(".")[1].upper() + "_SCHEMA")
                await check(where, "pagecast", lambda c: asyncio.sleep(0, schema(c)), {**(step.get("target") or {}), **(step.get("data") or {})})

    for where, doc in docs:
        for i, config in enumerate(doc.get("automation") or []):
            await check(where, "automation", lambda c: automation(hass, str(i), c), config)
        for name, config in (doc.get("script") or {}).items():
            await check(where, "script", lambda c: script(hass, name, c), config)
        if "rest_command" in doc:
            await check(where, "rest_command", lambda c: asyncio.sleep(0, REST_COMMAND(c)), {"rest_command": doc["rest_command"]})
    await hass.async_stop(force=True)
    print(json.dumps({"errors": errors, "checked": checked}))


with tempfile.TemporaryDirectory() as config_dir:
    asyncio.run(main(json.load(sys.stdin), sys.argv[1], config_dir))
"""


@pytest.mark.skipif(not HA_PYTHON.exists(), reason="Home Assistant is not installed: ops/install-ha makes .venv-ha")
def test_home_assistant_itself_accepts_every_example():
    docs = [(where, d) for where, d in _yaml_documents()[:-1] if isinstance(d, dict)]
    run = subprocess.run([str(HA_PYTHON), "-c", HA_CHECK, str(BLUEPRINT)], input=json.dumps(docs), cwd=ROOT,
                         capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert not answer["errors"], answer["errors"]
    checked = answer["checked"]
    assert checked["automation"] >= 5 and checked["script"] >= 3 and checked["rest_command"] >= 1 and checked["pagecast"] >= 6, checked
