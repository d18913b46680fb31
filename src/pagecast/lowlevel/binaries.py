"""Where the programs we run are, and where the pinned browser players are installed."""

from __future__ import annotations

import shutil
from pathlib import Path

#: The pinned players (npm packages in ``node_modules``), by the name a page loads them as.
PLAYER_FILES = {
    "hls.js": "hls.js/dist/hls.min.js",
    "shaka-player.js": "shaka-player/dist/shaka-player.compiled.js",
}


def find_binary(*names: str) -> str:
    """The first of ``names`` found on PATH (or as given, if absolute); else the first name."""
    return next((found for name in names if (found := shutil.which(name))), names[0])


def find_chromium() -> str:
    """Chromium's headless shell: Debian's binary itself (not its wrapper script, which forks
    it), else one on the PATH."""
    return find_binary("/usr/lib/chromium/chromium-headless-shell", "chromium-headless-shell", "chromium")


def find_players_dir() -> Path | None:
    """node_modules with the pinned players: next to the checkout, or in the working dir."""
    for base in (Path(__file__).resolve().parents[3], Path.cwd()):
        candidate = base / "node_modules"
        if (candidate / "hls.js").is_dir():
            return candidate
    return None


def player_file(name: str) -> Path | None:
    """The file of pinned player ``name`` (a key of PLAYER_FILES), if installed."""
    players = find_players_dir()
    if players is None or name not in PLAYER_FILES:
        return None
    return players / PLAYER_FILES[name]
