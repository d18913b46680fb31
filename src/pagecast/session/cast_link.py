"""One CASTV2 connection to one Cast device, through pychromecast, bridged into Trio.

pychromecast runs a socket thread per connection and blocks in its calls. Here every
blocking call runs in ``trio.to_thread``, and every listener callback (on pychromecast's
thread) is handed to Trio with the run's token without ever blocking that thread: it becomes
an event on the link's channel. A link is closed (its thread joined) however its owner leaves.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from uuid import UUID

import trio

from ..core.device import Device
from ..core.errors import CastError
from ..core.screen import NS_MEDIA, Media, ReceiverView, Screen, Stream

log = logging.getLogger(__name__)


class LinkLost(Exception):
    pass


@dataclass(frozen=True)
class ConnectionChanged:
    """pychromecast's connection status: CONNECTING, CONNECTED, DISCONNECTED, FAILED, LOST…"""

    status: str


@dataclass(frozen=True)
class ReceiverChanged:
    """A RECEIVER_STATUS came (the app, power, volume): the watcher reads the device's status
    as it stands then (``Link.status``), since a status queued earlier may be out of date."""


@dataclass(frozen=True)
class MediaChanged:
    media: Media


@dataclass(frozen=True)
class LoadFailed:
    """The TV refused a LOAD (LOAD_FAILED), ours or anyone's on its media channel."""

    error_code: int


@dataclass(frozen=True)
class LaunchFailed:
    """The TV refused to launch an app (LAUNCH_ERROR)."""

    reason: str


LinkEvent = ConnectionChanged | ReceiverChanged | MediaChanged | LoadFailed | LaunchFailed


