"""What every call works out before its first attempt: its settings (the per-call options
over the Core's) and its request headers. The write and the operation functions share them."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from ._headers import API_KEY_HEADER, merge_headers
from ._transport import Timeouts
from .core import Core, check_server_url, check_timeout
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .retries import RetryConfig

__all__ = ["CallSettings", "call_headers", "call_settings"]


class CallSettings(NamedTuple):
    """The retry policy, the per-attempt timeouts and the base URL of one call."""

    retries: RetryConfig
    timeout: Timeouts
    base_url: str


@functools.cache
def _retry_config() -> type[RetryConfig]:
    from .retries import RetryConfig  # loaded by then, with the first Core

    return RetryConfig


def call_settings(
    core: Core, retries: object, timeout: object, url: object, *, default_url: str, url_name: str
) -> CallSettings | ConfigurationError:
    """The Core's settings with this call's options on top. `url` overrides `default_url` and is
    checked as `Core` checks it; `url_name` is the option's name, for the message."""
    config = core.retries if retries is None else retries
    if not isinstance(config, _retry_config()):
        return ConfigurationError(f"retries must be a RetryConfig, got {type(retries).__name__}")
    call_timeout = core.timeout if timeout is None else check_timeout(timeout)
    if isinstance(call_timeout, ConfigurationError):
        return call_timeout
    base_url = (
        default_url
        if url is None
        else check_server_url(url, allow_insecure_http=core.allow_insecure_http, name=url_name)
    )
    if isinstance(base_url, ConfigurationError):
        return base_url
    return CallSettings(config, call_timeout, base_url)


_BODY_HEADERS = frozenset({"content-type"})
"""Headers of the Core's that describe a request body: not sent on a request without one."""


def call_headers(
    core: Core, extra: Mapping[str, str] | None, key: str, *, has_body: bool
) -> dict[str, str]:
    """The headers of one request: the Core's, the caller's `extra` (already checked) on top,
    and the API key, which nothing replaces."""
    if has_body:
        headers = dict(core.base_headers)
    else:
        headers = {
            name: value
            for name, value in core.base_headers.items()
            if name.lower() not in _BODY_HEADERS
        }
    if extra:
        headers = merge_headers(headers, extra)
    headers[API_KEY_HEADER] = key
    return headers
