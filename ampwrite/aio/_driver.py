"""The asyncio driver: the same prepared calls, `RetryLoop` and `Polling` as the synchronous
functions, awaited instead of blocked on. Nothing here decides anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, TypeVar

from .._send import Prepared, RetryLoop
from .._transport import Answer
from ..core import Core, Timeout
from ..errors import AmpWriteError
from ..models import Operation, OperationLog, OperationPage, WriteRecordsRequest, WriteResponse
from ..operations import (
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_WAIT_TIMEOUT,
    Paging,
    prepare_get_operation,
    prepare_list_operation_logs,
    prepare_list_operations,
    prepare_wait,
)
from ..result import Err, Ok, Result
from ..retries import RetryConfig
from ..write import prepare_write
from ._attempt import send_attempt
from ._threads import on_thread

__all__ = [
    "get_operation",
    "iter_operations",
    "list_operation_logs",
    "list_operations",
    "send_prepared",
    "wait_for_operation",
    "write_records",
]

T = TypeVar("T")

DECODED_ON_THREAD: Final = 256 * 1024
"""Answers larger than this many bytes are redacted and decoded on a thread of the Core: a few
MiB of JSON would hold the event loop for tens of milliseconds."""


async def _sleep(core: Core, seconds: float) -> None:
    await (core.async_sleep or asyncio.sleep)(seconds)


async def send_prepared(
    core: Core, prepared: Prepared[T] | AmpWriteError
) -> Result[T, AmpWriteError]:
    """Attempt a prepared call as its retry policy allows (an error is returned as it is)."""
    if isinstance(prepared, AmpWriteError):
        return Err(prepared)
    loop = RetryLoop(core, prepared)
    while True:
        outcome = await send_attempt(core, loop.next_request())
        if isinstance(outcome, Answer) and len(outcome.body) > DECODED_ON_THREAD:
            step = await on_thread(core, loop.decide, outcome)
        else:
            step = loop.decide(outcome)
        if isinstance(step, (Ok, Err)):
            return step
        await _sleep(core, step)


async def write_records(
    core: Core,
    request: WriteRecordsRequest | Mapping[str, Any],
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    server_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[WriteResponse, AmpWriteError]:
    """`ampwrite.write_records`, awaited. A cancelled write may have been sent."""
    prepared = prepare_write(
        core, request, retries=retries, timeout=timeout, server_url=server_url, headers=headers
    )
    return await send_prepared(core, prepared)


async def get_operation(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[Operation, AmpWriteError]:
    """`ampwrite.get_operation`, awaited."""
    prepared = prepare_get_operation(
        core,
        project_id_or_name,
        operation_id,
        retries=retries,
        timeout=timeout,
        platform_url=platform_url,
        headers=headers,
    )
    return await send_prepared(core, prepared)


async def list_operation_logs(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[tuple[OperationLog, ...], AmpWriteError]:
    """`ampwrite.list_operation_logs`, awaited."""
    prepared = prepare_list_operation_logs(
        core,
        project_id_or_name,
        operation_id,
        retries=retries,
        timeout=timeout,
        platform_url=platform_url,
        headers=headers,
    )
    return await send_prepared(core, prepared)


async def list_operations(
    core: Core,
    project_id_or_name: str,
    integration_id: str,
    installation_id: str,
    *,
    page_size: int | None = None,
    page_token: str | None = None,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[OperationPage, AmpWriteError]:
    """`ampwrite.list_operations`, awaited."""
    prepared = prepare_list_operations(
        core,
        project_id_or_name,
        integration_id,
        installation_id,
        page_size=page_size,
        page_token=page_token,
        retries=retries,
        timeout=timeout,
        platform_url=platform_url,
        headers=headers,
    )
    return await send_prepared(core, prepared)


async def iter_operations(
    core: Core,
    project_id_or_name: str,
    integration_id: str,
    installation_id: str,
    *,
    page_size: int | None = None,
    page_token: str | None = None,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[Result[OperationPage, AmpWriteError]]:
    """`ampwrite.iter_operations`, as an async iterator: `async for page in ...`."""
    paging = Paging(page_token)
    while not paging.done:
        yield paging.take(
            await list_operations(
                core,
                project_id_or_name,
                integration_id,
                installation_id,
                page_size=page_size,
                page_token=paging.token,
                retries=retries,
                timeout=timeout,
                platform_url=platform_url,
                headers=headers,
            )
        )


async def wait_for_operation(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    timeout: float = DEFAULT_WAIT_TIMEOUT,
    poll_interval: float | None = None,
    max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    retries: RetryConfig | None = None,
    request_timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[Operation, AmpWriteError]:
    """`ampwrite.wait_for_operation`, awaited; it waits between polls with `asyncio.sleep`
    (or `Core.async_sleep`) and times with `core.clock`."""
    polling = prepare_wait(
        core,
        project_id_or_name,
        operation_id,
        timeout=timeout,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        retries=retries,
        request_timeout=request_timeout,
        platform_url=platform_url,
        headers=headers,
    )
    if isinstance(polling, AmpWriteError):
        return Err(polling)
    while True:
        step = polling.decide(await send_prepared(core, polling.next_poll()))
        if isinstance(step, (Ok, Err)):
            return step
        await _sleep(core, step)
