"""The control API's request bodies: /start's model, and the field table that validates /start
and /stop bodies and is the API document's schema of them. Everything a user can get wrong is
caught here, before any process starts, with a message that says what to fix."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .appearance import MOTIONS, THEMES, Appearance
from .errors import InvalidRequest, NotFound
from .settings import FPS_RANGE, PRESETS, ROTATIONS, Quality, Settings

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}


@dataclass(frozen=True)
class Field:
    """One field of a request body: what the validator accepts and what the API document
    (``/openapi.json``) says of it, from this one place. ``null`` means "not given"."""

    kinds: tuple[type, ...]
    what: str
    help: str
    lo: float | None = None
    hi: float | None = None
    low_open: bool = False
    hint: str = ""
    choices: tuple[Any, ...] = ()
    #: The message for a value not among ``choices`` ({key}, {value}): what it is for, and the choices.
    unknown: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self, key: str, value: Any) -> Any:
        """``value`` if it has this field's kind, range and choices; None stays None. A whole
        number written as ``1280.0`` is a whole number, as JSON Schema says."""
        if value is None:
            return None
        if isinstance(value, float) and int in self.kinds and float not in self.kinds and value.is_integer():
            value = int(value)
        if (isinstance(value, bool) and bool not in self.kinds) or not isinstance(value, self.kinds):
            raise InvalidRequest(f"'{key}' must be {self.what}, got {_type_name(value)}")
        if self.choices and value not in self.choices:
            raise InvalidRequest(self.unknown.format(key=key, value=value) if self.unknown else f"'{key}' must be {self.what}, got {value!r}")
        if isinstance(value, (bool, str, dict, list)):
            return value
        if not math.isfinite(value):
            raise InvalidRequest(f"'{key}' must be {self.what}{self.hint}, got {value}")
        inside = (self.lo is None or (value > self.lo if self.low_open else value >= self.lo)) and (self.hi is None or value <= self.hi)
        if not inside:
            raise InvalidRequest(f"'{key}' must be between {self.lo} and {self.hi}{self.hint}, got {value}")
        return value

    def json_schema(self, nullable: bool = True) -> dict[str, Any]:
        types = ["number"] if float in self.kinds else [_JSON_TYPES[k] for k in self.kinds]
        schema: dict[str, Any] = {"description": self.help}
        if self.lo is not None:
            schema["exclusiveMinimum" if self.low_open else "minimum"] = self.lo
        if self.hi is not None:
            schema["maximum"] = self.hi
        if self.choices:
            schema["enum"] = [*self.choices, *([None] if nullable else [])]
        schema.update(self.extra)
        if "type" not in self.extra:
            schema["type"] = [*types, "null"] if nullable else types if len(types) > 1 else types[0]
        return schema


_STRING_MAP = {"additionalProperties": {"type": "string"}}

AUTH_FIELDS: dict[str, Field] = {
    "cookies": Field((dict, list), "an object {name: value} or a list of cookies", "Cookies for the page's site: {name: value}, or Chromium cookie objects.", extra={
        "type": ["object", "array", "null"],
        "additionalProperties": {"type": "string"},
        "items": {
            "type": "object", "required": ["name", "value"],
            "properties": {"name": {"type": "string"}, "value": {"type": "string"}, "domain": {"type": "string"}, "path": {"type": "string"}},
            "description": "Other fields are those of Chromium's Network.CookieParam (secure, httpOnly, sameSite, expires).",
        },
    }),
    "local_storage": Field((dict,), "an object of string keys to string values", "localStorage items set on the page's origin before it loads.", extra=_STRING_MAP),
    "headers": Field((dict,), "an object of header names to string values", "Extra HTTP headers sent with every request of the page.", extra={
        **_STRING_MAP, "propertyNames": {"pattern": "^[^ :\\r\\n]+$"},
    }),
    "ha_token": Field((str,), "a Home Assistant long-lived access token (a non-empty string)",
                      "A Home Assistant long-lived access token: the page is logged in with it.", extra={"pattern": "\\S"}),
    "ha_refresh_token": Field((str,), "a Home Assistant refresh token (a non-empty string)",
                              "A Home Assistant refresh token (a system user's, as the pagecast integration makes): the page fetches and renews its own access tokens with it for as long as it runs.",
                              extra={"pattern": "\\S"}),
    "ha_client_id": Field((str,), "the client id the refresh token was issued to (a non-empty string)",
                          "The client id of ha_refresh_token; omit it for a system user's token, which has none.", extra={"pattern": "\\S"}),
}

START_FIELDS: dict[str, Field] = {
    "url": Field((str,), "the http(s) address of the page to show", "The page to show: http or https, with a host name.", extra={
        "minLength": 1, "maxLength": 4096, "pattern": "^ *[Hh][Tt][Tt][Pp][Ss]?://[^/?#\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$",
    }),
    "profile": Field((str,), "the name of a configured profile", "A profile (PAGECAST_PROFILES_FILE) whose fields this request starts from; the body's own fields win."),
    "quality": Field((str,), f"one of {', '.join(PRESETS)}", "A screen preset: " + "; ".join(f"{q.name}: {q.screen} ({q.width}×{q.height})" for q in PRESETS.values()) + ".",
                     choices=tuple(PRESETS), unknown="unknown quality {value!r}; use one of " + ", ".join(PRESETS) + " (and width/height/fps/bitrate to override)"),
    "mode": Field((str,), "'hls' or 'fmp4'", "hls: live HLS for TVs and browsers; fmp4: low-latency progressive MP4.", choices=("hls", "fmp4"),
                  unknown="unknown mode {value!r}; use 'hls' (live HLS for TVs and browsers) or 'fmp4' (low-latency progressive MP4)"),
    "duration": Field((int, float), "a number of seconds", "Seconds until the TV is given back; omit it to run until stopped.",
                      lo=0, hi=7 * 86400, low_open=True, hint=" (omit it to run until stopped)"),
    "device": Field((str, list), "a device name, uuid or address, or a list of them",
                    "The TV: a name, uuid or address (GET /devices lists them), or a list of TVs that all show the one render; null streams only, without a TV.",
                    extra={"pattern": "\\S", "items": {"type": "string", "pattern": "\\S"}, "minItems": 1, "uniqueItems": True}),
    "share": Field((bool,), "true or false", "Join a live session that shows the identical page (url, auth, size and preset, mode, look) instead of starting a render of its own (default true)."),
    "auth": Field((dict,), "an object", "Credentials for the page; never logged or shown. A Home Assistant sign-in is ha_token or ha_refresh_token (with ha_client_id if it has one), not both.", extra={
        "properties": {k: f.json_schema() for k, f in AUTH_FIELDS.items()}, "additionalProperties": False,
    }),
    "width": Field((int,), "a whole number between 160 and 3840", "Width in pixels (even), overriding the preset's.", lo=160, hi=3840, extra={"multipleOf": 2}),
    "height": Field((int,), "a whole number between 120 and 2160", "Height in pixels (even), overriding the preset's.", lo=120, hi=2160, extra={"multipleOf": 2}),
    "fps": Field((int,), f"a whole number between {FPS_RANGE[0]} and {FPS_RANGE[1]}", "Frames a second of the stream.", lo=FPS_RANGE[0], hi=FPS_RANGE[1]),
    "bitrate": Field((int,), "a whole number between 200 and 50000", "Video bitrate in kbit/s.", lo=200, hi=50000),
    "device_scale_factor": Field((int, float), "a number between 0.5 and 4", "CSS pixel ratio: 2 draws a 960×540 layout into 1920×1080 pixels.", lo=0.5, hi=4),
    "rotate": Field((int,), "0, 90 or 270", "How far the TV is turned clockwise; 90 or 270 lays the page out the other way round.", choices=ROTATIONS,
                    unknown="'rotate' must be 0, 90 or 270 (how far the TV is turned clockwise), got {value}"),
    "keep_on": Field((bool,), "true or false", "Keep the stream on the TV even when someone starts something else on it (needs a device)."),
    "if_idle": Field((bool,), "true or false", "Cast only if the TV shows nothing else (needs a device)."),
    "volume": Field((int, float), "a number between 0.0 and 1.0", "The TV's volume while the page is shown, given back after (needs a device).", lo=0.0, hi=1.0),
    "quiet": Field((bool,), "true or false", "Mute the TV while pagecast's app starts, so a Nest Hub makes no sound, and unmute it once the stream plays (needs a device)."),
    "motion": Field((str,), f"one of {', '.join(MOTIONS)}", "reduce: the page's transitions end at once (cheap, for dashboards); full: the page's own pace.", choices=MOTIONS,
                    unknown="unknown motion {value!r}; use 'reduce' (transitions end at once: cheap, for dashboards) or 'full' (the page's own pace)"),
    "theme": Field((str,), f"one of {', '.join(THEMES)}", "dark or light for pages that follow it (Home Assistant); omit it for the page's own.", choices=THEMES,
                   unknown="unknown theme {value!r}; use 'dark' or 'light' (omit it for the page's own)"),
    "kiosk": Field((bool,), "true or false", "Show a Home Assistant dashboard without its sidebar and top bar."),
    "capture_fps": Field((int,), "a whole number between 1 and the stream's fps", "Most pictures a second taken from the page (at most the stream's fps).", lo=FPS_RANGE[0], hi=FPS_RANGE[1]),
    "burn_in": Field((bool,), "true or false", "Shift the picture a few pixels every few minutes (PAGECAST_BURN_IN_PERIOD), for all-day screens."),
}

STOP_FIELDS: dict[str, Field] = {
    "id": Field((str,), "a string", "The session to stop."),
    "device": Field((str,), "a string", "Stop the session on this TV (name, uuid or address)."),
}


#: A TV joining a running session (POST /sessions/<id>/screens): its own options.
SCREEN_FIELDS: dict[str, Field] = {
    k: START_FIELDS[k] for k in ("device", "duration", "keep_on", "if_idle", "volume", "quiet")
}


def screen_schema() -> dict[str, Any]:
    """A POST /sessions/<id>/screens body: the TVs, and each one's own options."""
    schema = body_schema(SCREEN_FIELDS)
    schema["properties"]["device"] = SCREEN_FIELDS["device"].json_schema(nullable=False)
    schema["required"] = ["device"]
    return schema


