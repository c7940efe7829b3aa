"""`Ok` and `Err`: the two outcomes every functional call of ampwrite returns.

A `Result` is a value, not a control-flow trick: check `res.ok`, read `res.value` or
`res.error`, or pattern-match::

    match write_records(core, request):
        case Ok(response):
            ...
        case Err(error):
            ...

`unwrap()` returns the value or raises the error itself.
"""

from __future__ import annotations

from typing import Generic, Literal, NoReturn, TypeAlias, TypeVar

import attrs

T = TypeVar("T", covariant=True)
E = TypeVar("E", bound=BaseException, covariant=True)

__all__ = ["Err", "Ok", "Result"]


@attrs.frozen
class Ok(Generic[T]):
    """A successful outcome holding `value`."""

    value: T

    @property
    def ok(self) -> Literal[True]:
        return True

    @property
    def error(self) -> None:
        return None

    def unwrap(self) -> T:
        return self.value


@attrs.frozen
class Err(Generic[E]):
    """A failed outcome holding `error`, an exception that was not raised."""

    error: E

    @property
    def ok(self) -> Literal[False]:
        return False

    @property
    def value(self) -> None:
        return None

    def unwrap(self) -> NoReturn:
        raise self.error


Result: TypeAlias = Ok[T] | Err[E]
