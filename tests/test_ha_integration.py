"""The Home Assistant integration's own tests (tests_ha/), run in their Python 3.13 env
(.venv-ha, made by ops/install-ha): Home Assistant 2025.4.4 does not run on pagecast's Python."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HA_PYTHON = REPO / ".venv-ha" / "bin" / "python"
DEADLINE = 110


@pytest.mark.slow
@pytest.mark.xdist_group("home-assistant")
def test_home_assistant_integration_passes_its_tests_against_a_real_pagecast_and_tv():
    if not HA_PYTHON.exists():
        pytest.skip("no .venv-ha: run ops/install-ha (needs Python 3.13) to test the Home Assistant integration")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(HA_PYTHON), "-m", "pytest", "tests_ha", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)  # pytest then tears its fixtures down: their pagecast and TVs stop
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        pytest.fail(f"tests_ha did not finish within {DEADLINE} s:\n{output[-6000:]}")
    assert proc.returncode == 0, f"tests_ha failed (exit {proc.returncode}) after {time.monotonic() - started:.0f} s:\n{output[-8000:]}"
