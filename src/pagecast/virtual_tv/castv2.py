"""The CASTV2 wire format, I/O-free: length-prefixed protobuf ``CastMessage`` frames.

Each frame is a 4-byte big-endian length and a serialized ``CastMessage`` (pychromecast ships
the generated module: ``pychromecast.generated.cast_channel_pb2``). Control messages are JSON
in ``payload_utf8``; only device authentication uses ``payload_binary``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from pychromecast.generated.cast_channel_pb2 import (
    AuthError,
    CastMessage,
    DeviceAuthMessage,
)

NS_CONNECTION = "urn:x-cast:com.google.cast.tp.connection"
NS_HEARTBEAT = "urn:x-cast:com.google.cast.tp.heartbeat"
NS_DEVICE_AUTH = "urn:x-cast:com.google.cast.tp.deviceauth"
NS_RECEIVER = "urn:x-cast:com.google.cast.receiver"
NS_MEDIA = "urn:x-cast:com.google.cast.media"

TRANSPORT_PREFIX = "urn:x-cast:com.google.cast.tp."

PLATFORM_ID = "receiver-0"
BROADCAST_ID = "*"

#: Cast devices refuse larger messages; a bigger length prefix means a broken or hostile peer.
MAX_MESSAGE_BYTES = 64 * 1024


def is_transport_namespace(namespace: str) -> bool:
    """Heartbeat, connection and auth messages need no virtual connection; all others do."""
    return namespace.startswith(TRANSPORT_PREFIX)


class FrameError(ValueError):
    """The peer sent bytes that are not CASTV2 frames."""


@dataclass(frozen=True)
class Message:
    """One decoded CastMessage; ``payload`` is the parsed JSON object (``{}`` if not JSON)."""

    source_id: str
    destination_id: str
    namespace: str
    payload: dict[str, Any] = field(default_factory=dict)
    binary: bytes | None = None

    @property
    def type(self) -> str | None:
        value = self.payload.get("type")
        return value if isinstance(value, str) else None

    @property
    def request_id(self) -> int:
        value = self.payload.get("requestId")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0


def encode(source_id: str, destination_id: str, namespace: str, payload: dict[str, Any] | bytes) -> bytes:
    """One frame: JSON payloads as STRING, bytes as BINARY."""
    msg = CastMessage()
    msg.protocol_version = CastMessage.CASTV2_1_0
    msg.source_id = source_id
    msg.destination_id = destination_id
    msg.namespace = namespace
    if isinstance(payload, bytes):
        msg.payload_type = CastMessage.BINARY
        msg.payload_binary = payload
    else:
        msg.payload_type = CastMessage.STRING
        msg.payload_utf8 = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    body = msg.SerializeToString()
    return struct.pack(">I", len(body)) + body


def _decode_one(body: bytes) -> Message:
    msg = CastMessage()
    try:
        msg.ParseFromString(body)
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own DecodeError type
        raise FrameError(f"not a CastMessage: {exc}") from None
    if msg.payload_type == CastMessage.BINARY:
        return Message(msg.source_id, msg.destination_id, msg.namespace, {}, msg.payload_binary)
    try:
        payload = json.loads(msg.payload_utf8)
    except ValueError:
        payload = {}
    return Message(msg.source_id, msg.destination_id, msg.namespace, payload if isinstance(payload, dict) else {})


class FrameDecoder:
    """Feed it bytes as they arrive; it hands back whole messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out = []
        while len(self._buffer) >= 4:
            (length,) = struct.unpack_from(">I", self._buffer)
            if length > MAX_MESSAGE_BYTES:
                raise FrameError(f"frame of {length} bytes is larger than {MAX_MESSAGE_BYTES}")
            if len(self._buffer) < 4 + length:
                break
            body = bytes(self._buffer[4 : 4 + length])
            del self._buffer[: 4 + length]
            out.append(_decode_one(body))
        return out


def auth_error() -> bytes:
    """A DeviceAuthMessage saying we cannot authenticate: a virtual device has no Google-signed
    certificate, so senders that verify devices (Google's own) must and will refuse us."""
    reply = DeviceAuthMessage()
    reply.error.error_type = AuthError.INTERNAL_ERROR
    return reply.SerializeToString()
