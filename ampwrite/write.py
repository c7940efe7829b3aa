"""`write_records`: one write, from request to `Result`, in four stages.

1. validate the request (nothing is sent when it is invalid);
2. build the URL (each path parameter one percent-encoded segment) and the headers;
3. send it, retrying only what the retry policy allows;
4. decode the answer (see `ampwrite._answers`).

It never raises for anything the network, the server or the caller's data does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._call import call_headers, call_settings
from ._headers import header_issues
from ._paths import write_path
from ._send import Prepared, send_prepared
from ._transport import Request
from ._validate import Checked, check_request, unencodable
from ._wire import decode_write_response
from .core import Core, Timeout
from .errors import AmpWriteError, RequestValidationError
from .result import Result

if TYPE_CHECKING:
    from .models import WriteRecordsRequest, WriteResponse
    from .retries import RetryConfig

__all__ = ["prepare_write", "write_records"]


def write_records(
    core: Core,
    request: WriteRecordsRequest | Mapping[str, Any],
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    server_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[WriteResponse, AmpWriteError]:
    """Create, update or delete records; return `Ok(response)` or `Err(error)`.

    `request` is a `WriteRecordsRequest` or a mapping in the API's JSON shape
    (`projectIdOrName`, `integrationId`, `objectName`, `requestBody`). The keyword options
    override the `Core`'s settings for this call; `headers` adds request headers.
    """
    prepared = prepare_write(
        core, request, retries=retries, timeout=timeout, server_url=server_url, headers=headers
    )
    return send_prepared(core, prepared)


def prepare_write(
    core: Core,
    request: WriteRecordsRequest | Mapping[str, Any],
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    server_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Prepared[WriteResponse] | AmpWriteError:
    """Stages 1 and 2, which make no I/O: the write ready to send, or why it cannot be (nothing
    is sent then). The synchronous and the asyncio drivers both start here."""
    if not isinstance(core, Core):
        raise TypeError(f"write_records needs a Core, got {type(core).__name__}")
    checked = _validate(request, headers)
    if isinstance(checked, AmpWriteError):
        return checked
    settings = call_settings(
        core, retries, timeout, server_url, default_url=core.server_url, url_name="server_url"
    )
    if isinstance(settings, AmpWriteError):
        return settings
    config, call_timeout, base_url = settings
    key = core.api_key()
    if isinstance(key, AmpWriteError):
        return key
    try:
        body = json.dumps(
            checked.body, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
    except (ValueError, UnicodeEncodeError, RecursionError):
        return RequestValidationError(unencodable(checked.body, "requestBody"))
    path = write_path(checked.project_id_or_name, checked.integration_id, checked.object_name)
    request_headers = call_headers(core, headers, key, has_body=True)
    attempt = Request(
        "POST", base_url, path, request_headers, body, call_timeout, core.max_response_bytes
    )
    return Prepared(attempt, config, key, decode_write_response)


# -- stage 1 ------------------------------------------------------------------------------------


def _validate(request: object, headers: Mapping[str, str] | None) -> Checked | AmpWriteError:
    checked = check_request(request)
    header_issues_found = header_issues(headers)
    if isinstance(checked, tuple) or header_issues_found:
        issues = (checked if isinstance(checked, tuple) else ()) + header_issues_found
        return RequestValidationError(issues)
    return checked
