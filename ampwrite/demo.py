"""`ampwrite demo`: a guided tour of the SDK against an in-process sandbox.

Every step checks what it shows; the demo exits non-zero if anything behaved otherwise.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import AmpWrite, Core, Err, Ok, RetryConfig, wait_for_operation, write_records
from .errors import RequestValidationError, WriteFailedError
from .models import BatchWriteResponse, SingleWriteResponse, WriteRecordsRequest, WriteRequest
from .sandbox import DEFAULT_API_KEY, Sandbox

PROJECT, INTEGRATION, GROUP = "demo-project", "hubspot-1", "customer-42"


class _Tour:
    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.step = 0
        self.failures: list[str] = []

    def section(self, title: str) -> None:
        self.step += 1
        if self.step > 1 and self.pause:
            time.sleep(self.pause)
        print(f"\n{self.step}. {title}")

    def say(self, text: str) -> None:
        print(f"   {text}")

    def check(self, condition: bool, what: str) -> None:
        mark = "ok" if condition else "UNEXPECTED"
        print(f"   [{mark}] {what}")
        if not condition:
            self.failures.append(what)


def _request(body: dict[str, Any], object_name: str = "contacts") -> dict[str, Any]:
    return {
        "projectIdOrName": PROJECT,
        "integrationId": INTEGRATION,
        "objectName": object_name,
        "requestBody": {"groupRef": GROUP, **body},
    }


def _show(value: object) -> str:
    return json.dumps(value, separators=(", ", ": "))


def run_demo(pause: float = 0.0) -> int:
    """Run the tour; return 0 when every step behaved as shown."""
    tour = _Tour(pause)
    started = time.monotonic()
    with Sandbox() as sandbox:
        sandbox.configure_object("contacts", required_fields=("email",), unique_fields=("email",))
        print(f"ampwrite demo: a sandbox of the Write API is running at {sandbox.url}")
        print("   (contacts need an email, and emails are unique)")
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

        # the sandbox serves the Write API and the Platform API's operations on one port
        core = Core(sandbox.api_key, server_url=sandbox.url, platform_url=sandbox.url, sleep=sleep)
        client = AmpWrite(sandbox.api_key, server_url=sandbox.url)
        with core, client:
            record_id = _create(tour, core)
            _update(tour, client, record_id)
            _batch(tour, client)
            _all_or_none(tour, client, sandbox)
            _delete(tour, core, record_id)
            _asynchronous(tour, core)
            _validation(tour, core, sandbox)
            _rate_limit(tour, core, sandbox, waits)
        stored = sandbox.records(object_name="contacts")
    print(f"\nThe sandbox holds {len(stored)} contacts: {', '.join(r['email'] for r in stored)}")
    print(f"Done in {time.monotonic() - started:.1f} s.", end=" ")
    if tour.failures:
        print(f"{len(tour.failures)} step(s) did not behave as expected.")
    else:
        print("Every step behaved as shown.")
    _next_steps()
    return 1 if tour.failures else 0


def _next_steps() -> None:
    from .sandbox._cli import DEFAULT_PORT

    url = f"http://127.0.0.1:{DEFAULT_PORT}/v1"
    where = f"--project {PROJECT} --integration {INTEGRATION} --group-ref {GROUP}"
    print(
        f"""
