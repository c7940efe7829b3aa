"""`Model`, the base class of every model, in a module of its own: the write path asks
whether a value is a model before any model class has loaded (`ampwrite.models` loads when
first used)."""

from __future__ import annotations

from typing import Any

__all__ = ["Model"]


class Model:
    """What every model shares: a repr, equality and a hash over its fields, written once here
    rather than generated for each class (which would make `import ampwrite` slower)."""

    __slots__ = ()

    def _names(self) -> tuple[str, ...]:
        return tuple(field.name for field in type(self).__attrs_attrs__)  # type: ignore[attr-defined]

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._names())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._names())
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Model):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())
