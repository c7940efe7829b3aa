"""What checking and encoding a 100-record batch costs, against encoding it without checks.

`write_records` validates every field of a request (records included, value by value) and
encodes it before anything is sent. This measures that work alone — no network — for the
API-shaped mapping and for the typed models, next to a bare `json.dumps` of the same body
(the floor: what sending without any checks costs) and, when installed, the `jsonschema`
validator of the contract (what a generic schema check costs).

    python benchmarks/encode_batch.py            # about 10 seconds
    python benchmarks/encode_batch.py --smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ampwrite._validate import Checked, check_request
from ampwrite._wire import to_wire
from ampwrite.models import BatchItem, WriteRecordsRequest, WriteRequest

RECORD = {
    "email": "ada@example.com",
    "firstName": "Ada",
    "lastName": "Lovelace",
    "score": 42,
    "ratio": 0.75,
    "vip": True,
    "tags": ["math", "engines"],
    "address": {"city": "London", "zip": "W1"},
}
BODY: dict[str, Any] = {
    "groupRef": "group-1",
    "type": "create",
    "batch": [{"record": dict(RECORD, n=i)} for i in range(100)],
    "batchPolicy": {"allOrNone": False},
}
MAPPING = {
    "projectIdOrName": "p",
    "integrationId": "i",
    "objectName": "contacts",
    "requestBody": BODY,
}
MODELS = WriteRecordsRequest(
    project_id_or_name="p",
    integration_id="i",
    object_name="contacts",
    request_body=WriteRequest(
        group_ref="group-1",
        type="create",
        batch=[BatchItem(record=item["record"]) for item in BODY["batch"]],
    ),
)


def encode(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def ampwrite_mapping() -> None:
    checked = check_request(MAPPING)
    assert isinstance(checked, Checked)
    encode(checked.body)


def ampwrite_models() -> None:
    checked = check_request(to_wire(MODELS))
    assert isinstance(checked, Checked)
    encode(checked.body)


def bare_json() -> None:
    encode(BODY)


CASES: dict[str, Callable[[], None]] = {
    "json.dumps only": bare_json,
    "ampwrite, mapping": ampwrite_mapping,
    "ampwrite, models": ampwrite_models,
}
try:
    import jsonschema

    _spec = Path(__file__).resolve().parents[1] / "tests" / "contract"
    _schema = json.loads((_spec / "ampersand-write-openapi.json").read_text())
    _validator = jsonschema.Draft7Validator(_schema["components"]["schemas"]["WriteRequest"])

    def schema_then_json() -> None:
        _validator.validate(BODY)
        encode(BODY)

    CASES["jsonschema + json.dumps"] = schema_then_json
except ImportError:  # the test extra is not installed: compare without it
    pass


def per_call(function: Callable[[], None], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    rounds, calls = (5, 50) if parser.parse_args().smoke else (15, 300)
    for function in CASES.values():
        per_call(function, 20)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(rounds):
        for name, function in CASES.items():
            samples[name].append(per_call(function, calls))
    floor = statistics.median(samples["json.dumps only"])
    print(f"a 100-record batch, {rounds} interleaved rounds of {calls}; medians per request")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:<26} {median * 1e6:8.0f} µs  {median / floor:5.1f}x json.dumps")


if __name__ == "__main__":
    main()
