"""200 malformed tool calls to a running `ampwrite mcp` (hypothesis draws the tool name and
the arguments: random JSON, and valid calls with one thing broken): the server answers every
one with a result, a tool error for each bad one and never an internal error, stays alive,
and the sandbox behind it gets no invalid request (it validates every request as the API
does, and would answer an invalid one 400). A call refused as invalid sends nothing at all.
CI runs a fixed seed; set AMPWRITE_FUZZ_EXAMPLES to run more."""

from __future__ import annotations

import copy
import json
import os
import pathlib
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp extra is not installed: pip install 'ampwrite[mcp]'")

from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampwrite.sandbox import Sandbox
from tests.mcp_harness import payload, stdio_session

EXAMPLES = int(os.environ.get("AMPWRITE_FUZZ_EXAMPLES", "200"))
KEY = "mcp-fuzz-key-0b5d2e6f7a91"
CONTRACT = pathlib.Path(__file__).parent / "contract" / "ampersand-write-openapi.json"
WRITE_PATH = "/projects/{projectIdOrName}/integrations/{integrationId}/objects/{objectName}"
TOOL_NAMES = (
    "write_records",
    "validate_write",
    "get_operation",
    "wait_for_operation",
    "list_operation_logs",
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _valid_writes() -> list[dict[str, Any]]:
    document = json.loads(CONTRACT.read_text(encoding="utf-8"))
    content = document["paths"][WRITE_PATH]["post"]["requestBody"]["content"]["application/json"]
    where = {"projectIdOrName": "proj-1", "integrationId": "int-1", "objectName": "contacts"}
    return [{**where, "requestBody": e["value"]} for e in content["examples"].values()]


VALID_WRITES = _valid_writes()
BODY_KEYS = sorted({key for call in VALID_WRITES for key in call["requestBody"]})


def _broken(draw: Callable[[Any], Any]) -> dict[str, Any]:
    """A valid write with one thing broken (or, rarely, left valid: then it may be sent)."""
    call: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(VALID_WRITES)))
    body = call["requestBody"]
    how = draw(
        st.sampled_from(
            [
                "drop-top",
                "drop-body",
                "replace-top",
                "replace-body",
                "unknown-key",
                "batch-size",
                "batch-item",
                "path-value",
                "bound",
            ]
        )
    )
    if how == "drop-top":
        del call[draw(st.sampled_from(sorted(call)))]
    elif how == "drop-body":
        del body[draw(st.sampled_from(sorted(body)))]
    elif how == "replace-top":
        call[draw(st.sampled_from(sorted(call)))] = draw(json_values)
    elif how == "replace-body":
        body[draw(st.sampled_from(BODY_KEYS))] = draw(json_values)
    elif how == "unknown-key":
        target = draw(st.sampled_from([call, body]))
        target[draw(st.sampled_from(["group_ref", "Type", "records", "extra", "batchpolicy"]))] = 1
    elif how == "batch-size":
        body.pop("record", None)
        size = draw(st.sampled_from([0, 101, 150]))
        body["batch"] = [{"record": {"n": i}} for i in range(size)]
    elif how == "batch-item":
        body.pop("record", None)
        body["batch"] = [{"record": {"n": 0}}, draw(json_values)]
    elif how == "path-value":
        name = draw(st.sampled_from(["projectIdOrName", "integrationId", "objectName"]))
        call[name] = draw(st.sampled_from(["", 0, None, [], {"a": 1}, True]))
    else:
        body["retryPolicy"] = {"deadlineHours": draw(st.sampled_from([0, 49, -1, 1.5, "2"]))}
    return call


@st.composite
def broken_writes(draw: Callable[[Any], Any]) -> dict[str, Any]:
    return _broken(draw)


_OPERATION_EXTRAS = {
    "timeoutSeconds": st.one_of(json_values, st.floats(min_value=-5, max_value=1e7)),
    "pollIntervalSeconds": json_values,
    "extra": json_values,
}
operation_arguments = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "projectIdOrName": json_values,
            "operationId": json_values,
            **_OPERATION_EXTRAS,
        },
    ),
    st.fixed_dictionaries(  # ids that pass, for a read of an operation that does not exist
        {
            "projectIdOrName": st.just("proj-1"),
            "operationId": st.text(min_size=1, max_size=12),
        },
        optional=_OPERATION_EXTRAS,
    ),
)

tool_calls = st.tuples(
    # one name in ten is no tool's
    st.integers(0, 9).flatmap(
        lambda n: st.text(max_size=12) if n == 0 else st.sampled_from(TOOL_NAMES)
    ),
    st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=10), json_values, max_size=5),
        broken_writes(),
        operation_arguments,
    ),
)


def test_malformed_tool_calls_never_crash_the_server_or_send_an_invalid_request() -> None:
    verdicts: list[str] = []
    with (
        Sandbox(api_key=KEY) as sandbox,
        tempfile.NamedTemporaryFile("w+", encoding="utf-8") as errlog,
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(
            stdio_session(
                # --max-wait bounds a wait on an id that happens to exist (none should)
                ["--server-url", sandbox.url, "--platform-url", sandbox.url, "--max-wait", "1"],
                {"AMPERSAND_API_KEY": KEY},
                errlog,
            )
        ) as session,
    ):

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize="AMPWRITE_FUZZ_EXAMPLES" not in os.environ,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(call=tool_calls)
        def one(call: tuple[str, dict[str, Any] | None]) -> None:
            name, arguments = call
            before = len(sandbox.requests)
            result = portal.call(session.call_tool, name, arguments)
            body = payload(result)
            sent = len(sandbox.requests) - before
            assert KEY not in json.dumps(body)
            if not result.is_error:
                verdicts.append("ok")
                return
            verdicts.append(body["error"])
            assert body["error"] != "InternalError", body
            assert "Traceback" not in body["message"]
            if body["error"] in ("RequestValidationError", "UnknownTool", "RepeatedWrite"):
                assert sent == 0, body
                assert body.get("issues") or body["error"] != "RequestValidationError"
            if name not in TOOL_NAMES:
                assert body["error"] == "UnknownTool"

        one()
        alive = portal.call(session.call_tool, "validate_write", VALID_WRITES[0])
        assert not alive.is_error
        sandbox.wait_idle()
        statuses = [entry.status for entry in sandbox.requests]
        errlog.flush()
        logged = pathlib.Path(errlog.name).read_text(encoding="utf-8")

    assert len(verdicts) == EXAMPLES
    assert 400 not in statuses, "the server sent a request the API refuses as invalid"
    # The draws are worth something only if most calls are refused as invalid
    counts = {verdict: verdicts.count(verdict) for verdict in set(verdicts)}
    assert counts.get("RequestValidationError", 0) > EXAMPLES // 2, counts
    assert statuses, "no call was valid enough to be sent: the draws test too little"
    assert "Traceback" not in logged and KEY not in logged
