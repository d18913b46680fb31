"""A session's one state, and the moves it may make. Everything else a session reports
(live since, stop reason, error) is data beside it, not a second state."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    STARTING = "starting"
    LIVE = "live"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Serving, or on its way: counts against the session limit and holds its TV."""
        return self in (State.STARTING, State.LIVE)

    @property
    def ended(self) -> bool:
        return self in (State.STOPPED, State.FAILED)


#: Where each state may go. A failed session stays failed: its error is the last word.
MOVES: dict[State, frozenset[State]] = {
    State.STARTING: frozenset({State.LIVE, State.STOPPING, State.STOPPED, State.FAILED}),
    State.LIVE: frozenset({State.STOPPING, State.STOPPED, State.FAILED}),
    State.STOPPING: frozenset({State.STOPPED, State.FAILED}),
    State.STOPPED: frozenset(),
    State.FAILED: frozenset(),
}


def move(current: State, wanted: State) -> State:
    """``wanted`` if the move is allowed, else ``current`` (a late "live" after a stop, a
    "stopped" after a failure): the first ending wins."""
    return wanted if wanted in MOVES[current] else current
