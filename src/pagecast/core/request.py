"""A /start request: its model, and its validation. Everything a user can get wrong is caught
here, before any process starts, with a message that says what to fix."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .appearance import MOTIONS, THEMES, Appearance
from .errors import InvalidRequest, NotFound
from .settings import PRESETS, ROTATIONS, Quality, Settings

START_FIELDS = {
    "url", "quality", "mode", "duration", "device", "auth", "profile", "device_scale_factor", "width", "height", "fps", "bitrate",
    "keep_on", "if_idle", "volume", "motion", "theme", "kiosk", "capture_fps", "rotate", "burn_in",
}
AUTH_FIELDS = {"cookies", "local_storage", "headers", "ha_token"}


@dataclass(frozen=True)
class Auth:
    """Credentials for the page. Values are secrets: never logged, never in ``repr``."""

    cookies: tuple[dict, ...] = field(default=(), repr=False)
    local_storage: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    ha_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        parts = []
        if self.cookies:
            parts.append(f"cookies=<{len(self.cookies)} hidden>")
        if self.local_storage:
            parts.append(f"local_storage=<{len(self.local_storage)} hidden>")
        if self.headers:
            parts.append(f"headers=<{len(self.headers)} hidden>")
        if self.ha_token:
            parts.append("ha_token=<hidden>")
        return f"Auth({', '.join(parts)})"

    __str__ = __repr__


@dataclass(frozen=True)
class CastOptions:
    """What a /start asks of its TV; all the Cast watcher gets of the request."""

    keep_on: bool = False
    if_idle: bool = False
    volume: float | None = None


@dataclass(frozen=True)
class StartRequest:
    url: str
    quality: Quality
    mode: str
    duration: float | None = None
    device: str | None = None
    auth: Auth = field(default_factory=Auth)
    profile: str | None = None
    device_scale_factor: float = 1.0
    keep_on: bool = False
    if_idle: bool = False
    volume: float | None = None
    appearance: Appearance = Appearance()
    #: Most frames a second taken from the page (its changes); the stream keeps quality.fps.
    capture_fps: int = 15

    @property
    def cast(self) -> CastOptions:
        return CastOptions(keep_on=self.keep_on, if_idle=self.if_idle, volume=self.volume)

    def public(self) -> dict[str, Any]:
        return {
            "url": redact_url(self.url),
            "quality": self.quality.name,
            "mode": self.mode,
            "duration": self.duration,
            "device": self.device,
            "profile": self.profile,
            "width": self.quality.width,
            "height": self.quality.height,
            "fps": self.quality.fps,
            "rotate": self.quality.rotate,
            "device_scale_factor": self.device_scale_factor,
            "keep_on": self.keep_on,
            "if_idle": self.if_idle,
            "volume": self.volume,
            "motion": self.appearance.motion,
            "theme": self.appearance.theme,
            "kiosk": self.appearance.kiosk,
            "burn_in": self.appearance.burn_in > 0,
            "capture_fps": self.capture_fps,
        }


def redact_url(url: str) -> str:
    """The URL as it may be shown or logged: scheme, host and path, with every query value, the
    user info and the fragment hidden (a dashboard URL often carries a token in any of them).
    The one redaction of a URL; only the renderer's navigation uses the raw URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        key + ("=***" if value or "=" in pair else "")
        for pair in parts.query.split("&") if pair
        for key, _, value in [pair.partition("=")]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, "***" if parts.fragment else ""))


