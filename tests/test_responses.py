"""The accessors of write answers, against the sandbox: `as_single()`, `as_batch()` and
`SingleWriteResponse.record_id`, which give a caller the type they expect or say clearly why
the answer is not of that kind."""

from __future__ import annotations

import pytest

from ampwrite import AmpWrite, Core, write_records
from ampwrite.errors import AmpWriteError, ResponseShapeError
from ampwrite.models import BatchWriteResponse, SingleWriteResponse
from ampwrite.sandbox import Sandbox
from tests.requests_data import batch, single


def test_a_synchronous_create_gives_its_record_id(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    response = write_records(ampwrite_core, single()).unwrap()
    single_answer = response.as_single()
    assert single_answer is response and isinstance(single_answer, SingleWriteResponse)
    (stored,) = ampwrite_sandbox.records(object_name="contacts")
    assert single_answer.record_id == stored["id"]
    assert single_answer.result is not None
    assert single_answer.record_id == single_answer.result.record_id


def test_an_asynchronous_write_has_no_record_id_and_says_what_to_do(ampwrite_core: Core) -> None:
    response = write_records(ampwrite_core, single(mode="asynchronous")).unwrap().as_single()
    with pytest.raises(ResponseShapeError, match="asynchronous") as raised:
        response.record_id  # noqa: B018
    assert response.operation_id in str(raised.value)
    assert "wait_for_operation" in str(raised.value)
    assert isinstance(raised.value, AmpWriteError) and isinstance(raised.value, ValueError)


def test_a_delete_has_no_record_id(ampwrite_core: Core) -> None:
    created = write_records(ampwrite_core, single()).unwrap().as_single().record_id
    deleted = write_records(ampwrite_core, single(type="delete", record={"id": created}))
    response = deleted.unwrap().as_single()
    assert response.result is not None and response.result.success
    with pytest.raises(ResponseShapeError, match="successful create or update only"):
        response.record_id  # noqa: B018


def test_a_batch_answer_is_a_batch(ampwrite_core: Core) -> None:
    response = write_records(ampwrite_core, batch(3)).unwrap()
    counts = response.as_batch()
    assert counts is response and isinstance(counts, BatchWriteResponse)
    assert (counts.success_count, counts.failure_count) == (3, 0)
    with pytest.raises(ResponseShapeError, match=r"got a BatchWriteResponse .* use as_batch\(\)"):
        response.as_single()


def test_a_single_answer_is_not_a_batch(ampwrite_core: Core) -> None:
    response = write_records(ampwrite_core, single()).unwrap()
    with pytest.raises(ResponseShapeError, match=r"got a SingleWriteResponse .* as_single\(\)"):
        response.as_batch()


def test_the_facade_chain_reads_without_none_checks(ampwrite_sandbox: Sandbox) -> None:
    url = ampwrite_sandbox.url
    with AmpWrite(ampwrite_sandbox.api_key, server_url=url) as client:
        record_id = client.write.records(single()).as_single().record_id
        written = client.write.records(batch(2)).as_batch().success_count
    assert ampwrite_sandbox.records(object_name="contacts")[0]["id"] == record_id
    assert written == 2
