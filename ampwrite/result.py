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
"""

from __future__ import annotations

from typing import Generic, Literal, NoReturn, TypeAlias, TypeVar

T = TypeVar("T", covariant=True)
E = TypeVar("E", bound=BaseException, covariant=True)

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
