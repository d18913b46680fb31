"""This service's instance id: made once, kept in the state directory, so Home Assistant (and
anything else that discovers pagecast) knows the same pagecast after a restart, a new address
or a reinstalled container."""

from __future__ import annotations

import logging
import os
import re
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "instance_id"
_VALID = re.compile(r"[0-9a-f]{32}")


def default_state_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "pagecast"


def instance_id(state_dir: Path) -> str:
    """The id kept in ``state_dir``, made (atomically) on first use. A directory that cannot be
    written gives an id for this run only, with a warning that says what to fix."""
    path = state_dir / FILE
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    except OSError as exc:
        log.warning("cannot read %s (%s); set PAGECAST_STATE_DIR to a writable directory", path, exc.strerror)
        kept = ""
    if _VALID.fullmatch(kept):
        return kept
    if kept:
        log.warning("%s holds no instance id (%r); making a new one", path, kept[:40])
    new = uuid.uuid4().hex
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{FILE}.{os.getpid()}")
        scratch.write_text(new + "\n")
        os.replace(scratch, path)
    except OSError as exc:
        log.warning(
            "cannot keep the instance id in %s (%s): it changes at every start, and Home Assistant will see a new pagecast each time; "
            "set PAGECAST_STATE_DIR to a writable directory", state_dir, exc.strerror,
        )
    return new