_URL_IN_TEXT = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+""")


def redact_urls_in(text: str) -> str:
    """``text`` (a program's output, an error) with every URL in it shown by ``redact_url``."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def _type_name(value: Any) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "true/false", list: "a list", dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _expect(body: dict, key: str, kinds: tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise InvalidRequest(f"'{key}' must be {what}, got {_type_name(value)}")
    if not isinstance(value, kinds):
        raise InvalidRequest(f"'{key}' must be {what}, got {_type_name(value)}")
    return value


def validate_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest("'url' is required: the http(s) address of the page to show, e.g. \"http://homeassistant.local:8123/lovelace/cameras\"")
    url = url.strip()
    if len(url) > 4096:
        raise InvalidRequest("'url' is longer than 4096 characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidRequest(f"'url' is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "(none)"
        raise InvalidRequest(f"'url' must start with http:// or https://; scheme {scheme!r} is not allowed (file:, chrome:, javascript: and data: pages are refused)")
    if not parts.hostname:
        raise InvalidRequest("'url' has no host name, e.g. \"http://192.168.1.10:8123/\"")
    try:
        parts.port
    except ValueError:
        raise InvalidRequest("'url' has an invalid port") from None
    return url


def parse_auth(raw: Any) -> Auth:
    if raw is None:
        return Auth()
    if not isinstance(raw, dict):
        raise InvalidRequest(f"'auth' must be an object with any of {sorted(AUTH_FIELDS)}, got {_type_name(raw)}")
    unknown = set(raw) - AUTH_FIELDS
    if unknown:
        raise InvalidRequest(f"'auth' has unknown field(s) {sorted(unknown)}; allowed: {sorted(AUTH_FIELDS)}")
    cookies = raw.get("cookies") or []
    if isinstance(cookies, dict):
        cookies = [{"name": k, "value": v} for k, v in cookies.items()]
    if not isinstance(cookies, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("value"), str) for c in cookies):
        raise InvalidRequest("'auth.cookies' must be an object {name: value} or a list of {\"name\": …, \"value\": …, \"domain\"?: …, \"path\"?: …}")
    ls = raw.get("local_storage") or {}
    if not isinstance(ls, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in ls.items()):
        raise InvalidRequest("'auth.local_storage' must be an object of string keys to string values")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise InvalidRequest("'auth.headers' must be an object of header names to string values")
    for name in headers:
        if not name or any(c in name for c in " :\r\n"):
            raise InvalidRequest(f"'auth.headers' has an invalid header name {name!r}")
    token = raw.get("ha_token")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise InvalidRequest("'auth.ha_token' must be a Home Assistant long-lived access token (a non-empty string)")
    return Auth(
        cookies=tuple(dict(c) for c in cookies),
        local_storage=tuple(ls.items()),
        headers=tuple(headers.items()),
        ha_token=token.strip() if token else None,
    )


def parse_start(body: Any, settings: Settings, profiles: dict[str, dict[str, Any]]) -> StartRequest:
    """Turn a /start body (after profile expansion) into a StartRequest, or raise InvalidRequest (NotFound for an unknown profile)."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"the body must be a JSON object like {{\"url\": \"http://…\"}}, got {_type_name(body)}")
    profile_name = _expect(body, "profile", (str,), "the name of a configured profile")
    if profile_name is not None:
        if profile_name not in profiles:
            known = ", ".join(sorted(profiles)) or "none are configured (PAGECAST_PROFILES_FILE)"
            raise NotFound(f"unknown profile {profile_name!r}; known profiles: {known}")
        merged = dict(profiles[profile_name])
        merged.update({k: v for k, v in body.items() if k != "profile"})
        body = merged
    unknown = set(body) - START_FIELDS
    if unknown:
        raise InvalidRequest(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(START_FIELDS)}")
    url = validate_url(body.get("url"))

    quality_name = _expect(body, "quality", (str,), f"one of {', '.join(PRESETS)}") or settings.quality
    if quality_name not in PRESETS:
        raise InvalidRequest(f"unknown quality {quality_name!r}; use one of {', '.join(PRESETS)} (and width/height/fps/bitrate to override)")
    quality = PRESETS[quality_name]
    overrides: dict[str, Any] = {}
    for key, lo, hi, attr in (("width", 160, 3840, "width"), ("height", 120, 2160, "height"), ("fps", 1, 60, "fps"), ("bitrate", 200, 50000, "bitrate_kbps")):
        value = _expect(body, key, (int,), f"a whole number between {lo} and {hi}")
        if value is not None:
            if not lo <= value <= hi:
                raise InvalidRequest(f"'{key}' must be between {lo} and {hi}, got {value}")
            overrides[attr] = value
    rotate = _expect(body, "rotate", (int,), "0, 90 or 270")
    if rotate is not None:
        if rotate not in ROTATIONS:
            raise InvalidRequest(f"'rotate' must be 0, 90 or 270 (how far the TV is turned clockwise), got {rotate}")
        if (rotate in (90, 270)) != (quality.rotate in (90, 270)):
            # Turned a quarter: the page is laid out the other way round.
            overrides.setdefault("width", quality.height)
            overrides.setdefault("height", quality.width)
        overrides["rotate"] = rotate
    if overrides:
        quality = replace(quality, **overrides)
    if quality.width % 2 or quality.height % 2:
        raise InvalidRequest(f"width and height must be even numbers (H.264 with 4:2:0 colour), got {quality.width}×{quality.height}")

    mode = _expect(body, "mode", (str,), "'hls' or 'fmp4'") or settings.mode
    if mode not in ("hls", "fmp4"):
        raise InvalidRequest(f"unknown mode {mode!r}; use 'hls' (live HLS for TVs and browsers) or 'fmp4' (low-latency progressive MP4)")

    duration = _expect(body, "duration", (int, float), "a number of seconds")
    if duration is not None:
        if not math.isfinite(duration) or duration <= 0 or duration > 7 * 86400:
            raise InvalidRequest(f"'duration' must be a number of seconds between 0 and 604800 (omit it to run until stopped), got {duration}")
        duration = float(duration)

    if "device" in body and body["device"] is None:
        device = None  # explicitly no TV: stream only, even with a default device configured
    else:
        device = _expect(body, "device", (str,), "a device name, uuid or address")
        if device is not None and not device.strip():
            raise InvalidRequest("'device' is empty; give a device name, uuid or address (GET /devices lists them), or null to only stream")
        device = (device or settings.default_device).strip() or None
    dsf = _expect(body, "device_scale_factor", (int, float), "a number between 0.5 and 4")
    if dsf is None:
        dsf = quality.device_scale_factor or settings.device_scale_factor
    if not 0.5 <= dsf <= 4:
        raise InvalidRequest(f"'device_scale_factor' must be between 0.5 and 4, got {dsf}")
    auth = parse_auth(body.get("auth"))
    flags = {}
    for key in ("keep_on", "if_idle"):
        value = _expect(body, key, (bool,), "true or false")
        flags[key] = bool(value)
        if value is not None and device is None:
            raise InvalidRequest(f"'{key}' applies to casting; give a 'device' too (GET /devices lists them)")
    volume = _expect(body, "volume", (int, float), "a number between 0.0 and 1.0")
    if volume is not None:
        if not 0 <= volume <= 1:
            raise InvalidRequest(f"'volume' must be between 0.0 and 1.0, got {volume}")
        if device is None:
            raise InvalidRequest("'volume' applies to casting; give a 'device' too (GET /devices lists them)")
        volume = float(volume)
    appearance, capture_fps = parse_look(body, settings, quality.fps)
    return StartRequest(
        url=url, quality=quality, mode=mode, duration=duration, device=device,
        auth=auth, profile=profile_name, device_scale_factor=float(dsf), volume=volume,
        appearance=appearance, capture_fps=capture_fps, **flags,
    )


def parse_look(body: dict, settings: Settings, fps: int) -> tuple[Appearance, int]:
    """The page's look (``motion``, ``theme``, ``kiosk``) and its ``capture_fps``."""
    motion = _expect(body, "motion", (str,), f"one of {', '.join(MOTIONS)}") or settings.motion
    if motion not in MOTIONS:
        raise InvalidRequest(f"unknown motion {motion!r}; use 'reduce' (transitions end at once: cheap, for dashboards) or 'full' (the page's own pace)")
    theme = _expect(body, "theme", (str,), f"one of {', '.join(THEMES)}")
    if theme is not None and theme not in THEMES:
        raise InvalidRequest(f"unknown theme {theme!r}; use 'dark' or 'light' (omit it for the page's own)")
    kiosk = _expect(body, "kiosk", (bool,), "true or false")
    burn_in = _expect(body, "burn_in", (bool,), "true or false")
    capture_fps = _expect(body, "capture_fps", (int,), f"a whole number between 1 and the stream's fps ({fps})")
    if capture_fps is None:
        capture_fps = min(settings.capture_fps, fps)
    elif not 1 <= capture_fps <= fps:
        raise InvalidRequest(f"'capture_fps' must be between 1 and the stream's fps ({fps}), got {capture_fps}")
    look = Appearance(motion=motion, theme=theme, kiosk=bool(kiosk), burn_in=settings.burn_in_period if burn_in else 0.0)
    return look, capture_fps