def parse_screen(body: Any, session: "StartRequest") -> "StartRequest":
    """A POST /sessions/<id>/screens body as the session's request with the new TVs and their
    own options (the page is the session's)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object like {\"device\": \"Kitchen TV\", \"duration\": 60}")
    if set(body) - set(SCREEN_FIELDS):
        raise unknown_fields(set(body) - set(SCREEN_FIELDS), SCREEN_FIELDS)
    devices = parse_devices(body) if body.get("device") is not None else ()
    if not devices:
        raise InvalidRequest("'device' is required: the TV (or a list of TVs) to add, e.g. {\"device\": \"Kitchen TV\"}")
    duration = _take(body, "duration", SCREEN_FIELDS)
    volume = _take(body, "volume", SCREEN_FIELDS)
    return replace(
        session, devices=devices, duration=float(duration) if duration is not None else None,
        volume=float(volume) if volume is not None else None,
        **{k: bool(_take(body, k, SCREEN_FIELDS)) for k in ("keep_on", "if_idle", "quiet")},
    )


def body_schema(fields: dict[str, Field], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON Schema of a request body made of ``fields``."""
    return {
        "type": "object",
        "properties": {k: f.json_schema(nullable=k not in required) for k, f in fields.items()},
        "additionalProperties": False,
    }


