"""The layers of docs/architecture.md hold (``lint-imports``), and each contract bites: a scratch
import that breaks it, in a copy of the package, makes ``lint-imports`` name that contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

#: contract id → (file in the package, line to add): each line breaks that contract.
VIOLATIONS = {
    "layers": ("core/_scratch.py", "from pagecast.server import errors\n"),
    "pure-core": ("core/_scratch.py", "import socket\n"),
    "core-reads-nothing": ("core/_scratch.py", "import os\n"),
    "neutral-lowlevel": ("lowlevel/_scratch.py", "from pagecast.core import errors\n"),
    "independent-virtual-tv": ("virtual_tv/_scratch.py", "from pagecast.core import settings\n"),
    "service-without-virtual-tv": ("server/_scratch.py", "import pagecast.virtual_tv\n"),
    "independent-actors": ("session/render.py", "from . import cast\n"),
}


def lint(src: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=src, env=env, capture_output=True, text=True, timeout=60,
    )


def contracts() -> dict[str, str]:
    import tomllib

    return {c["id"]: c["name"] for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]}


def test_the_package_keeps_every_contract():
    result = lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(VIOLATIONS)} kept, 0 broken" in result.stdout


def test_every_contract_has_a_violation_below():
    assert set(contracts()) == set(VIOLATIONS)


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_breaking_a_contract_fails_lint_imports(contract, tmp_path):
    shutil.copytree(ROOT / "src" / "pagecast", tmp_path / "pagecast", ignore=shutil.ignore_patterns("__pycache__", "static"))
    path, line = VIOLATIONS[contract]
    with open(tmp_path / "pagecast" / path, "a") as f:
        f.write(line)
    result = lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "1 broken" in result.stdout, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert broken.splitlines()[3] == contracts()[contract], broken
