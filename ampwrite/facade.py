"""`AmpWrite`: the same calls as the functional API, returning values and raising errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, overload

from .core import ApiKey, Core, CoreOptions, Timeout, client_core
from .models import Operation, OperationLog, OperationPage, WriteRecordsRequest, WriteResponse
from .operations import (
    get_operation,
    iter_operations,
    list_operation_logs,
    list_operations,
    wait_for_operation,
)
from .retries import RetryConfig
from .write import write_records

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AmpWrite"]


class CallOptions(TypedDict, total=False):
    """The per-call options every method of the clients takes (as its function does)."""

    retries: RetryConfig | None
    timeout: Timeout | None
    headers: Mapping[str, str] | None


class WriteOptions(CallOptions, total=False):
    """`write.records`' options: those of `write_records`."""

    server_url: str | None


class PlatformOptions(CallOptions, total=False):
    """The options of the operation calls: those of `get_operation`."""

    platform_url: str | None


class ListOptions(PlatformOptions, total=False):
    """`operations.list` and `operations.iterate`'s options: those of `list_operations`."""

    page_size: int | None
    page_token: str | None


class WaitOptions(TypedDict, total=False):
    """`operations.wait`'s options: those of `wait_for_operation`."""

    timeout: float
    poll_interval: float | None
    max_poll_interval: float
    retries: RetryConfig | None
    request_timeout: Timeout | None
    platform_url: str | None
    headers: Mapping[str, str] | None


class Write:
    """`client.write`: the Write API's operations."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def records(
        self, request: WriteRecordsRequest | Mapping[str, Any], **options: Unpack[WriteOptions]
    ) -> WriteResponse:
        """Write records; return the response or raise the `AmpWriteError` that
        `write_records` would have returned."""
        return write_records(self._core, request, **options).unwrap()


class Operations:
    """`client.operations`: what became of asynchronous writes (the Platform API). Each method
    returns what its function in `ampwrite.operations` would return in `Ok`, or raises the
    `AmpWriteError` it would return in `Err`."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def get(
        self, project_id_or_name: str, operation_id: str, **options: Unpack[PlatformOptions]
    ) -> Operation:
        """`get_operation`."""
        return get_operation(self._core, project_id_or_name, operation_id, **options).unwrap()

    def wait(
        self, project_id_or_name: str, operation_id: str, **options: Unpack[WaitOptions]
    ) -> Operation:
        """`wait_for_operation`: raises `OperationTimeoutError` when it gives up."""
        return wait_for_operation(self._core, project_id_or_name, operation_id, **options).unwrap()

    def logs(
        self, project_id_or_name: str, operation_id: str, **options: Unpack[PlatformOptions]
    ) -> tuple[OperationLog, ...]:
        """`list_operation_logs`."""
        return list_operation_logs(self._core, project_id_or_name, operation_id, **options).unwrap()

    def list(
        self,
        project_id_or_name: str,
        integration_id: str,
        installation_id: str,
        **options: Unpack[ListOptions],
    ) -> OperationPage:
        """`list_operations`: one page."""
        return list_operations(
            self._core, project_id_or_name, integration_id, installation_id, **options
        ).unwrap()

    def iterate(
        self,
        project_id_or_name: str,
        integration_id: str,
        installation_id: str,
        **options: Unpack[ListOptions],
    ) -> Iterator[Operation]:
        """`iter_operations`, one operation at a time across pages; a page that cannot be
        read raises its error."""
        for page in iter_operations(
            self._core, project_id_or_name, integration_id, installation_id, **options
        ):
            yield from page.unwrap().results


class Client:
    """What `AmpWrite` and `ampwrite.aio.AsyncAmpWrite` share: how they are made, and `.core`.

    - `Client(api_key=None, *, server_url=..., timeout=..., ...)` takes the arguments of
      `Core`, `api_key` and the keyword `options` (`CoreOptions` lists them, typed), and
      makes its own `Core`, which closing the client closes.
    - `Client(core=core)` works with a `core` you already have (one shared with the
      functional API, say) and takes no other argument; closing the client leaves it open.

    `.core` is the `Core` it uses, for the functional API.
    """

    @overload
    def __init__(self, api_key: ApiKey | None = None, **options: Unpack[CoreOptions]) -> None: ...

    @overload
    def __init__(self, *, core: Core) -> None: ...

    def __init__(
        self,
        api_key: ApiKey | None = None,
        *,
        core: Core | None = None,
        **options: Unpack[CoreOptions],
    ) -> None:
        name = type(self).__name__
        self.core, self._owns_core = client_core(api_key, core, options, client=name)
        self._attach(self.core)

    def _attach(self, core: Core) -> None:
        """Set up the client's parts over `core` (each client has its own)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core!r})"


class AmpWrite(Client):
    """A client: `AmpWrite(api_key=...).write.records(request)`,
    `client.operations.wait(project, operation_id)`; made from `Core`'s arguments or from a
    `core=`, as `Client` says.
    """

    def _attach(self, core: Core) -> None:
        self.write = Write(core)
        self.operations = Operations(core)

    def close(self) -> None:
        """Close the `Core` if this client made it (one passed as `core=` is left open)."""
        if self._owns_core:
            self.core.close()

    def __enter__(self) -> AmpWrite:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
