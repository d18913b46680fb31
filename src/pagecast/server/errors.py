"""Domain errors → HTTP statuses: the one table. The domain raises what happened
(``core/errors.py``); only here does that become a status code."""

from __future__ import annotations

from ..core.errors import (
    BodyTooLarge, Conflict, Gone, InvalidRequest, NotFound, PagecastError, ShuttingDown, TooManySessions, Unavailable,
    UnsupportedMediaType,
)

STATUS: dict[type[PagecastError], int] = {
    InvalidRequest: 400,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    BodyTooLarge: 413,
    UnsupportedMediaType: 415,
    TooManySessions: 429,
    ShuttingDown: 503,
    Unavailable: 503,
}


def status_for(exc: PagecastError) -> int:
    """The status of the most specific class of ``exc`` in STATUS; 500 for anything else
    (a domain error reaching the API unmapped is a bug to fix here)."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500
