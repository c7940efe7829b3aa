"""The client's validation and the sandbox's, written separately, refuse the same shapes.

Each table of invalid requests is run through the other side: what the client refuses, the
sandbox answers 400 (never 2xx or 5xx); what the sandbox refuses, the client refuses
before sending.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import requests

from ampwrite._validate import check_request
from ampwrite.sandbox import Sandbox
from tests.test_sandbox_validation import INVALID_BODIES
from tests.test_validation import INVALID


def _json_safe(value: Any) -> bool:
    """True when JSON carries `value` unchanged (an int key, say, would become a string)."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return repr(json.loads(text)) == repr(value)


def _sendable(request: Any) -> bool:
    """Requests that can travel as JSON and name a full path (the others never reach a server
    as a body: bytes, sets, cycles, non-string keys, or an empty path segment)."""
    if not isinstance(request, dict) or not _json_safe(request):
        return False
    return all(
        isinstance(request.get(name), str) and request.get(name)
        for name in ("projectIdOrName", "integrationId", "objectName")
    ) and set(request) <= {"projectIdOrName", "integrationId", "objectName", "requestBody"}


CLIENT_REFUSED = [
    pytest.param(request, id=name) for name, request, _, _ in INVALID if _sendable(request)
]


def test_most_of_the_client_table_is_sendable() -> None:
    assert len(CLIENT_REFUSED) >= 35


@pytest.mark.parametrize("request_", CLIENT_REFUSED)
def test_the_sandbox_refuses_what_the_client_refuses(
    ampwrite_sandbox: Sandbox, request_: dict[str, Any]
) -> None:
    url = (
        f"{ampwrite_sandbox.url}/projects/{request_['projectIdOrName']}"
        f"/integrations/{request_['integrationId']}/objects/{request_['objectName']}"
    )
    body = json.dumps(request_.get("requestBody"), allow_nan=True)
    answer = requests.post(
        url,
        data=body.encode(),
        headers={"X-Api-Key": ampwrite_sandbox.api_key, "Content-Type": "application/json"},
        timeout=5,
    )

    assert answer.status_code == 400, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert ampwrite_sandbox.records() == []


@pytest.mark.parametrize(
    "body",
    [pytest.param(body, id=name) for name, body, _ in INVALID_BODIES],
)
def test_the_client_refuses_what_the_sandbox_refuses(body: object) -> None:
    request = {"projectIdOrName": "p", "integrationId": "i", "objectName": "o", "requestBody": body}

    assert isinstance(check_request(request), tuple), "the client would have sent it"


def test_non_finite_numbers_are_refused_by_both(ampwrite_sandbox: Sandbox) -> None:
    body = {"groupRef": "g", "type": "create", "record": {"x": math.inf}}
    answer = requests.post(
        f"{ampwrite_sandbox.url}/projects/p/integrations/i/objects/o",
        data=json.dumps(body).encode(),
        headers={"X-Api-Key": ampwrite_sandbox.api_key},
        timeout=5,
    )
    request = {"projectIdOrName": "p", "integrationId": "i", "objectName": "o", "requestBody": body}

    assert answer.status_code == 400
    assert isinstance(check_request(request), tuple)