def start_schema() -> dict[str, Any]:
    """A /start body: a url, or a profile that gives one. Rules that span fields (an even size,
    capture_fps at most fps, keep_on/if_idle/volume/quiet only with a device) are in the descriptions."""
    schema = body_schema(START_FIELDS)
    schema["properties"]["url"] = START_FIELDS["url"].json_schema(nullable=False)
    schema["anyOf"] = [{"required": ["url"]}, {"required": ["profile"], "properties": {"profile": {"type": "string"}}}]
    return schema


@dataclass(frozen=True)
class Auth:
    """Credentials for the page. Values are secrets: never logged, never in ``repr``."""

    cookies: tuple[dict, ...] = field(default=(), repr=False)
    local_storage: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    ha_token: str | None = field(default=None, repr=False)
    ha_refresh_token: str | None = field(default=None, repr=False)
    ha_client_id: str | None = None

    @property
    def signs_in_to_ha(self) -> bool:
        return bool(self.ha_token or self.ha_refresh_token)

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
        if self.ha_refresh_token:
            parts.append("ha_refresh_token=<hidden>")
        return f"Auth({', '.join(parts)})"

    __str__ = __repr__


@dataclass(frozen=True)
class CastOptions:
    """What a /start asks of its TV; all the Cast watcher gets of the request."""

    keep_on: bool = False
    if_idle: bool = False
    volume: float | None = None
    quiet: bool = False


