"""Every public name of the package has a docstring, so `help(...)` answers a newcomer.

The public names are the `__all__` of each public module. A class's public methods and
properties need one too, and a class with an `__init__` of its own names each of its
parameters in its docstring or in that of one of its ampwrite base classes (an error
subclass need not repeat `message` and `attempts`); `help(Sandbox)` shows them with the
signature.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

MODULES = (
    "ampwrite",
    "ampwrite.models",
    "ampwrite.errors",
    "ampwrite.result",
    "ampwrite.retries",
    "ampwrite.operations",
    "ampwrite.aio",
    "ampwrite.bulk",
    "ampwrite.sandbox",
)


def _own_doc(obj: Any) -> str:
    """The docstring written for `obj` itself (not one a dataclass made up from fields)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    if not isinstance(doc, str):
        return ""
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and doc.startswith(obj.__name__):
        return ""  # dataclasses write "Name(field: type, ...)" when there is none
    return doc.strip()


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if inspect.isfunction(member) or isinstance(member, property):
            yield name, member


def _public(module_name: str) -> Iterator[tuple[str, Any]]:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield f"{module_name}.{name}", obj


def _missing(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    missing = [] if _own_doc(module) else [f"{module_name} (the module)"]
    for where, obj in _public(module_name):
        if not _own_doc(obj):
            missing.append(where)
        if not inspect.isclass(obj):
            continue
        for name, member in _members(obj):
            if not _own_doc(member):
                missing.append(f"{where}.{name}")
        init = vars(obj).get("__init__")
        if init is None or attrs.has(obj) or dataclasses.is_dataclass(obj):
            continue  # no __init__ of its own: its fields are its parameters
        doc = " ".join(_own_doc(c) for c in obj.__mro__ if c.__module__.startswith("ampwrite"))
        for parameter in list(inspect.signature(init).parameters)[1:]:
            if parameter not in ("args", "kwargs") and f"`{parameter}`" not in doc:
                missing.append(f"{where}: parameter `{parameter}` in the class docstring")
    return missing


KNOWN_GAPS: dict[str, set[str]] = {}


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_has_a_docstring(module_name: str) -> None:
    missing = set(_missing(module_name))
    gaps = KNOWN_GAPS.get(module_name, set())

    assert sorted(missing - gaps) == []
    assert sorted(gaps - missing) == [], "documented now: drop it from KNOWN_GAPS"


def test_the_walk_finds_a_missing_docstring() -> None:
    class Bare:
        def __init__(self, size: int) -> None:
            self.size = size

        def grow(self) -> None:
            pass

    assert _own_doc(Bare) == "" and _own_doc(Bare.grow) == ""
    assert [name for name, _ in _members(Bare)] == ["grow"]


def test_help_on_the_sandbox_lists_its_options() -> None:
    from ampwrite.sandbox import Sandbox

    doc = _own_doc(Sandbox)
    for option in ("host", "port", "api_key", "faults", "async_delay", "request_log_bytes"):
        assert f"`{option}`" in doc
