"""`Ok` and `Err`: the two outcomes every functional call of ampwrite returns.

A `Result` is a value, not a control-flow trick: check `res.ok`, read `res.value` or
`res.error`, or pattern-match::

    match write_records(core, request):
        case Ok(response):
            ...
        case Err(error):
            ...

`unwrap()` returns the value or raises the error itself. Both are immutable, compare by
content and pickle.

For a pipeline of calls that each may fail (railway style), the combinators Rust's `Result`
has, each typed so that mypy follows the value and the error through the chain:

- `map(f)`: `Ok(f(value))`; an `Err` passes through unchanged.
- `map_err(f)`: `Err(f(error))` (`f` returns an exception); an `Ok` passes through.
- `and_then(f)`: `f(value)`, itself a `Result`; an `Err` passes through (`f` is not called).
- `or_else(f)`: `f(error)`, itself a `Result` (a recovery); an `Ok` passes through.
- `unwrap_or(default)`: the value, or `default` for an `Err`.
- `unwrap_or_else(f)`: the value, or `f(error)` for an `Err`.

    operation = write_records(core, request).and_then(
        lambda response: wait_for_operation(core, "my-project", response.operation_id)
    )  # Result[Operation, AmpWriteError]

The functions passed in are the caller's: an exception they raise is not caught.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, NoReturn, TypeAlias, TypeVar

T = TypeVar("T", covariant=True)
E = TypeVar("E", bound=BaseException, covariant=True)
U = TypeVar("U")
F = TypeVar("F", bound=BaseException)

__all__ = ["Err", "Ok", "Result"]


class Ok(Generic[T]):
    """A successful outcome holding `value`."""

    __slots__ = ("value",)
    __match_args__ = ("value",)
    value: T

    def __init__(self, value: T) -> None:
        object.__setattr__(self, "value", value)

    @property
    def ok(self) -> Literal[True]:
        """True: this is the successful outcome (mypy narrows on it)."""
        return True

    @property
    def error(self) -> None:
        """None: a success holds no error."""
        return None

    def unwrap(self) -> T:
        """The value."""
        return self.value

    def map(self, f: Callable[[T], U]) -> Ok[U]:
        """`Ok(f(value))`."""
        return Ok(f(self.value))

    def map_err(self, f: Callable[[Any], BaseException]) -> Ok[T]:
        """This `Ok` itself: there is no error to map (`f` is not called)."""
        return self

    def and_then(self, f: Callable[[T], Ok[U] | Err[F]]) -> Ok[U] | Err[F]:
        """`f(value)`: the next step of a pipeline, itself a `Result`."""
        return f(self.value)

    def or_else(self, f: Callable[[Any], object]) -> Ok[T]:
        """This `Ok` itself: there is nothing to recover from (`f` is not called)."""
        return self

    def unwrap_or(self, default: object) -> T:
        """The value (`default` is for an `Err`)."""
        return self.value

    def unwrap_or_else(self, f: Callable[[Any], object]) -> T:
        """The value (`f` is for an `Err`, and is not called)."""
        return self.value

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Ok is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ok) and other.value == self.value

    def __hash__(self) -> int:
        return hash((Ok, self.value))

    def __repr__(self) -> str:
        return f"Ok(value={self.value!r})"

    def __reduce__(self) -> tuple[type[Ok[T]], tuple[T]]:
        return (Ok, (self.value,))


class Err(Generic[E]):
    """A failed outcome holding `error`, an exception that was not raised."""

    __slots__ = ("error",)
    __match_args__ = ("error",)
    error: E

    def __init__(self, error: E) -> None:
        object.__setattr__(self, "error", error)

    @property
    def ok(self) -> Literal[False]:
        """False: this is the failed outcome (mypy narrows on it)."""
        return False

    @property
    def value(self) -> None:
        """None: a failure holds no value."""
        return None

    def unwrap(self) -> NoReturn:
        """Raise the error itself."""
        raise self.error

    def map(self, f: Callable[[Any], object]) -> Err[E]:
        """This `Err` itself: there is no value to map (`f` is not called)."""
        return self

    def map_err(self, f: Callable[[E], F]) -> Err[F]:
        """`Err(f(error))`: another error, often one that says more."""
        return Err(f(self.error))

    def and_then(self, f: Callable[[Any], object]) -> Err[E]:
        """This `Err` itself: the pipeline stops here (`f` is not called)."""
        return self

    def or_else(self, f: Callable[[E], Ok[U] | Err[F]]) -> Ok[U] | Err[F]:
        """`f(error)`: a recovery, itself a `Result`."""
        return f(self.error)

    def unwrap_or(self, default: U) -> U:
        """`default`, since there is no value."""
        return default

    def unwrap_or_else(self, f: Callable[[E], U]) -> U:
        """`f(error)`, since there is no value."""
        return f(self.error)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Err is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Err) and other.error == self.error

    def __hash__(self) -> int:
        return hash((Err, self.error))

    def __repr__(self) -> str:
        return f"Err(error={self.error!r})"

    def __reduce__(self) -> tuple[type[Err[E]], tuple[E]]:
        return (Err, (self.error,))


Result: TypeAlias = Ok[T] | Err[E]
