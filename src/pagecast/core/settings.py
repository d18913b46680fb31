"""One source of truth for configuration: a typed object built from ``PAGECAST_*`` variables,
then CLI flags. Every field is documented in ``docs/configuration.md`` (a test checks it).

Pure: the variables come in as a mapping, and what depends on the machine (where Chromium is,
whether we run as root, the temp dir) is found where it is used, in ``session/`` and ``server/``;
``pagecast settings`` prints the documentation's table."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message says which and why."""


@dataclass(frozen=True)
class Quality:
    """The page's picture: the viewport equals ``width``×``height`` pixels exactly. ``rotate``:
    how far the TV is turned clockwise (0, 90, 270); the video is the picture turned back,
    so a page drawn upright shows upright on a TV on its side. ``device_scale_factor``: the
    preset's CSS pixel ratio, or None for the setting's."""

    name: str
    width: int
    height: int
    fps: int
    bitrate_kbps: int
    segment_duration: float
    device_scale_factor: float | None = None
    rotate: int = 0
    screen: str = ""  # what the preset is for

    @property
    def output(self) -> tuple[int, int]:
        """The video's size: the page's, turned with the TV."""
        return (self.height, self.width) if self.rotate in (90, 270) else (self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


ROTATIONS = (0, 90, 270)

PRESETS: dict[str, Quality] = {
    "1080p": Quality("1080p", 1920, 1080, 30, 6000, 1.0, screen="Full HD TVs, Chromecast, Google TV"),
    "720p": Quality("720p", 1280, 720, 30, 3500, 1.0, screen="HD TVs, older Chromecasts, weak Wi-Fi"),
    "low-latency": Quality("low-latency", 1280, 720, 30, 3000, 0.5, screen="720p with half-second segments: the shortest delay in HLS"),
    "nest-hub": Quality("nest-hub", 1024, 600, 30, 2500, 1.0, screen="Google Nest Hub (7-inch, 1024×600)"),
    "nest-hub-max": Quality("nest-hub-max", 1280, 800, 30, 3500, 1.0, screen="Google Nest Hub Max (10-inch, 1280×800)"),
    "4k": Quality("4k", 3840, 2160, 30, 16000, 1.0, device_scale_factor=2.0,
                  screen="4K TVs: a 1080p layout drawn at twice the pixels, so text is sharp (four times the capture cost of 1080p)"),
    "portrait": Quality("portrait", 1080, 1920, 30, 6000, 1.0, rotate=90,
                        screen="a 1080p TV mounted on its side, turned a quarter clockwise (its left edge at the top): the page is laid out 1080×1920"),
}


#: Frames a second a stream may have, for every check of it (requests, settings, the renderer).
FPS_RANGE = (1, 60)


@dataclass(frozen=True)
class Settings:
    """Service configuration. Field help strings are the documentation's source."""

    host: str = field(default="0.0.0.0", metadata={"help": "Address the HTTP server listens on."})
    port: int = field(default=8000, metadata={"help": "Port of the HTTP server (control API, streams, watch pages)."})
    public_url: str = field(
        default="",
        metadata={"help": "Base URL that TVs and browsers use to reach this server, e.g. `http://192.168.1.5:8000`. Empty: the address of the first interface that is up and is neither loopback nor a container or VM bridge (`docker0`, `br-…`, `veth…`, `virbr…`), and `port`; the log says at start which URL TVs will fetch, and warns when they cannot reach it."},
    )
    quality: str = field(default="1080p", metadata={"help": "Default quality preset: " + ", ".join(f"`{name}`" for name in PRESETS) + "."})
    mode: str = field(default="hls", metadata={"help": "Default stream mode: `hls` (live HLS, fMP4 segments) or `fmp4` (low-latency progressive fragmented MP4)."})
    device_scale_factor: float = field(default=1.0, metadata={"help": "Default CSS pixel ratio: 2 renders a 960×540 CSS layout into 1920×1080 pixels."})
    playlist_window: float = field(default=40.0, metadata={"help": "Seconds of segments listed in the live HLS playlist (at least 40 is recommended)."})
    hold_back: float = field(
        default=0.0,
        metadata={"help": "Seconds advertised as `EXT-X-SERVER-CONTROL:HOLD-BACK`: how far behind the live edge hls.js and Shaka (also as a Cast receiver's engine) play. 0: three target durations (3 s), RFC 8216's minimum; without it, a player that joins a young stream sits at its live edge and stalls at every segment."},
    )
    motion: str = field(
        default="reduce",
        metadata={"help": "Default `motion` of a page: `reduce` (the page is told its viewer prefers reduced motion, and its CSS transitions and animations end in the frame they start: a dashboard's change is one captured frame, not twenty) or `full` (the page's own pace). Video, canvas and script-timed drawing keep their pace either way."},
    )
    burn_in_period: float = field(
        default=180.0,
        metadata={"help": "Seconds between the moves of a session's burn-in protection (`burn_in: true`): the page shifts by 2 px to the next of nine places, one changed frame per move."},
    )
    capture_fps: int = field(
        default=15,
        metadata={"help": "Default `capture_fps`: most frames a second taken from a page that keeps changing (a camera tile, an animation), at most the stream's fps. A page that changes now and then is captured at each change, whatever this says; the stream keeps its own frame rate."},
    )
    jpeg_quality: int = field(default=90, metadata={"help": "JPEG quality (1–100) of captured frames handed from Chromium to FFmpeg."})
    x264_preset: str = field(default="ultrafast", metadata={"help": "libx264 preset used by the encoder. `ultrafast` costs about a third less CPU per frame than `veryfast` (docs/benchmark.md); a dashboard is mostly unchanged blocks, which every preset codes as skips."})
    load_timeout: float = field(default=30.0, metadata={"help": "Seconds a page may take to load before its session fails."})
    login_paths: tuple[str, ...] = field(
        default=("/auth/authorize", "/login"),
        metadata={"help": "Comma-separated URL paths that mean 'landed on a login screen' (Home Assistant: `/auth/authorize`); a session that lands there fails with a credentials error."},
    )
    chromium: str = field(
        default="",
        metadata={"help": "Path to Chromium's headless shell (empty: `/usr/lib/chromium/chromium-headless-shell`, else `chromium-headless-shell` or `chromium` on the PATH) (Debian package `chromium-headless-shell`), which supports begin-frame control. Give the binary itself, not a wrapper script that forks it (Debian's `/usr/bin/chromium-headless-shell`), or a SIGKILL of pagecast cannot take Chromium down with it."},
    )
    chromium_sandbox: bool | None = field(
        default=None,
        metadata={"help": "Run Chromium with its sandbox (true/false). Empty: on, except when running as root (Chromium refuses to sandbox as root)."},
    )
    ffmpeg: str = field(default="ffmpeg", metadata={"help": "Path to the FFmpeg binary (`ffmpeg`: the one on the PATH)."})
    encoder: str = field(
        default="auto",
        metadata={"help": "H.264 encoder: `auto` (the best that passes a test encode at startup, in the order `h264_nvenc`, `h264_qsv`, `h264_vaapi`, `h264_v4l2m2m`, then `libx264`), one of those names (short forms `nvenc`, `qsv`, `vaapi`, `v4l2m2m`, `x264` too) to force it, or a comma-separated order to try. A forced encoder that fails its test encode is replaced by `libx264`, with a warning and a note in `/health`; one that fails during a session is replaced by `libx264` within that session."},
    )
    vaapi_device: str = field(default="/dev/dri/renderD128", metadata={"help": "DRM render node used by the `h264_vaapi` and `h264_qsv` encoders (a second GPU is `/dev/dri/renderD129`)."})
    renderer_hang_timeout: float = field(
        default=3.0,
        metadata={"help": "Seconds one frame may take Chromium once the page runs before the renderer counts as hung: Chromium is killed and the page reloaded in a new one, inside its session."},
    )
    renderer_restarts: int = field(
        default=5,
        metadata={"help": "Most times a session's Chromium is replaced (it crashed or hung) within `renderer_restart_window`; one more fails the session, naming the last reason."},
    )
    renderer_restart_window: float = field(default=300.0, metadata={"help": "Seconds over which `renderer_restarts` are counted."})
    renderer_max_memory_mb: int = field(
        default=1500,
        metadata={"help": "Memory (MB; proportional set size, summed over a session's Chromium processes) at which a session's Chromium is replaced make-before-break: a new one loads the page while the old one keeps streaming and takes over once it has a picture, so the stream sees no gap. Counted only once a Chromium has run 2 minutes (a page that is simply this big is not replaced over and over). Not a crash: outside `renderer_restarts`. 0: never."},
    )
    renderer_max_age: float = field(
        default=86400.0,
        metadata={"help": "Seconds after which a session's Chromium is replaced the same way, whatever its memory: pages leak over days. 0: never."},
    )
    renderer_check_interval: float = field(
        default=5.0,
        metadata={"help": "Seconds between checks of a session's Chromium against `renderer_max_memory_mb` and `renderer_max_age` (its `memory_mb` in `/status` is at most this old). A replacement that fails to load is retried after 30 s, then 1, 2, 4… up to 10 minutes."},
    )
    encoder_restarts: int = field(
        default=3,
        metadata={"help": "Most times a session's FFmpeg is restarted (it died or hung) within `encoder_restart_window`; one more fails the session, naming the last reason."},
    )
    encoder_restart_window: float = field(default=60.0, metadata={"help": "Seconds over which `encoder_restarts` are counted."})
    encoder_hang_timeout: float = field(
        default=3.0,
        metadata={"help": "Seconds FFmpeg may take frames in without writing any output before it counts as hung: it is killed and restarted inside its session, as if it had died (the stream goes on with a discontinuity). It writes a segment every second or less, and a TV holds about three: much longer and the TV freezes. 0: never."},
    )
    max_sessions: int = field(default=4, metadata={"help": "Most concurrent sessions; a further /start gets 429."})
    api_token: str = field(
        default="",
        repr=False,
        metadata={"help": "If set, the control endpoints (`/start`, `/stop`, `/status`, `/sessions/<id>`, `/devices`) need `Authorization: Bearer <token>`. Streams, watch pages and `/health` stay open: TVs cannot send headers, and session ids are unguessable."},
    )
    max_body_bytes: int = field(default=65536, metadata={"help": "Largest accepted request body of the control API, in bytes."})
    profiles_file: str = field(
        default="",
        metadata={"help": "TOML or JSON file of named profiles (`{\"profile\": \"doorbell\"}` in /start expands to its url, auth, quality, mode, device, duration)."},
    )
    runtime_dir: str = field(
        default="",
        metadata={"help": "Directory for Chromium profiles of running sessions (removed when each session ends). Empty: a `pagecast` folder in the system temp dir."},
    )
    state_dir: str = field(
        default="",
        metadata={"help": "Directory for what pagecast keeps between runs: its instance id (`GET /health`, the mDNS announcement), by which Home Assistant knows it after a restart or a new address. Empty: `$XDG_STATE_HOME/pagecast`, else `~/.local/state/pagecast`."},
    )
    announce: bool = field(
        default=True,
        metadata={"help": "Announce this service on the LAN by mDNS as `_pagecast._tcp.local.` (its instance id, version, port and API base path in the TXT record), so Home Assistant discovers it. Needs host networking in Docker."},
    )
    cast_hosts: tuple[str, ...] = field(
        default=(),
        metadata={"help": "Comma-separated addresses of Cast devices to use without mDNS (which does not cross Docker bridge networks, VLANs or WSL2), e.g. `192.168.1.20,192.168.1.21`."},
    )
    mdns: bool = field(default=True, metadata={"help": "Discover Cast devices by mDNS (needs host networking in Docker)."})
    default_device: str = field(default="", metadata={"help": "Device (friendly name, uuid or address) a /start without `device` casts to. Empty: such a session only streams."})
    cast_connect_timeout: float = field(default=5.0, metadata={"help": "Seconds to wait for a Cast device to accept a connection and report its status."})
    cast_liveness_interval: float = field(default=1.5, metadata={"help": "Seconds between the status requests that tell a dead Cast device from a quiet one (pychromecast's own heartbeat takes ~20 s). 0: off."})
    cast_liveness_timeout: float = field(default=3.0, metadata={"help": "Seconds without an answer to a status request after which a Cast device counts as lost and is reconnected."})
    cast_backoff_max: float = field(default=30.0, metadata={"help": "Longest wait between reconnection attempts to a lost Cast device (the wait doubles from 1 s)."})
    cast_give_up: float = field(default=60.0, metadata={"help": "Seconds a session without `keep_on` waits for a lost Cast device to come back before it ends."})
    cast_stuck_timeout: float = field(
        default=10.0,
        metadata={"help": "Seconds a TV's player may stay BUFFERING our stream (after it had played) before the stream is loaded on it again, within the re-cast budget (3 a minute). 0: never."},
    )
    cast_restore_timeout: float = field(default=5.0, metadata={"help": "Seconds allowed, when a session ends, for giving the TV back (relaunching what it showed before, restoring its volume)."})
    log_level: str = field(default="info", metadata={"help": "Log level: debug, info, warning, error."})
    log_format: str = field(default="text", metadata={"help": "Log format: `text` or `json` (one JSON object per line)."})
    shutdown_timeout: float = field(default=8.0, metadata={"help": "Seconds allowed for a graceful shutdown on SIGTERM/SIGINT before children are killed."})

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> "Settings":
        """Build from ``PAGECAST_<FIELD>`` variables in ``env`` (the caller's environment, or a
        test's), then keyword overrides (CLI flags)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = env_name(f.name)
            if key in env:
                values[f.name] = _coerce(f, env[key], key)
        for name, value in overrides.items():
            if value is not None:
                f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
                if f is None:
                    raise ConfigError(f"unknown setting {name!r}")
                values[name] = _coerce(f, value, flag_name(name)) if isinstance(value, str) else value
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.quality not in PRESETS:
            raise ConfigError(f"PAGECAST_QUALITY={self.quality!r}: use one of {', '.join(PRESETS)}")
        if self.mode not in ("hls", "fmp4"):
            raise ConfigError(f"PAGECAST_MODE={self.mode!r}: use 'hls' or 'fmp4'")
        if self.motion not in ("reduce", "full"):
            raise ConfigError(f"PAGECAST_MOTION={self.motion!r}: use 'reduce' or 'full'")
        if self.burn_in_period < 1:
            raise ConfigError("PAGECAST_BURN_IN_PERIOD must be at least 1 second")
        if not FPS_RANGE[0] <= self.capture_fps <= FPS_RANGE[1]:
            raise ConfigError(f"PAGECAST_CAPTURE_FPS must be between {FPS_RANGE[0]} and {FPS_RANGE[1]}")
        if not 0.5 <= self.device_scale_factor <= 4:
            raise ConfigError("PAGECAST_DEVICE_SCALE_FACTOR must be between 0.5 and 4")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError("PAGECAST_JPEG_QUALITY must be between 1 and 100")
        if not 0 <= self.port < 65536:
            raise ConfigError("PAGECAST_PORT must be between 0 (any free port) and 65535")
        if self.playlist_window < 6:
            raise ConfigError("PAGECAST_PLAYLIST_WINDOW must be at least 6 seconds")
        for host in self.cast_hosts:
            if not host or "/" in host or " " in host or host.count(":") == 1:
                raise ConfigError(f"PAGECAST_CAST_HOSTS: {host!r} is not an address; give host names or IP addresses only, comma-separated (Cast devices always listen on 8009)")
        if self.renderer_restarts < 0 or self.encoder_restarts < 0 or self.renderer_restart_window <= 0 or self.encoder_restart_window <= 0:
            raise ConfigError("PAGECAST_RENDERER_RESTARTS and PAGECAST_ENCODER_RESTARTS must be 0 or more, and their windows more than 0 seconds")
        if self.renderer_max_memory_mb < 0 or self.renderer_max_age < 0:
            raise ConfigError("PAGECAST_RENDERER_MAX_MEMORY_MB and PAGECAST_RENDERER_MAX_AGE must be 0 (never) or more")
        if self.renderer_check_interval <= 0:
            raise ConfigError("PAGECAST_RENDERER_CHECK_INTERVAL must be more than 0 seconds")
        if self.log_format not in ("text", "json"):
            raise ConfigError("PAGECAST_LOG_FORMAT must be 'text' or 'json'")
        from .encoders import parse_order

        try:
            parse_order(self.encoder)
        except ValueError as exc:
            raise ConfigError(f"PAGECAST_ENCODER={self.encoder!r}: {exc}") from None


def env_name(name: str) -> str:
    """A setting's environment variable: ``load_timeout`` → ``PAGECAST_LOAD_TIMEOUT``."""
    return "PAGECAST_" + name.upper()


def flag_name(name: str) -> str:
    """A setting's flag: ``load_timeout`` → ``--load-timeout``."""
    return "--" + name.replace("_", "-")


def setting_words(name: str) -> str:
    """How a message names a setting: the ways a user sets it, never its attribute name."""
    if name not in {f.name for f in dataclasses.fields(Settings)}:
        raise KeyError(f"no setting {name!r}")
    return f"{env_name(name)} (or {flag_name(name)})"


def parse_profiles(text: str, name: str) -> dict[str, dict[str, Any]]:
    """A profiles file's text (TOML, or JSON when ``name`` ends in .json) as profile name →
    /start fields; ConfigError says what is wrong with it."""
    is_json = name.endswith(".json")
    try:
        data = json.loads(text) if is_json else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"PAGECAST_PROFILES_FILE: {name} is not valid {'JSON' if is_json else 'TOML'}: {exc}") from exc
    profiles = data.get("profiles", data) if isinstance(data, dict) else data
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise ConfigError(f"PAGECAST_PROFILES_FILE: {name} must map profile names to tables of /start fields")
    return profiles


def _coerce(f: dataclasses.Field, raw: str, where: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind in ("bool", "bool | None"):
            low = raw.strip().lower()
            if not low and kind == "bool | None":
                return None
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind.startswith("tuple"):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{where}={raw!r} is not a valid {kind}") from None
    return raw


def settings_markdown() -> str:
    """The settings table of docs/configuration.md, generated from the fields' help."""
    rows = ["| Environment variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(Settings):
        if f.default is not dataclasses.MISSING:
            default = f.default
            default = ",".join(default) if isinstance(default, tuple) else default
            default = f"`{default}`" if default not in ("", None) else "(empty)"
        else:
            default = "(detected)"
        rows.append(f"| `{env_name(f.name)}` | `{flag_name(f.name)}` | {default} | {f.metadata['help']} |")
    return "\n".join(rows) + "\n"