@dataclass(frozen=True)
class StartRequest:
    url: str
    quality: Quality
    mode: str
    duration: float | None = None
    devices: tuple[str, ...] = ()
    auth: Auth = field(default_factory=Auth)
    profile: str | None = None
    device_scale_factor: float = 1.0
    keep_on: bool = False
    if_idle: bool = False
    volume: float | None = None
    quiet: bool = False
    appearance: Appearance = Appearance()
    #: Most frames a second taken from the page (its changes); the stream keeps quality.fps.
    capture_fps: int = 15
    share: bool = True

    @property
    def device(self) -> str | None:
        """The first TV asked for (the one ``cast`` describes), or None to stream only."""
        return self.devices[0] if self.devices else None

    def same_page(self, other: "StartRequest") -> bool:
        """Whether ``other`` renders exactly the picture this does, so one render can feed both:
        the page (url, credentials), its size and encoding (preset and overrides, scale), the
        stream kind and the look. What the TV does with it (volume, keep_on, duration…) is the
        screen's own."""
        return (
            self.url == other.url and self.auth == other.auth and self.quality == other.quality and self.mode == other.mode
            and self.device_scale_factor == other.device_scale_factor and self.appearance == other.appearance
            and self.capture_fps == other.capture_fps
        )

    @property
    def cast(self) -> CastOptions:
        return CastOptions(keep_on=self.keep_on, if_idle=self.if_idle, volume=self.volume, quiet=self.quiet)

    def public(self) -> dict[str, Any]:
        return {
            "url": redact_url(self.url),
            "quality": self.quality.name,
            "mode": self.mode,
            "duration": self.duration,
            "device": self.device,
            "devices": list(self.devices),
            "profile": self.profile,
            "width": self.quality.width,
            "height": self.quality.height,
            "fps": self.quality.fps,
            "rotate": self.quality.rotate,
            "device_scale_factor": self.device_scale_factor,
            "keep_on": self.keep_on,
            "if_idle": self.if_idle,
            "volume": self.volume,
            "quiet": self.quiet,
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


def unknown_fields(unknown: set[str], allowed: dict[str, Any], within: str = "") -> InvalidRequest:
    """The error for fields a body should not have, each with the known one it most looks like
    (a typo: ``durration`` → ``duration``), else the list of known ones."""
    where = f"'{within}' has " if within else ""
    named = []
    for key in sorted(unknown, key=str):
        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6) if isinstance(key, str) else []
        named.append(f"unknown field {key!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    hint = "" if all("did you mean" in n for n in named) else f"; allowed: {', '.join(allowed)}"
    return InvalidRequest(where + "; ".join(named) + hint)


#: A template's Python value where JSON wants its own word: ``"keep_on": False``.
_PYTHON_WORD = re.compile(r"(True|False|None)\b")


def json_error(text: str, msg: str, pos: int, lineno: int, colno: int) -> str:
    """What a body that is not JSON gets told. A bare True/False/None is a Home Assistant
    template's Python value (``{{ flag }}`` instead of ``{{ flag | tojson }}``): say so."""
    found = _PYTHON_WORD.match(text, pos)
    if found:
        return (f"the body is not valid JSON: {found.group(1)} at line {lineno} column {colno} looks like a Python value "
                "from a template: in Home Assistant write {{ value | tojson }} (JSON needs true/false/null)")
    return f"the body is not valid JSON: {msg} at line {lineno} column {colno}"


def _blank(text: str) -> bool:
    """Only white space, by Python's idea of it or JSON Schema's (which counts U+FEFF too)."""
    return not text.replace("\ufeff", " ").strip()


def _or(value: Any, default: Any) -> Any:
    """``value``, or ``default`` when it was not given (an empty string is given, and wrong)."""
    return default if value is None else value


def _take(body: dict, key: str, fields: dict[str, Field] | None = None) -> Any:
    return (fields or START_FIELDS)[key].check(key, body.get(key))


def validate_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest("'url' is required: the http(s) address of the page to show, e.g. \"http://homeassistant.local:8123/lovelace/cameras\"")
    if len(url) > 4096:
        raise InvalidRequest("'url' is longer than 4096 characters")
    url = url.strip(" ")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidRequest("'url' has a control character in it (a tab, a line break…); send the address alone")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidRequest(f"'url' is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "(none)"
        raise InvalidRequest(f"'url' must start with http:// or https://; scheme {scheme!r} is not allowed (file:, chrome:, javascript: and data: pages are refused)")
    if not parts.hostname or any(c.isspace() for c in parts.netloc):
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
    unknown = set(raw) - set(AUTH_FIELDS)
    if unknown:
        raise unknown_fields(unknown, AUTH_FIELDS, within="auth")
    for key, value in raw.items():
        AUTH_FIELDS[key].check(f"auth.{key}", value)
    cookies = raw.get("cookies")
    cookies = [] if cookies is None else cookies
    if isinstance(cookies, dict):
        cookies = [{"name": k, "value": v} for k, v in cookies.items()]
    if not isinstance(cookies, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("value"), str) for c in cookies):
        raise InvalidRequest("'auth.cookies' must be an object {name: value} or a list of {\"name\": …, \"value\": …, \"domain\"?: …, \"path\"?: …}")
    for key in ("domain", "path"):
        if any(key in c and not isinstance(c[key], str) for c in cookies):
            raise InvalidRequest(f"'auth.cookies': a cookie's '{key}' must be a string")
    ls = raw.get("local_storage")
    ls = {} if ls is None else ls
    if not all(isinstance(v, str) for v in ls.values()):
        raise InvalidRequest("'auth.local_storage' must be an object of string keys to string values")
    headers = raw.get("headers")
    headers = {} if headers is None else headers
    if not all(isinstance(v, str) for v in headers.values()):
        raise InvalidRequest("'auth.headers' must be an object of header names to string values")
    for name in headers:
        if not name or any(c in name for c in " :\r\n"):
            raise InvalidRequest(f"'auth.headers' has an invalid header name {name!r}")
    ha = {}
    for key in ("ha_token", "ha_refresh_token", "ha_client_id"):
        value = raw.get(key)
        if value is not None and _blank(value):
            raise InvalidRequest(f"'auth.{key}' must be {AUTH_FIELDS[key].what}")
        ha[key] = value.strip() if value else None
    if ha["ha_token"] and ha["ha_refresh_token"]:
        raise InvalidRequest("give 'auth.ha_token' (a long-lived access token) or 'auth.ha_refresh_token' (a refresh token), not both")
    if ha["ha_client_id"] and not ha["ha_refresh_token"]:
        raise InvalidRequest("'auth.ha_client_id' belongs to a refresh token; give 'auth.ha_refresh_token' too")
    return Auth(
        cookies=tuple(dict(c) for c in cookies),
        local_storage=tuple(ls.items()),
        headers=tuple(headers.items()),
        **ha,
    )


def parse_stop(body: Any) -> tuple[str | None, str | None]:
    """A /stop body as (session id, device); both None stops every session."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object: {\"id\": …}, {\"device\": …} or {} to stop all")
    unknown = set(body) - set(STOP_FIELDS)
    if unknown:
        raise unknown_fields(unknown, STOP_FIELDS)
    return _take(body, "id", STOP_FIELDS), _take(body, "device", STOP_FIELDS)


def _check_fields(body: dict) -> None:
    """Every field known, and of its kind and range (what ``parse_start`` checks anyway, as it
    goes), for a body whose profile is still to be looked up."""
    unknown = set(body) - set(START_FIELDS)
    if unknown:
        raise unknown_fields(unknown, START_FIELDS)
    for key, value in body.items():
        if key == "url":
            if value is not None:
                validate_url(value)
        elif key == "auth":
            parse_auth(value)
        else:
            START_FIELDS[key].check(key, value)


def parse_start(body: Any, settings: Settings, profiles: dict[str, dict[str, Any]]) -> StartRequest:
    """Turn a /start body (after profile expansion) into a StartRequest, or raise InvalidRequest (NotFound for an unknown profile)."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"the body must be a JSON object like {{\"url\": \"http://…\"}}, got {_type_name(body)}")
    profile_name = _take(body, "profile")
    if profile_name is not None:
        _check_fields(body)  # a body that breaks the document is a 400, not a 404 for its profile
        if profile_name not in profiles:
            known = ", ".join(sorted(profiles)) or "none are configured (PAGECAST_PROFILES_FILE)"
            raise NotFound(f"unknown profile {profile_name!r}; known profiles: {known}")
        merged = dict(profiles[profile_name])
        # null is "not given": the profile's value stays (but "device": null still means no TV).
        merged.update({k: v for k, v in body.items() if k != "profile" and (v is not None or k == "device")})
        body = merged
    unknown = set(body) - set(START_FIELDS)
    if unknown:
        raise unknown_fields(unknown, START_FIELDS)
    url = validate_url(body.get("url"))

    quality = PRESETS[_or(_take(body, "quality"), settings.quality)]
    overrides: dict[str, Any] = {}
    for key, attr in (("width", "width"), ("height", "height"), ("fps", "fps"), ("bitrate", "bitrate_kbps")):
        value = _take(body, key)
        if value is not None:
            overrides[attr] = value
    rotate = _take(body, "rotate")
    if rotate is not None:
        if (rotate in (90, 270)) != (quality.rotate in (90, 270)):
            # Turned a quarter: the page is laid out the other way round.
            overrides.setdefault("width", quality.height)
            overrides.setdefault("height", quality.width)
        overrides["rotate"] = rotate
    if overrides:
        quality = replace(quality, **overrides)
    if quality.width % 2 or quality.height % 2:
        raise InvalidRequest(f"width and height must be even numbers (H.264 with 4:2:0 colour), got {quality.width}×{quality.height}")

    mode = _or(_take(body, "mode"), settings.mode)

    duration = _take(body, "duration")
    if duration is not None:
        duration = float(duration)

    devices = parse_devices(body, settings.default_device)
    device = devices[0] if devices else None
    dsf = _take(body, "device_scale_factor")
    if dsf is None:
        dsf = quality.device_scale_factor or settings.device_scale_factor
    auth = parse_auth(body.get("auth"))
    flags = {}
    for key in ("keep_on", "if_idle", "quiet"):
        value = _take(body, key)
        flags[key] = bool(value)
        if value is not None and device is None:
            raise InvalidRequest(f"'{key}' applies to casting; give a 'device' too (GET /devices lists them)")
    volume = _take(body, "volume")
    if volume is not None:
        if device is None:
            raise InvalidRequest("'volume' applies to casting; give a 'device' too (GET /devices lists them)")
        volume = float(volume)
    appearance, capture_fps = parse_look(body, settings, quality.fps)
    return StartRequest(
        url=url, quality=quality, mode=mode, duration=duration,
        auth=auth, profile=profile_name, device_scale_factor=float(dsf), volume=volume,
        appearance=appearance, capture_fps=capture_fps, devices=devices, share=_or(_take(body, "share"), True), **flags,
    )


def parse_devices(body: dict, default_device: str = "") -> tuple[str, ...]:
    """``device`` as a tuple of TVs: one name, a list of them, or none (``null``: stream only,
    even with a default device configured)."""
    if "device" in body and body["device"] is None:
        return ()
    given = _take(body, "device")
    if given is None:
        return (default_device.strip(),) if default_device.strip() else ()
    names = given if isinstance(given, list) else [given]
    if not names:
        raise InvalidRequest("'device' is an empty list; name at least one TV (GET /devices lists them), or null to only stream")
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise InvalidRequest(f"'device' must list device names, uuids or addresses (strings), got {_type_name(name)}")
        if _blank(name):
            raise InvalidRequest("'device' is empty; give a device name, uuid or address (GET /devices lists them), or null to only stream")
        if name.strip() in out:
            raise InvalidRequest(f"'device' names {name.strip()!r} twice")
        out.append(name.strip())
    return tuple(out)


def parse_look(body: dict, settings: Settings, fps: int) -> tuple[Appearance, int]:
    """The page's look (``motion``, ``theme``, ``kiosk``, ``burn_in``) and its ``capture_fps``."""
    motion = _or(_take(body, "motion"), settings.motion)
    theme = _take(body, "theme")
    kiosk = _take(body, "kiosk")
    burn_in = _take(body, "burn_in")
    given = body.get("capture_fps")
    if isinstance(given, (int, float)) and not isinstance(given, bool) and not 1 <= given <= fps:
        raise InvalidRequest(f"'capture_fps' must be between 1 and the stream's fps ({fps}), got {given}")
    capture_fps = _or(_take(body, "capture_fps"), min(settings.capture_fps, fps))
    look = Appearance(motion=motion, theme=theme, kiosk=bool(kiosk), burn_in=settings.burn_in_period if burn_in else 0.0)
    return look, capture_fps
