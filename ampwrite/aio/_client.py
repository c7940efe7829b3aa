"""`AsyncAmpWrite`: the facade of `ampwrite.aio`, returning values and raising errors."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..core import Core
from ..facade import Client, ListOptions, PlatformOptions, WaitOptions, WriteOptions
from ..models import Operation, OperationLog, OperationPage, WriteRecordsRequest, WriteResponse
from . import _driver
from ._bulk import AsyncBulkWrites
from ._bulk import write_many as _write_many

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncAmpWrite"]


class AsyncWrite:
    """`client.write`: the Write API's operations, awaited."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def records(
        self,
        request: WriteRecordsRequest | Mapping[str, Any],
        **options: Unpack[WriteOptions],
    ) -> WriteResponse:
        """`aio.write_records`: the response, or raises its `AmpWriteError`. A cancelled
        write may have been sent."""
        return (await _driver.write_records(self._core, request, **options)).unwrap()

    def many(self, records: Iterable[Any] | AsyncIterable[Any], **options: Any) -> AsyncBulkWrites:
        """`aio.write_many`: `async for outcome in client.write.many(records, ...)`."""
        return _write_many(self._core, records, **options)


class AsyncOperations:
    """`client.operations`: what became of asynchronous writes, awaited. Each method returns
    what its coroutine in `ampwrite.aio` would return in `Ok`, or raises its `Err`."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def get(
        self, project_id_or_name: str, operation_id: str, **options: Unpack[PlatformOptions]
    ) -> Operation:
        """`aio.get_operation`."""
        return (
            await _driver.get_operation(self._core, project_id_or_name, operation_id, **options)
        ).unwrap()

    async def wait(
        self, project_id_or_name: str, operation_id: str, **options: Unpack[WaitOptions]
    ) -> Operation:
        """`aio.wait_for_operation`: raises `OperationTimeoutError` when it gives up."""
        return (
            await _driver.wait_for_operation(
                self._core, project_id_or_name, operation_id, **options
            )
        ).unwrap()

    async def logs(
        self, project_id_or_name: str, operation_id: str, **options: Unpack[PlatformOptions]
    ) -> tuple[OperationLog, ...]:
        """`aio.list_operation_logs`."""
        return (
            await _driver.list_operation_logs(
                self._core, project_id_or_name, operation_id, **options
            )
        ).unwrap()

    async def list(
        self,
        project_id_or_name: str,
        integration_id: str,
        installation_id: str,
        **options: Unpack[ListOptions],
    ) -> OperationPage:
        """`aio.list_operations`: one page."""
        return (
            await _driver.list_operations(
                self._core, project_id_or_name, integration_id, installation_id, **options
            )
        ).unwrap()

    async def iterate(
        self,
        project_id_or_name: str,
        integration_id: str,
        installation_id: str,
        **options: Unpack[ListOptions],
    ) -> AsyncIterator[Operation]:
        """`aio.iter_operations`, one operation at a time across pages; a page that cannot
        be read raises its error."""
        async for page in _driver.iter_operations(
            self._core, project_id_or_name, integration_id, installation_id, **options
        ):
            for operation in page.unwrap().results:
                yield operation


class AsyncAmpWrite(Client):
    """The asyncio client: `async with AsyncAmpWrite() as client:` then
    `await client.write.records(request)`, `await client.operations.wait(project, id)`,
    `async for outcome in client.write.many(records, ...)`.

    Made as `AmpWrite` is (see `ampwrite.facade.Client`): from the arguments of `Core`,
    making its own `Core`, which `aclose()` closes; or from a `core=` you already have, which
    it leaves open.
    """

    def _attach(self, core: Core) -> None:
        self.write = AsyncWrite(core)
        self.operations = AsyncOperations(core)

    async def aclose(self) -> None:
        """Close the Core, if this client made it."""
        if self._owns_core:
            self.core.close()

    async def __aenter__(self) -> AsyncAmpWrite:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
