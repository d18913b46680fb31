"""The device's network: listening sockets on its own address, and the faults laid on it.

A fault is state the connections consult: ``silent`` freezes every byte in both directions
(the sender notices only through its own timeouts), ``reset`` aborts connections with a TCP
RST and refuses new ones, ``delay`` holds each outgoing message back.
"""

from __future__ import annotations

import errno
import socket
import struct

import trio

MODES = ("ok", "silent", "reset")


class BindError(RuntimeError):
    """A virtual TV could not listen on its address and port; the message says why."""


class Network:
    """Fault state shared by the CASTV2 and HTTP servers of one device."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self._changed = trio.Event()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"network mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self._changed.set()
        self._changed = trio.Event()

    async def passable(self) -> None:
        """Return once bytes may move; while ``silent`` they wait here, as if in flight."""
        while self.mode == "silent":
            await self._changed.wait()


def _explain(host: str, port: int, exc: OSError) -> str:
    hint = {
        errno.EADDRINUSE: "another virtual TV (or another program) already listens there",
        errno.EADDRNOTAVAIL: "this address is not on any interface (on Linux all of 127.0.0.0/8 is loopback)",
        errno.EACCES: "no permission to bind this port",
    }.get(exc.errno or 0, "")
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}" + (f" ({hint})" if hint else "")


async def open_listener(host: str, port: int) -> trio.SocketListener:
    """A TCP listener on exactly ``host:port``; SO_REUSEADDR so a device can come back at once
    after a previous one on the same address closed (its sockets may sit in TIME_WAIT)."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise BindError(_explain(host, port, exc)) from exc
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


def abort(stream: trio.SocketStream) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed or unplugged peer's stack would."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    stream.socket.close()
