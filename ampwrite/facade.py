"""`AmpWrite`: the same calls as the functional API, returning values and raising errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import Core, Timeout
from .models import WriteRecordsRequest, WriteResponse
from .result import Err
from .retries import RetryConfig
from .write import write_records

__all__ = ["AmpWrite"]


class Write:
    """`client.write`: the Write API's operations."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def records(
        self,
        request: WriteRecordsRequest | Mapping[str, Any],
        *,
        retries: RetryConfig | None = None,
        timeout: Timeout | None = None,
        server_url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WriteResponse:
        """Write records; return the response or raise the `AmpWriteError` that
        `write_records` would have returned."""
        result = write_records(
            self._core,
            request,
            retries=retries,
            timeout=timeout,
            server_url=server_url,
            headers=headers,
        )
        if isinstance(result, Err):
            raise result.error
        return result.value


class AmpWrite:
    """A client: `AmpWrite(api_key=...).write.records(request)`.

    Takes the same arguments as `Core`; `.core` is the `Core` it uses, for the functional API.
    """

    def __init__(self, api_key: Any = None, **core_options: Any) -> None:
        self.core = Core(api_key, **core_options)
        self.write = Write(self.core)

    def close(self) -> None:
        self.core.close()

    def __enter__(self) -> AmpWrite:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AmpWrite({self.core!r})"
