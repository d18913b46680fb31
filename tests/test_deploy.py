"""The Docker image, compose example and deployment docs agree with the code (no Docker needed)."""

import dataclasses
import re
import subprocess
from pathlib import Path

from pagecast.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = (ROOT / "ops" / "docker-compose.yml").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def compose_lines() -> list[str]:
    return [
        line
        for line in COMPOSE.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_installs_through_ops_install():
    runs = [args for kw, args in instructions(DOCKERFILE) if kw == "RUN"]
    assert any("ops/install --runtime" in r for r in runs)
    # The only package the Dockerfile names itself is tini (the init); everything else comes from
    # ops/install, which CI runs too.
    for r in runs:
        for m in re.finditer(r"apt-get install ([^&;]*)", r):
            packages = [p for p in m.group(1).split() if not p.startswith("-")]
            assert packages == ["tini"], r


def test_dockerfile_base_is_an_argument_defaulting_to_bookworm_slim():
    ins = instructions(DOCKERFILE)
    assert ins[0] == ("ARG", "BASE_IMAGE=debian:bookworm-slim")
    assert ("FROM", "${BASE_IMAGE}") in ins


def test_dockerfile_runs_as_non_root_under_tini_with_healthcheck_and_sigterm():
    ins = instructions(DOCKERFILE)
    users = [args for kw, args in ins if kw == "USER"]
    assert users and users[-1] not in ("root", "0")
    useradd = next(args for kw, args in ins if kw == "RUN" and "useradd" in args)
    assert re.search(r"--groups\s+video,render", useradd)
    entry = next(args for kw, args in ins if kw == "ENTRYPOINT")
    assert entry.startswith('["/usr/bin/tini", "--"')
    health = next(args for kw, args in ins if kw == "HEALTHCHECK")
    assert "/health" in health
    assert ("STOPSIGNAL", "SIGTERM") in ins


def test_dockerignore_keeps_local_state_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "node_modules"} <= ignored


def test_compose_uses_host_networking_dri_and_a_stop_grace_longer_than_shutdown():
    lines = compose_lines()
    assert any(re.fullmatch(r"\s*network_mode:\s*host", line) for line in lines)
    assert any(re.fullmatch(r"\s*-\s*/dev/dri:/dev/dri", line) for line in lines)
    assert any(re.fullmatch(r"\s*group_add:", line) for line in lines)
    assert any(re.fullmatch(r"\s*restart:\s*unless-stopped", line) for line in lines)
    grace = next(
        re.search(r"(\d+)s", line).group(1)
        for line in lines
        if "stop_grace_period" in line
    )
    assert int(grace) > Settings.__dataclass_fields__["shutdown_timeout"].default


def test_compose_is_plain_block_yaml():
    # PyYAML is not installed; check the shape textually: spaces only, two-space nesting, and
    # every "key:" line either a scalar, a block opener, or a list item.
    for number, line in enumerate(COMPOSE.splitlines(), 1):
        assert "\t" not in line, number
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, (number, line)
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            assert re.match(r"(- |[A-Za-z_][\w.-]*:( |$))", stripped), (number, line)


def test_ops_install_lists_the_va_drivers():
    out = subprocess.run(
        [str(ROOT / "ops" / "install"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = subprocess.run(
        [str(ROOT / "ops" / "install"), "--list", "--runtime"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for pkg in ("mesa-va-drivers", "vainfo"):
        assert pkg in out and pkg in listed
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if arch == "amd64":
        for pkg in ("intel-media-va-driver", "i965-va-driver"):
            assert pkg in listed
    # The runtime set leaves out the test browsers.
    assert "chromium" not in listed and "chromium-headless-shell" in listed


def test_every_pagecast_variable_in_compose_and_docs_is_a_setting():
    known = {"PAGECAST_" + f.name.upper() for f in dataclasses.fields(Settings)}
    texts = {
        "ops/docker-compose.yml": COMPOSE,
        "Dockerfile": DOCKERFILE,
        "ops/pagecast.service": (ROOT / "ops" / "pagecast.service").read_text(),
        "docs/deployment.md": (ROOT / "docs" / "deployment.md").read_text(),
        "docs/hardware.md": (ROOT / "docs" / "hardware.md").read_text(),
        "docs/home-assistant.md": (ROOT / "docs" / "home-assistant.md").read_text(),
    }
    for name, text in texts.items():
        used = set(re.findall(r"PAGECAST_[A-Z0-9_]+", text))
        assert used, name
        assert used <= known, (name, sorted(used - known))


def test_scripts_parse():
    for script in ("install", "container", "run", "test"):
        subprocess.run(["bash", "-n", str(ROOT / "ops" / script)], check=True)


def test_image_takes_only_the_player_files_pagecast_serves_and_installs_no_node():
    from pagecast.lowlevel.binaries import PLAYER_FILES

    *_, players, final = re.split(r"^FROM ", DOCKERFILE, flags=re.M)
    for path in PLAYER_FILES.values():
        assert path in players, path
    runs = [args for kw, args in instructions("FROM " + final) if kw == "RUN"]
    installs = [r for r in runs if "ops/install" in r]
    assert any("--only=system" in r for r in installs) and any("--only=python" in r for r in installs)
    assert not any("--only=players" in r for r in installs)
    assert ("COPY", "--from=players /players/node_modules ./node_modules") in instructions("FROM " + final)
