"""`Ok` and `Err`: what they are (immutable, slotted, picklable, matchable) and what each
combinator does, on both sides, alone and in a pipeline against the sandbox."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any, NoReturn

import pytest

from ampwrite import Core, Err, Ok, Result, wait_for_operation, write_records
from ampwrite.errors import AmpWriteError, APIError, RequestValidationError, ValidationIssue
from ampwrite.models import Operation
from ampwrite.sandbox import Sandbox
from tests.requests_data import single

BOOM = ValueError("boom")


def never(_: object) -> NoReturn:
    raise AssertionError("a combinator called a function it should have passed over")


def halve(number: int) -> Result[int, ValueError]:
    return Ok(number // 2) if number % 2 == 0 else Err(ValueError(f"{number} is odd"))


# -- the values themselves ----------------------------------------------------------------------


@pytest.mark.parametrize("result", [Ok(1), Err(BOOM)], ids=["Ok", "Err"])
def test_immutable_and_slotted(result: Result[int, ValueError]) -> None:
    with pytest.raises(AttributeError):
        result.value = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        result.error = BOOM  # type: ignore[misc]
    assert not hasattr(result, "__dict__")


@pytest.mark.parametrize("result", [Ok([1, 2]), Err(KeyError("k"))], ids=["Ok", "Err"])
def test_pickle_and_copy_keep_the_content(result: Result[list[int], KeyError]) -> None:
    for twin in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result)):
        assert type(twin) is type(result)
        assert repr(twin) == repr(result)
    assert pickle.loads(pickle.dumps(Ok([1, 2]))) == Ok([1, 2])


def test_pattern_matching_and_equality() -> None:
    def describe(result: Result[int, ValueError]) -> str:
        match result:
            case Ok(value):
                return f"ok {value}"
            case Err(error):
                return f"err {error}"

    assert describe(Ok(3)) == "ok 3"
    assert describe(Err(BOOM)) == "err boom"
    assert Ok(1) == Ok(1) and Ok(1) != Ok(2) and Ok(1) != Err(BOOM)
    assert hash(Ok(1)) == hash(Ok(1))


# -- each combinator, on each side --------------------------------------------------------------


def test_map() -> None:
    assert Ok(2).map(lambda n: n * 10) == Ok(20)
    err: Err[ValueError] = Err(BOOM)
    assert err.map(never) is err


def test_map_err() -> None:
    ok = Ok(2)
    assert ok.map_err(never) is ok
    mapped = Err(BOOM).map_err(lambda e: KeyError(f"wrapped {e}"))
    assert isinstance(mapped, Err) and isinstance(mapped.error, KeyError)
    assert mapped.error.args == ("wrapped boom",)


def test_and_then() -> None:
    assert Ok(8).and_then(halve) == Ok(4)
    assert Ok(8).and_then(halve).and_then(halve).and_then(halve) == Ok(1)
    stopped = Ok(8).and_then(halve).and_then(halve).and_then(halve).and_then(halve)
    assert isinstance(stopped, Err) and str(stopped.error) == "1 is odd"
    # once an Err, the rest of the chain is passed over
    assert stopped.and_then(never).map(never) is stopped


def test_or_else() -> None:
    ok = Ok(1)
    assert ok.or_else(never) is ok
    assert Err(BOOM).or_else(lambda e: Ok(f"recovered from {e}")) == Ok("recovered from boom")
    still: Result[object, KeyError] = Err(BOOM).or_else(lambda e: Err(KeyError(str(e))))
    assert isinstance(still, Err) and isinstance(still.error, KeyError)


def test_unwrap_or_and_unwrap_or_else() -> None:
    assert Ok(1).unwrap_or(0) == 1
    assert Err(BOOM).unwrap_or(0) == 0
    assert Ok(1).unwrap_or_else(never) == 1
    assert Err(BOOM).unwrap_or_else(lambda e: len(str(e))) == 4


def test_exceptions_of_the_callers_function_are_not_caught() -> None:
    def explode(_: object) -> Any:
        raise RuntimeError("the caller's bug")

    calls: list[Callable[[], object]] = [
        lambda: Ok(1).map(explode),
        lambda: Ok(1).and_then(explode),
        lambda: Err(BOOM).map_err(explode),
        lambda: Err(BOOM).or_else(explode),
        lambda: Err(BOOM).unwrap_or_else(explode),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="the caller's bug"):
            call()


def test_unwrap_still_raises_the_error_itself() -> None:
    with pytest.raises(ValueError) as raised:
        Err(BOOM).unwrap()
    assert raised.value is BOOM


# -- a pipeline of real calls -------------------------------------------------------------------


def _validated(request: dict[str, Any]) -> Result[dict[str, Any], AmpWriteError]:
    """A caller's own check before writing, in the pipeline's terms."""
    if "email" not in request["requestBody"]["record"]:
        issue = ValidationIssue("requestBody.record.email", "our app needs an email")
        return Err(RequestValidationError((issue,)))
    return Ok(request)


def _pipeline(core: Core, request: dict[str, Any]) -> Result[Operation, AmpWriteError]:
    return (
        _validated(request)
        .and_then(lambda checked: write_records(core, checked))
        .and_then(lambda written: wait_for_operation(core, "proj", written.operation_id))
    )


def test_pipeline_writes_and_follows_the_operation(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    outcome = _pipeline(ampwrite_core, single(mode="asynchronous"))
    assert isinstance(outcome, Ok), outcome
    assert outcome.value.status == "success"
    assert [r["email"] for r in ampwrite_sandbox.records(object_name="contacts")] == [
        "ada@example.com"
    ]


def test_pipeline_stops_at_the_first_err(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    outcome = _pipeline(ampwrite_core, single(record={"name": "no email"}))
    assert isinstance(outcome, Err) and isinstance(outcome.error, RequestValidationError)
    assert outcome.error.issues[0].path == "requestBody.record.email"
    assert ampwrite_sandbox.records(object_name="contacts") == []

    wrong_project = (
        _validated(single(mode="asynchronous"))
        .and_then(lambda checked: write_records(ampwrite_core, checked))
        .and_then(lambda written: wait_for_operation(ampwrite_core, "other", written.operation_id))
        .map(lambda operation: operation.status)
    )
    assert isinstance(wrong_project, Err) and isinstance(wrong_project.error, APIError)
    assert wrong_project.error.status == 404
