"""Exception groups from Trio nurseries, turned back into the one error a caller expects."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio


def flatten(exc: BaseException) -> list[BaseException]:
    """The leaves of a (possibly nested) exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in flatten(sub)]
    return [exc]


def first_leaf(exc: BaseException) -> BaseException:
    return flatten(exc)[0]


def reraise_alone(exc: BaseException):
    """Raise ``exc`` out of an ``except`` block without chaining the group to it."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


@contextmanager
def one_error(*preferred: type[BaseException]) -> Iterator[None]:
    """Callers want the one error of an internal nursery, not its ExceptionGroup: the first
    leaf of a ``preferred`` type, else the only leaf that is not a cancellation, else (all
    cancellations) the first; several real errors stay a group."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = flatten(group)
        for wanted in preferred:
            found = [e for e in leaves if isinstance(e, wanted)]
            if found:
                reraise_alone(found[0])
        real = [e for e in leaves if not isinstance(e, trio.Cancelled)]
        if len(real) == 1:
            reraise_alone(real[0])
        if not real:
            reraise_alone(leaves[0])
        raise
