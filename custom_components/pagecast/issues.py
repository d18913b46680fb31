"""Repair issues: pagecast unreachable for long, a version other than the integration's, a
dashboard that landed on Home Assistant's login page; each goes away once its cause does.
(Not named repairs.py: that is the platform Home Assistant loads for fixable issues' flows.)"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import DOMAIN, ISSUE_DASHBOARD_SIGNED_OUT, ISSUE_UNREACHABLE, ISSUE_VERSION_MISMATCH, LOGIN_FAILURE_MARK

_UNREACHABLE_SINCE = f"{DOMAIN}_unreachable_since"


def _since(hass: HomeAssistant) -> dict[str, datetime]:
    """When each entry's pagecast stopped answering: kept across setup retries, which make a
    new coordinator each time."""
    return hass.data.setdefault(_UNREACHABLE_SINCE, {})


@callback
def note_unreachable(hass: HomeAssistant, entry: ConfigEntry, url: str, after: timedelta) -> None:
    now = dt_util.utcnow()
    since = _since(hass).setdefault(entry.entry_id, now)
    if now - since >= after:
        ir.async_create_issue(
            hass, DOMAIN, f"{ISSUE_UNREACHABLE}_{entry.entry_id}", is_fixable=False, severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_UNREACHABLE, translation_placeholders={"url": url, "minutes": str(int(after.total_seconds() // 60))},
        )


@callback
def note_reachable(hass: HomeAssistant, entry: ConfigEntry) -> None:
    if _since(hass).pop(entry.entry_id, None) is not None:
        ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_UNREACHABLE}_{entry.entry_id}")


@callback
def check_version(hass: HomeAssistant, entry: ConfigEntry, url: str, service_version: str, integration_version: str) -> None:
    issue_id = f"{ISSUE_VERSION_MISMATCH}_{entry.entry_id}"
    if service_version and service_version != integration_version:
        ir.async_create_issue(
            hass, DOMAIN, issue_id, is_fixable=False, severity=ir.IssueSeverity.WARNING, translation_key=ISSUE_VERSION_MISMATCH,
            translation_placeholders={"service_version": service_version, "integration_version": integration_version, "url": url},
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def check_dashboards(hass: HomeAssistant, entry: ConfigEntry, sessions: list[dict[str, Any]], ours: dict[str, float]) -> None:
    """The newest dashboard session this integration started decides: failed on a sign-in
    page → an issue; live → none."""
    mine = [s for s in sessions if s.get("id") in ours]
    if not mine:
        return
    newest = max(mine, key=lambda s: ours[s["id"]])
    issue_id = f"{ISSUE_DASHBOARD_SIGNED_OUT}_{entry.entry_id}"
    if newest.get("state") == "failed" and LOGIN_FAILURE_MARK in str(newest.get("error") or ""):
        ir.async_create_issue(
            hass, DOMAIN, issue_id, is_fixable=False, severity=ir.IssueSeverity.ERROR, translation_key=ISSUE_DASHBOARD_SIGNED_OUT,
            translation_placeholders={"session_id": newest["id"], "error": str(newest.get("error"))},
        )
    elif newest.get("state") == "live":
        ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def clear(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """An entry removed takes its issues with it."""
    _since(hass).pop(entry.entry_id, None)
    for kind in (ISSUE_UNREACHABLE, ISSUE_VERSION_MISMATCH, ISSUE_DASHBOARD_SIGNED_OUT):
        ir.async_delete_issue(hass, DOMAIN, f"{kind}_{entry.entry_id}")
