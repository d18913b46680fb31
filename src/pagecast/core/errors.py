"""The domain's errors. They say what went wrong and what to do, in words a user can act on;
which HTTP status each one becomes is the server's business (``server/errors.py``), not theirs."""

from __future__ import annotations


class PagecastError(Exception):
    """A failure whose message is meant for the user."""


class Refused(PagecastError):
    """A request that cannot be carried out as asked; nothing was started."""


class InvalidRequest(Refused, ValueError):
    """The request itself is wrong: a field, its type, its range."""


class BodyTooLarge(InvalidRequest):
    pass


class UnsupportedMediaType(InvalidRequest):
    pass


class NotFound(Refused):
    """It names something that does not exist (a profile, a device, a session)."""


class NotYet(NotFound):
    """It will exist in a moment (a session still starting, a thumbnail not made yet): ask
    again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class Gone(Refused):
    """It existed and is gone for good (an ended session's picture)."""


class Unavailable(Refused):
    """It cannot be made now (a helper program failed); the message says why."""


class Conflict(Refused):
    """It is valid, but the world is not in a state to carry it out (a busy or unreachable TV,
    two devices of that name, a start that was stopped before it began)."""


class TooManySessions(Refused):
    pass


class ShuttingDown(Refused):
    pass


class SessionFailure(PagecastError):
    """A running session's part failed; the session ends with this as its error, unless the
    part is replaced inside the session. ``kind`` names the failure in the session's restart
    log: ``crash`` (it died or failed) or ``hang`` (it stopped answering)."""

    def __init__(self, *args: object, kind: str = "crash"):
        super().__init__(*args)
        self.kind = kind


class RenderError(SessionFailure):
    """The page cannot be streamed; the message says what went wrong and what to do about it."""


class EncodeError(SessionFailure):
    """The encoder failed; the message carries FFmpeg's last words."""


class CastError(SessionFailure):
    """The TV refused or failed something; the message says what and why."""


class DeviceEnded(Exception):
    """The TV ended the session itself (stop on the remote, another app, standby, gone for
    good): the session stops with ``reason`` and the TV is left as it is."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