class Link:
    """One CASTV2 connection to one device (one pychromecast ``Chromecast`` and its thread)."""

    def __init__(self, device: Device, connect_timeout: float):
        self.device = device
        self.connect_timeout = connect_timeout
        self.cast: Any = None
        self._token = trio.lowlevel.current_trio_token()
        self._send, self.events = trio.open_memory_channel[LinkEvent](math.inf)
        self.lost: str | None = None
        self.handling: trio.CancelScope | None = None  # the watcher's current event handler

    # --- called on pychromecast's threads ---------------------------------------------------
    def _post(self, event: LinkEvent) -> None:
        try:
            self._token.run_sync_soon(self._deliver, event)
        except trio.RunFinishedError:
            pass

    def _deliver(self, event: LinkEvent) -> None:
        try:
            self._send.send_nowait(event)
        except trio.ClosedResourceError:
            pass

    def new_cast_status(self, status: Any) -> None:
        self._post(ReceiverChanged())

    def new_media_status(self, status: Any) -> None:
        self._post(MediaChanged(Media.of(status)))

    def load_media_failed(self, queue_item_id: int, error_code: int) -> None:
        self._post(LoadFailed(error_code))

    def new_connection_status(self, status: Any) -> None:
        self._post(ConnectionChanged(status.status))

    def new_launch_error(self, failure: Any) -> None:
        self._post(LaunchFailed(str(failure.reason)))

    def mark_lost(self, reason: str) -> None:
        """Called from Trio: the watcher reading ``events`` sees the end of the stream, and
        stops waiting on this link in the handler it is running."""
        self.lost = self.lost or reason
        self._send.close()
        if self.handling is not None:
            self.handling.cancel()

    def _open_blocking(self) -> Any:
        import pychromecast
        from pychromecast.const import CAST_TYPE_CHROMECAST
        from pychromecast.models import CastInfo, HostServiceInfo

        d = self.device
        info = CastInfo({HostServiceInfo(d.host, d.port)}, UUID(d.uuid), d.model, d.name, d.host, d.port, CAST_TYPE_CHROMECAST, d.manufacturer)
        # tries=1: reconnection is ours (bounded backoff, liveness checks), not the thread's.
        cast = pychromecast.Chromecast(info, tries=1, timeout=self.connect_timeout, retry_wait=0.1)
        _serialize_writes(cast.socket_client)
        cast.register_status_listener(self)
        cast.media_controller.register_status_listener(self)
        cast.register_connection_listener(self)
        cast.register_launch_error_listener(self)
        failed = threading.Event()
        cast.register_connection_listener(_OnFailure(failed))
        deadline = time.monotonic() + self.connect_timeout + 1
        try:
            cast.socket_client.start()
            while not cast.status_event.wait(0.05):
                if failed.is_set():
                    raise ConnectionRefusedError("connection failed")
                if time.monotonic() > deadline:
                    raise TimeoutError("no status")
        except BaseException:
            cast.disconnect(timeout=self.connect_timeout + 2)
            raise
        return cast

    # --- called from Trio -------------------------------------------------------------------
    async def open(self) -> None:
        from pychromecast.error import PyChromecastError

        try:
            self.cast = await trio.to_thread.run_sync(self._open_blocking)
        except (PyChromecastError, OSError) as exc:
            why = "connection refused" if isinstance(exc, ConnectionRefusedError) else f"no answer within {self.connect_timeout:g} s"
            raise LinkLost(f"{why} on {self.device.host}:{self.device.port}") from None

    async def aclose(self) -> None:
        """Disconnect and join pychromecast's thread; shielded, because a thread must not outlive us."""
        self._send.close()
        if self.cast is None:
            return
        cast, self.cast = self.cast, None
        with trio.CancelScope(shield=True):
            try:
                await trio.to_thread.run_sync(cast.disconnect, self.connect_timeout + 2)
            except TimeoutError:
                log.error("pychromecast's thread for %s did not stop within %.0f s", self.device.name, self.connect_timeout + 2)

    @property
    def status(self) -> Any:
        return self.cast.status if self.cast is not None else None

    @property
    def receiver(self) -> ReceiverView | None:
        return ReceiverView.of(self.status)

    async def request(
        self, what: str, send: Callable[[Callable[[bool, dict | None], None]], None], timeout: float = 10.0, expect: str | None = None,
    ) -> dict | None:
        """Send with ``send(callback)`` on a worker thread and await the device's reply (of type
        ``expect``, when given: pychromecast hands over any reply to the request id)."""
        from pychromecast.error import PyChromecastError

        done = trio.Event()
        outcome: dict[str, Any] = {}

        def arrived(ok: bool, response: dict | None) -> None:
            outcome.update(ok=ok, response=response)
            done.set()

        def callback(ok: bool, response: dict | None) -> None:
            try:
                self._token.run_sync_soon(arrived, ok, response)
            except trio.RunFinishedError:
                pass

        try:
            await trio.to_thread.run_sync(send, callback)
        except PyChromecastError as exc:
            raise LinkLost(f"{what}: {type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise LinkLost(f"{what}: {exc}") from None
        with trio.move_on_after(timeout):
            await done.wait()
        if not done.is_set():
            raise LinkLost(f"{what}: no answer within {timeout:g} s")
        response = outcome["response"]
        if not outcome["ok"]:
            if response is None:
                raise LinkLost(f"{what}: the connection closed before the answer")
            reason = response.get("reason") or response.get("detailedErrorCode") or response.get("type")
            raise CastError(f"{what} refused by {self.device.name}: {reason}")
        if expect and response is not None and response.get("type") != expect:
            reason = " ".join(str(response[k]) for k in ("type", "reason", "detailedErrorCode") if response.get(k) is not None)
            raise CastError(f"{what} refused by {self.device.name}: {reason}")
        return response

    async def get_status(self, timeout: float) -> dict | None:
        return await self.request("status", lambda cb: self.cast.socket_client.receiver_controller.update_status(callback_function=cb), timeout)

    async def get_media(self, timeout: float = 3.0) -> Media | None:
        status = self.status
        if status is None or NS_MEDIA not in (status.namespaces or []):
            return None
        mc = self.cast.media_controller
        response = await self.request("media status", lambda cb: mc.update_status(callback_function=cb), timeout)
        return Media.from_message(response or {})

    async def launch(self, app_id: str, timeout: float = 15.0) -> None:
        rc = self.cast.socket_client.receiver_controller
        await self.request(f"launching app {app_id}", lambda cb: rc.launch_app(app_id, force_launch=True, callback_function=cb), timeout)

    async def load(self, stream: Stream, *, current_time: float | None = None, timeout: float = 30.0) -> Media | None:
        mc = self.cast.media_controller

        def send(cb):
            mc.play_media(
                stream.url, stream.content_type, title=stream.title, stream_type="LIVE" if current_time is None else "BUFFERED",
                current_time=current_time, media_info=stream.media_info, callback_function=cb,
            )

        response = await self.request("LOAD", send, timeout, expect="MEDIA_STATUS")
        return Media.from_message(response or {})

    async def stop_app(self, timeout: float = 10.0) -> None:
        rc = self.cast.socket_client.receiver_controller
        await self.request("stopping the app", lambda cb: rc.stop_app(callback_function=cb), timeout)

    async def set_volume(self, level: float, timeout: float = 5.0) -> None:
        sc = self.cast.socket_client
        await self.request(
            "setting the volume",
            lambda cb: sc.receiver_controller.send_message({"type": "SET_VOLUME", "volume": {"level": level}}, callback_function=cb),
            timeout,
        )


    async def set_muted(self, muted: bool, timeout: float = 5.0) -> None:
        sc = self.cast.socket_client
        await self.request(
            "muting" if muted else "unmuting",
            lambda cb: sc.receiver_controller.send_message({"type": "SET_VOLUME", "volume": {"muted": muted}}, callback_function=cb),
            timeout,
        )


async def peek(device: Device, timeout: float) -> Screen | str:
    """What ``device`` shows now (a short connection of its own), or why it could not be asked."""
    link = Link(device, timeout)
    try:
        await link.open()
        media = None
        try:
            media = await link.get_media(timeout)
        except (LinkLost, CastError):
            pass
        return Screen.of(link.status, media)
    except LinkLost as exc:
        return f"unreachable: {exc}"
    finally:
        await link.aclose()


def _serialize_writes(socket_client: Any) -> None:
    """pychromecast writes to its TLS socket from its own thread (heartbeat, CONNECTs) and from
    the caller's (our worker threads) without a lock; two writes at once corrupt the TLS stream,
    the TV drops the connection and the request in flight is lost (home-assistant/core#111762).
    Every write of this connection goes through one lock."""
    lock = threading.RLock()
    unlocked = socket_client.send_message

    def send_message(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return unlocked(*args, **kwargs)

    socket_client.send_message = send_message


class _OnFailure:
    """Sets ``event`` when pychromecast gives up a connection attempt (on its thread)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def new_connection_status(self, status: Any) -> None:
        if status.status in ("FAILED", "DISCONNECTED", "FAILED_RESOLVE"):
            self.event.set()
