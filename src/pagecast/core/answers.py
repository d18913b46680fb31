"""The control API's answers, declared once.

Each answer is a frozen dataclass whose fields carry their documentation. The handlers' JSON
(:func:`to_json`) and the OpenAPI document's response schemas (:func:`schema_of`) are both made
from these classes, so what the service answers and what its contract says cannot drift.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

from .lifecycle import State


def doc(text: str, **schema: Any) -> Any:
    """A field documented by ``text``; ``schema``: JSON Schema keywords it adds (``enum``…)."""
    return field(metadata={"doc": text, "schema": schema})


def docd(text: str, default: Any, **schema: Any) -> Any:
    """A documented field with a default (it may be left out where the answer is made)."""
    return field(default=default, metadata={"doc": text, "schema": schema})


# -- one TV of a session -------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenAnswer:
    device: str = doc("The TV's friendly name.")
    uuid: str = doc("The TV's Cast uuid.")
    address: str = doc("The TV's address.")
    state: str = doc("What the screen does: connecting, launching, waiting for the stream, loading, casting, playing, reconnecting, stopped by the TV, done.")
    player_state: str | None = doc("The TV's player: IDLE, BUFFERING, PLAYING, PAUSED; null when unknown.")
    seconds_to_playing: float | None = doc("Seconds from the screen's start to the TV playing.")
    casts: int = doc("LOADs of the stream on this TV (re-casts included).")
    reconnects: int = doc("Reconnections after the TV was lost.")
    stalls: int = doc("Times the TV's player went back to buffering while playing.")
    reloads: int = doc("Times the stream was loaded again on a TV stuck buffering it.")
    keep_on: bool = doc("This screen re-casts after the TV was unreachable.")
    quiet: bool = doc("This screen started muted (no launch chime).")
    woke_from_standby: bool = doc("Casting woke the TV from standby.")
    lost: str | None = doc("While reconnecting: why the TV was lost.")
    stopped_by_device: str | None = doc("How the TV ended this screen (its remote, another app, standby…).")
    previous: dict[str, Any] | None = doc("What the TV showed before (app, media, volume, standby): what is given back.")
    given_back: str | None = doc("Once ended: what was given back, or why not.")
    since: str = doc("When the screen joined (ISO 8601).")
    duration: float | None = doc("Seconds this TV shows the session; null until stopped.")
    ended: str | None = doc("Why the screen left; null while the TV shows the session.")
    ended_at: str | None = doc("When the screen left (ISO 8601).")
    error: str | None = doc("The TV's refusal that ended this screen (a LOAD_FAILED…).")


# -- a session ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FramesAnswer:
    captured: int = doc("Pictures taken from the page (only when it changed).")
    dropped: int = doc("Pictures replaced by a newer one before the encoder took them.")
    encoded: int = doc("Frames the encoder wrote.")
    repeated: int = doc("Frames repeated to keep a keyframe per segment.")


@dataclass(frozen=True)
class RendererChild:
    state: str = doc("starting, running, restarting, recycling, stopped.")
    pid: int | None = doc("Chromium's browser process, while it runs.")
    started: str | None = doc("When this Chromium started (ISO 8601).")
    age_s: float | None = doc("Seconds this Chromium has run.")
    memory_mb: float | None = doc("Chromium's memory (PSS, MB), as last measured.")
    restarts: int = doc("Chromiums replaced after a crash or hang.")
    recycles: int = doc("Chromiums replaced make-before-break (age, memory).")
    recycle_failures: int = doc("Replacements that failed to load (the old one streamed on).")
    last_recycle: dict[str, Any] | None = doc("The last replacement's reason and time.")
    last_frame_s: float | None = doc("Seconds since the page last changed.")


@dataclass(frozen=True)
class EncoderChild:
    state: str = doc("starting, running, restarting, stopped.")
    pid: int | None = doc("FFmpeg's process, while it runs.")
    backend: str | None = doc("The H.264 encoder in use.")
    restarts: int = doc("FFmpegs restarted after they died or hung.")
    last_output_s: float | None = doc("Seconds since FFmpeg last wrote output.")


@dataclass(frozen=True)
class CastChild:
    state: str = doc("The screen's state (as in `cast`).")
    reconnects: int = doc("Reconnections after the TV was lost.")


@dataclass(frozen=True)
class ChildrenAnswer:
    renderer: RendererChild = doc("Chromium.")
    encoder: EncoderChild = doc("FFmpeg.")
    cast: CastChild | None = doc("The first screen's Cast watcher; null for a stream-only session.")


@dataclass(frozen=True)
class EncoderAnswer:
    backend: str | None = doc("The encoder in use; null until the startup probe answered.")
    fell_back_from: str | None = doc("The hardware encoder that failed mid-session, if one did.")
    reason: str | None = doc("Why it failed.")
    fallbacks: int = doc("0 or 1.")


@dataclass(frozen=True)
class SessionAnswer:
    id: str = doc("The session's id (about 94 random bits: stream URLs carry it).")
    state: str = doc("starting → live → stopping → stopped, or failed.", enum=[str(s) for s in State])
    url: str = doc("The page, with query values, user info and fragment hidden.")
    quality: str = doc("The screen preset.")
    mode: str = doc("hls or fmp4.", enum=["hls", "fmp4"])
    duration: float | None = doc("Seconds asked for (each TV's; a stream-only session's own).")
    device: str | None = doc("The first TV asked for; null to stream only.")
    devices: list[str] = doc("Every TV the /start asked for.")
    profile: str | None = doc("The profile the /start named.")
    width: int = doc("Page and video width, pixels.")
    height: int = doc("Page and video height, pixels.")
    fps: int = doc("Frames a second of the stream.")
    rotate: int = doc("How far the TV is turned clockwise.")
    device_scale_factor: float = doc("CSS pixel ratio.")
    keep_on: bool = doc("Asked of the /start's TVs.")
    if_idle: bool = doc("Asked of the /start's TVs.")
    volume: float | None = doc("Asked of the /start's TVs.")
    quiet: bool = doc("Asked of the /start's TVs.")
    motion: str = doc("reduce or full.")
    theme: str | None = doc("dark, light, or null for the page's own.")
    kiosk: bool = doc("Home Assistant without its sidebar and top bar.")
    burn_in: bool = doc("Burn-in protection.")
    capture_fps: int = doc("Most pictures a second taken from the page.")
    started_at: str = doc("ISO 8601.")
    live_at: str | None = doc("When the stream went live (ISO 8601).")
    ended_at: str | None = doc("When the session ended (ISO 8601).")
    startup_seconds: float | None = doc("Seconds from /start to a live stream.")
    stop_reason: str | None = doc("Why it ended (or is ending).")
    error: str | None = doc("Why it failed, saying what to do.")
    frames: FramesAnswer = doc("Frame counts.")
    encoder_restarts: int = doc("FFmpeg restarts (also in `restarts`).")
    restarts: dict[str, int] = doc("Replacements of each child (renderer, encoder).")
    last_restart: dict[str, Any] | None = doc("The last restart: child, kind, reason, at.")
    restart_log: list[dict[str, Any]] = doc("The last restarts, recycles and fallbacks.")
    children: ChildrenAnswer = doc("Each child's health.")
    encoder: EncoderAnswer = doc("The H.264 encoder.")
    pipeline_latency_ms: dict[str, Any] | None = doc("How long a picture takes from capture to a published fragment.")
    segments: int = doc("Segments produced.")
    viewers: int = doc("Players reading the streams (HLS and live.mp4).")
    publisher: dict[str, Any] = doc("The publisher's counters.")
    cast: ScreenAnswer | None = doc("The first screen still on, else the last to leave; null for a session that never had a TV.")
    screens: list[ScreenAnswer] = doc("Every TV that showed the session, in the order they joined.")
    stream_url: str = doc("The stream TVs and players fetch.")
    watch_url: str = doc("A page that plays it in a browser.")
    joined: bool | None = docd("In a /start's answer: true when it joined a live session of the identical page.", None)


@dataclass(frozen=True)
class StatusAnswer:
    version: str = doc("pagecast's version.")
    uptime_seconds: int = doc("Seconds since the service started.")
    sessions: list[SessionAnswer] = doc("Every session kept, the newest last (ended ones too, up to 50).")
    active: int = doc("Sessions not yet ended.")


@dataclass(frozen=True)
class StoppedAnswer:
    stopped: list[str] = doc("The sessions asked to stop, or that lost the TV named.")


@dataclass(frozen=True)
class ErrorAnswer:
    error: str = doc("What went wrong and what to do about it.")


@dataclass(frozen=True)
class DeviceAnswer:
    name: str = doc("The TV's friendly name.")
    uuid: str = doc("The TV's Cast uuid.")
    model: str = doc("Its model name.")
    manufacturer: str = doc("Its manufacturer.")
    host: str = doc("Its address.")
    port: int = doc("Its Cast port (8009).")
    source: str = doc("How it was found: mdns, static (PAGECAST_CAST_HOSTS) or address (named by address in a /start).")
    display: bool = doc("It has a screen.")
    last_seen: str | None = doc("When it last answered (ISO 8601).")
    address: str = doc("host, or host:port when the port is not 8009.")
    session: str | None = doc("The session showing on it, if one is.")
    reachable: bool = doc("It answered when asked what it shows.")
    current_app: str | None = doc("The app it shows.")
    screen: dict[str, Any] | str | None = doc("What it shows (app, media, standby, volume), or why it could not be asked.")


@dataclass(frozen=True)
class DevicesAnswer:
    devices: list[DeviceAnswer] = doc("Cast devices found by mDNS or PAGECAST_CAST_HOSTS.")
    mdns: bool = doc("PAGECAST_MDNS: discovery by mDNS is on.")
    static_hosts: list[str] = doc("PAGECAST_CAST_HOSTS.")
    unreachable: dict[str, str] = doc("Static hosts that did not answer, with why.")
    default_device: str | None = doc("PAGECAST_DEFAULT_DEVICE.")


@dataclass(frozen=True)
class HealthAnswer:
    status: str = doc("Always ok: an answer is the liveness.", enum=["ok"])
    version: str = doc("pagecast's version.")
    instance_id: str = doc("This service's id, kept across restarts (PAGECAST_STATE_DIR); also in its mDNS announcement.")
    sessions: int = doc("Sessions not yet ended.")
    max_sessions: int = doc("PAGECAST_MAX_SESSIONS.")
    players: bool = doc("The browser players (hls.js, Shaka) are installed.")
    presets: dict[str, dict[str, Any]] = doc("The screen presets, by name.")
    encoder: dict[str, Any] = doc("Which H.264 encoder sessions use, and why.")
    profiles: dict[str, Any] = doc("PAGECAST_PROFILES_FILE: the file, the profiles in force, and what is wrong with the file (the last good profiles stay in force meanwhile).")


# -- answers as JSON and as schemas ------------------------------------------------------------


def to_json(answer: Any) -> Any:
    """An answer as the JSON the handlers send (``joined`` left out where it is not said)."""
    data = dataclasses.asdict(answer)
    if isinstance(answer, SessionAnswer) and answer.joined is None:
        data.pop("joined")
    return data


def schema_of(cls: type, ref: typing.Callable[[type], dict[str, Any]]) -> dict[str, Any]:
    """The JSON Schema of an answer class; ``ref(cls)`` names a nested answer."""
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cls):
        schema = {**_schema_of_type(hints[f.name], ref), **f.metadata.get("schema", {})}
        props[f.name] = {**schema, "description": f.metadata.get("doc", "")} if "$ref" not in schema else {"allOf": [schema], "description": f.metadata.get("doc", "")}
        if f.default is dataclasses.MISSING:
            required.append(f.name)
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def nested(cls: type) -> list[type]:
    """The answer classes ``cls`` is made of, itself first."""
    out = [cls]
    for hint in typing.get_type_hints(cls).values():
        for part in _parts(hint):
            if dataclasses.is_dataclass(part) and part not in out:
                out += [c for c in nested(part) if c not in out]
    return out


def _parts(hint: Any) -> list[Any]:
    if typing.get_origin(hint) in (Union, types.UnionType, list, dict):
        return [p for a in typing.get_args(hint) for p in _parts(a)]
    return [hint]


_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def _schema_of_type(hint: Any, ref) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [_schema_of_type(a, ref) for a in typing.get_args(hint)]
        if all(set(o) == {"type"} for o in options):
            return {"type": [t for o in options for t in (o["type"] if isinstance(o["type"], list) else [o["type"]])]}
        return {"anyOf": options}
    if origin is list:
        (item,) = typing.get_args(hint)
        return {"type": "array", "items": _schema_of_type(item, ref)}
    if origin is dict:
        _, value = typing.get_args(hint)
        return {"type": "object"} if value is Any else {"type": "object", "additionalProperties": _schema_of_type(value, ref)}
    if hint is Any:
        return {}
    if dataclasses.is_dataclass(hint):
        return ref(hint)
    if hint is float:
        return {"type": "number"}
    return {"type": _SIMPLE[hint]}
