"""Exception groups from Trio nurseries, turned back into the one error a caller expects."""

from __future__ import annotations


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
