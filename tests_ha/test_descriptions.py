"""What Home Assistant reads about the integration holds together: every action field has a
translated name, every translation key the code raises exists, every quality scale rule is
answered."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from homeassistant.core import HomeAssistant
from homeassistant.helpers.service import async_get_all_descriptions
from homeassistant.setup import async_setup_component

from custom_components.pagecast.const import DOMAIN
from custom_components.pagecast.services import SHOW_SCHEMA, STOP_SCHEMA

PACKAGE = Path(__file__).resolve().parents[1] / "custom_components" / "pagecast"
STRINGS = json.loads((PACKAGE / "translations" / "en.json").read_text())
#: Home Assistant's rules (script/hassfest/quality_scale.py), Bronze to Platinum.
RULES = """action-setup appropriate-polling brands common-modules config-flow config-flow-test-coverage
dependency-transparency docs-actions docs-conditions docs-high-level-description docs-installation-instructions
docs-removal-instructions docs-triggers entity-event-setup entity-unique-id has-entity-name runtime-data
test-before-configure test-before-setup unique-config-entry action-exceptions config-entry-unloading
docs-configuration-parameters docs-installation-parameters entity-unavailable integration-owner
log-when-unavailable parallel-updates reauthentication-flow test-coverage devices diagnostics discovery
discovery-update-info docs-data-update docs-examples docs-known-limitations docs-supported-devices
docs-supported-functions docs-troubleshooting docs-use-cases dynamic-devices entity-category
entity-device-class entity-disabled-by-default entity-translations exception-translations icon-translations
reconfiguration-flow repair-issues stale-devices async-dependency inject-websession strict-typing""".split()


async def test_actions_are_described_with_every_field_they_take(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    descriptions = (await async_get_all_descriptions(hass))[DOMAIN]
    target_keys = {"entity_id", "device_id", "area_id", "floor_id", "label_id"}
    for service, schema in (("show", SHOW_SCHEMA), ("stop", STOP_SCHEMA)):
        taken = {str(key) for key in schema.schema} - target_keys
        assert set(descriptions[service]["fields"]) == taken, service
        assert descriptions[service]["target"]["entity"][0]["integration"] == "cast"
        translated = STRINGS["services"][service]["fields"]
        assert set(translated) == taken, service


def test_every_translation_key_the_code_uses_exists() -> None:
    code = "\n".join(p.read_text() for p in PACKAGE.glob("*.py"))
    used = set(re.findall(r'translation_key="([a-z_]+)"', code))
    issues = {m.lower() for m in re.findall(r"^ISSUE_[A-Z_]+: Final = \"([a-z_]+)\"", (PACKAGE / "const.py").read_text(), re.M)}
    assert used <= set(STRINGS["exceptions"]) | set(STRINGS["config"]["error"]), used - set(STRINGS["exceptions"])
    assert issues == set(STRINGS["issues"])
    errors = set(re.findall(r'"base": "([a-z_]+)"', code))
    aborts = set(re.findall(r'reason="([a-z_]+)"', code)) | {"already_configured", "reauth_successful", "reconfigure_successful"}
    assert errors <= set(STRINGS["config"]["error"]) and aborts <= set(STRINGS["config"]["abort"])
    icons = json.loads((PACKAGE / "icons.json").read_text())
    assert set(icons["services"]) == set(STRINGS["services"])
    assert {p: set(keys) for p, keys in icons["entity"].items()} == {p: set(keys) for p, keys in STRINGS["entity"].items()}


def test_every_step_field_has_a_data_description() -> None:
    for step_id, step in STRINGS["config"]["step"].items():
        assert set(step.get("data", {})) == set(step.get("data_description", {})), step_id


def test_the_quality_scale_answers_every_rule_with_a_reason_for_each_exemption() -> None:
    rules = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text())["rules"]
    assert set(rules) == set(RULES)
    for name, rule in rules.items():
        assert rule["status"] in ("done", "exempt", "todo"), name
        if rule["status"] != "done":
            assert rule.get("comment"), name