Next, three things to try:
  1. Run a sandbox of your own, with the demo's rules, and write a contact it refuses
     (no email: a 422, exit status 3). In one shell:
       ampwrite sandbox --require contacts:email --unique contacts:email
     and in another:
       export AMPERSAND_SERVER_URL={url} AMPERSAND_API_KEY={DEFAULT_API_KEY}
       ampwrite write contacts {where} --record '{{"name": "Grace"}}'
  2. Load a CSV file of contacts (a header line, then one contact a line) against it;
     results.jsonl gets one outcome per row:
       ampwrite load contacts.csv --object contacts {where} --out results.jsonl
  3. Test your own code against the sandbox: installing ampwrite gives pytest the
     ampwrite_core and ampwrite_sandbox fixtures. docs/sandbox.md has them, every option,
     fault injection and the inspection endpoints; docs/bulk.md has loads and resuming."""
    )


def _create(tour: _Tour, core: Core) -> str:
    tour.section("Create a contact with the functional API: write_records(core, request)")
    request = _request({"type": "create", "record": {"email": "ada@example.com", "name": "Ada"}})
    tour.say(f"requestBody = {_show(request['requestBody'])}")
    result = write_records(core, request)
    match result:
        case Ok(SingleWriteResponse(result=written)) if written is not None:
            tour.say(f"Ok: record {written.record_id} (operation {result.value.operation_id})")
            tour.check(bool(written.success and written.record_id), "the record got an id")
            return written.record_id or ""
        case _:
            tour.check(False, f"create returned {result!r}")
            return ""


def _update(tour: _Tour, client: AmpWrite, record_id: str) -> None:
    tour.section("Update it through the facade: client.write.records(...) returns or raises")
    request = WriteRecordsRequest(
        project_id_or_name=PROJECT,
        integration_id=INTEGRATION,
        object_name="contacts",
        request_body=WriteRequest(
            group_ref=GROUP, type="update", record={"id": record_id, "name": "Ada Lovelace"}
        ),
    )
    response = client.write.records(request)
    assert isinstance(response, SingleWriteResponse) and response.result is not None
    tour.say(f"stored now: {_show(response.result.data)}")
    tour.check(response.result.record_id == record_id, "same record, new name")


def _batch(tour: _Tour, client: AmpWrite) -> None:
    tour.section("A batch of three where one fails: partial success is still a success")
    batch = [
        {"record": {"email": "grace@example.com"}},
        {"record": {"email": "ada@example.com"}},  # duplicate email: refused
        {"record": {"email": "alan@example.com"}},
    ]
    response = client.write.records(_request({"type": "create", "batch": batch}))
    assert isinstance(response, BatchWriteResponse)
    for item, outcome in zip(batch, response.results, strict=True):
        status = f"id {outcome.record_id}" if outcome.success else "failed"
        tour.say(f"{item['record']['email']:<20} {status}")
    tour.check(
        (response.success_count, response.failure_count) == (2, 1),
        f"{response.success_count} written, {response.failure_count} failed",
    )


def _all_or_none(tour: _Tour, client: AmpWrite, sandbox: Sandbox) -> None:
    tour.section("The same with batchPolicy.allOrNone: one failure and nothing is written")
    before = len(sandbox.records(object_name="contacts"))
    batch = [{"record": {"email": "edsger@example.com"}}, {"record": {"name": "no email"}}]
    body = {"type": "create", "batch": batch, "batchPolicy": {"allOrNone": True}}
    try:
        client.write.records(_request(body))
        tour.check(False, "the batch should have failed")
    except WriteFailedError as error:
        tour.say(f"raised WriteFailedError: {error}")
        tour.say(f"operation {error.operation_id}: {error.failure_count} failed")
    after = len(sandbox.records(object_name="contacts"))
    tour.check(after == before, "no record of the batch was stored")


def _delete(tour: _Tour, core: Core, record_id: str) -> None:
    tour.section("Delete, then delete again")
    request = _request({"type": "delete", "record": {"id": record_id}})
    first = write_records(core, request)
    tour.say(f"first delete:  {'Ok' if first.ok else first.error}")
    second = write_records(core, request)
    match second:
        case Err(WriteFailedError() as error):
            tour.say(f"second delete: Err(WriteFailedError): {error.errors[0].message}")
            tour.check(first.ok, "deleted once; the second attempt is a 422 value, not a crash")
        case _:
            tour.check(False, f"second delete returned {second!r}")


def _asynchronous(tour: _Tour, core: Core) -> None:
    tour.section("An asynchronous write answers at once with an operation id: follow it")
    request = _request(
        {"type": "create", "mode": "asynchronous", "record": {"email": "barbara@example.com"}}
    )
    result = write_records(core, request)
    if not isinstance(result, Ok) or not isinstance(result.value, SingleWriteResponse):
        tour.check(False, f"asynchronous write returned {result!r}")
        return
    operation_id = result.value.operation_id
    tour.say(f"Ok: operation {operation_id}, result {result.value.result!r} (not written yet)")
    followed = wait_for_operation(core, PROJECT, operation_id, timeout=10, poll_interval=0.02)
    match followed:
        case Ok(operation):
            tour.say(
                f"wait_for_operation -> {operation.status!r}: {operation.result} "
                f"(record {', '.join(operation.metadata.successful_record_ids)})"
            )
            tour.check(operation.succeeded, "the write was applied shortly after")
        case Err(error):
            tour.check(False, f"wait_for_operation returned {error!r}")


def _validation(tour: _Tour, core: Core, sandbox: Sandbox) -> None:
    tour.section("A request with mistakes is refused before anything is sent")
    sent_before = len(sandbox.requests)
    bad = _request({"type": "upsert", "record": {"score": float("nan")}})
    bad["requestBody"]["grouRef"] = bad["requestBody"].pop("groupRef")
    result = write_records(core, bad)
    match result:
        case Err(RequestValidationError(issues=issues)):
            for issue in issues:
                tour.say(f"{issue.path}: {issue.message}")
        case _:
            tour.check(False, f"expected a validation error, got {result!r}")
    tour.check(len(sandbox.requests) == sent_before, "no HTTP request was made")


def _rate_limit(tour: _Tour, core: Core, sandbox: Sandbox, waits: list[float]) -> None:
    tour.section("A 429 with Retry-After is retried for you")
    waits.clear()
    sandbox.fail_next(429, retry_after=1)
    sent_before = len(sandbox.requests)
    request = _request({"type": "create", "record": {"email": "katherine@example.com"}})
    result = write_records(core, request, retries=RetryConfig(max_elapsed_time=10))
    attempts = len(sandbox.requests) - sent_before
    tour.say(
        f"{attempts} attempts, waited {sum(waits):.1f} s as the server asked -> "
        f"{'Ok' if result.ok else result.error}"
    )
    tour.check(result.ok and attempts == 2, "rate limited once, then written")
