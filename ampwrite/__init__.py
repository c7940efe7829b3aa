"""ampwrite: the Python SDK for Ampersand's Write API.

    from ampwrite import Core, write_records, Ok, Err

    core = Core(api_key="...")
    match write_records(core, request):
        case Ok(response): ...
        case Err(error): ...

An asynchronous write's outcome is read with `get_operation`, `wait_for_operation`,
`list_operation_logs`, `list_operations` and `iter_operations` (see `ampwrite.operations`).

The same functions as coroutines are in `ampwrite.aio`. The models (`ampwrite.models`), the
facade (`AmpWrite`), the operation functions, `ampwrite.aio`, the sandbox and the bulk loader
load only when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors
from ._version import __version__
from .core import Core
from .errors import AmpWriteError
from .result import Err, Ok, Result
from .write import write_records

if TYPE_CHECKING:
    from . import aio, models
    from .facade import AmpWrite
    from .operations import (
        get_operation,
        iter_operations,
        list_operation_logs,
        list_operations,
        wait_for_operation,
    )
    from .retries import RetryConfig

__all__ = [
    "AmpWrite",
    "AmpWriteError",
    "Core",
    "Err",
    "Ok",
    "Result",
    "RetryConfig",
    "__version__",
    "aio",
    "errors",
    "get_operation",
    "iter_operations",
    "list_operation_logs",
    "list_operations",
    "models",
    "wait_for_operation",
    "write_records",
]

_LAZY = {
    "AmpWrite": ("ampwrite.facade", "AmpWrite"),
    "RetryConfig": ("ampwrite.retries", "RetryConfig"),
    **{
        name: ("ampwrite.operations", name)
        for name in (
            "get_operation",
            "iter_operations",
            "list_operation_logs",
            "list_operations",
            "wait_for_operation",
        )
    },
}


def __getattr__(name: str) -> Any:
    if name in ("aio", "models"):  # the asyncio functions (and asyncio), the attrs classes
        return importlib.import_module(f"ampwrite.{name}")
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ampwrite' has no attribute {name!r}")
