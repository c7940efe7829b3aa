"""The sandbox against clients that misbehave: half-sent requests, more connections than it
takes, an exhausted file-descriptor table, huge rejected bodies, bodies in tiny chunks and
records nested too deep to inspect. After every attack a normal client still gets a prompt
answer."""

from __future__ import annotations

import gc
import http.client
import inspect
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ampwrite._validate import MAX_DEPTH, Checked, check_request
from ampwrite.sandbox import Sandbox
from ampwrite.sandbox._http import MAX_BODY
from ampwrite.sandbox._server import LOG_BODY_PREFIX
from tests.sandbox_client import WRITE_PATH, Client

REPO = Path(__file__).resolve().parents[1]
PROMPT = 5.0  # generous on a loaded machine: the point is "answers" rather than "hangs"
SHORT = 0.3  # the read timeouts the tests configure
CREATE = {"groupRef": "g", "type": "create", "record": {"email": "a@x"}}
KIB = 1024
MIB = 1024 * KIB

Address = tuple[str, int]


def assert_serves_normally(address: Address, api_key: str) -> None:
    """A fresh client gets a valid write answered 200, promptly."""
    conn = http.client.HTTPConnection(*address, timeout=PROMPT)
    try:
        started = time.monotonic()
        headers = {"X-Api-Key": api_key, "Content-Type": "application/json"}
        conn.request("POST", WRITE_PATH, body=json.dumps(CREATE), headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert time.monotonic() - started < PROMPT
    finally:
        conn.close()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; raises if it stays open past PROMPT."""
    sock.settimeout(PROMPT)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def request_head(api_key: str, *extra: str) -> bytes:
    lines = [
        f"POST {WRITE_PATH} HTTP/1.1",
        "Host: x",
        f"X-Api-Key: {api_key}",
        "Content-Type: application/json",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def conn_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("ampwrite-sandbox-conn-")}


# -- 1. read timeouts --------------------------------------------------------------------


@pytest.fixture
def quick() -> Iterator[Sandbox]:
    """A sandbox with short read timeouts."""
    with Sandbox(header_timeout=SHORT, body_timeout=SHORT, idle_timeout=SHORT) as sandbox:
        yield sandbox


HALF_SENT = {
    "request line": b"POST /v1/projects/p/integ",
    "headers": b"POST /v1 HTTP/1.1\r\nHost: x\r\nX-Api-K",
    "declared body": b"POST /v1 HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + b'{"groupRef": ',
    "chunked body": b"POST /v1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n" + b'{"gro',
    "chunk size": b"POST /v1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1",
}


@pytest.mark.parametrize("payload", HALF_SENT.values(), ids=HALF_SENT.keys())
def test_half_sent_request_is_answered_408_and_closed(quick: Sandbox, payload: bytes) -> None:
    with socket.create_connection(quick.address) as sock:
        sock.sendall(payload)
        started = time.monotonic()
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:200]
    assert b"Connection: close\r\n" in answer
    assert SHORT / 2 <= elapsed < PROMPT
    assert_serves_normally(quick.address, quick.api_key)


def test_header_timeout_bounds_the_whole_header_not_each_byte(quick: Sandbox) -> None:
    """A client trickling a byte every 50 ms never lets any single read wait long; the
    header deadline still cuts it off."""
    trickle = request_head(quick.api_key, "X-Pad: " + "a" * 200)
    with socket.create_connection(quick.address) as sock:
        started = time.monotonic()
        for byte in trickle:
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable or time.monotonic() - started > PROMPT:
                break
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert elapsed < PROMPT
    assert_serves_normally(quick.address, quick.api_key)


def test_body_timeout_bounds_the_whole_body(quick: Sandbox) -> None:
    body = json.dumps(CREATE).encode() + b" " * 400
    head = request_head(quick.api_key, f"Content-Length: {len(body)}")
    with socket.create_connection(quick.address) as sock:
        sock.sendall(head)
        started = time.monotonic()
        for index in range(len(body)):
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable or time.monotonic() - started > PROMPT:
                break
            try:
                sock.sendall(body[index : index + 1])
            except OSError:
                break
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert elapsed < PROMPT
    assert_serves_normally(quick.address, quick.api_key)


def test_idle_connections_are_closed_without_an_answer(quick: Sandbox) -> None:
    with socket.create_connection(quick.address) as silent:
        assert read_until_closed(silent) == b""  # no bytes sent: nothing to answer
    client = Client(quick)
    try:
        assert client.write(CREATE).status == 200
        assert client.conn.sock is not None
        assert read_until_closed(client.conn.sock) == b""  # idle between requests
    finally:
        client.close()
    assert_serves_normally(quick.address, quick.api_key)


def test_read_timeouts_have_defaults_and_are_checked() -> None:
    parameters = inspect.signature(Sandbox).parameters
    defaults = {name: parameters[name].default for name in ("header_timeout", "body_timeout")}
    assert defaults == {"header_timeout": 10.0, "body_timeout": 30.0}
    assert parameters["idle_timeout"].default == 60.0
    for name in ("header_timeout", "body_timeout", "idle_timeout"):
        for bad in (0, -1.0, float("nan"), float("inf"), True):
            options: dict[str, Any] = {name: bad}
            with pytest.raises(ValueError, match=name):
                Sandbox(**options)


# -- 2. a cap on open connections ------------------------------------------------------------


def test_connections_over_the_cap_are_refused_at_once() -> None:
    with Sandbox(max_connections=3) as sb:
        held = [Client(sb) for _ in range(3)]
        try:
            for client in held:  # each connection is accepted, served and kept alive
                assert client.write(CREATE).status == 200
            serving = conn_threads()
            for _ in range(5):
                with socket.create_connection(sb.address) as extra:
                    answer = read_until_closed(extra)
                assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer[:200]
                assert b"Connection: close\r\n" in answer
                assert b"too many open connections (at most 3)" in answer
            assert conn_threads() - serving == set()  # no thread for a refused connection
            for client in held:  # the ones inside the cap are unaffected
                assert client.write(CREATE).status == 200
            held.pop().close()
            deadline = time.monotonic() + PROMPT
            while True:  # the slot frees as soon as the server sees the close
                try:
                    assert_serves_normally(sb.address, sb.api_key)
                    break
                except (AssertionError, OSError):  # refused: 503, or closed mid-request
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            for client in held:
                client.close()


def test_max_connections_has_a_default_and_is_checked() -> None:
    assert inspect.signature(Sandbox).parameters["max_connections"].default == 256
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_connections"):
            Sandbox(max_connections=bad)  # type: ignore[arg-type]


# -- a sandbox in a child process, for CPU time and peak memory --------------------------------

CHILD = """
import json, os, resource, sys
from ampwrite.sandbox import Sandbox

FD_LIMIT = 256

def peak_rss():
    # VmHWM, not ru_maxrss: that one keeps the parent's peak across fork and exec
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None

def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": r.ru_utime + r.ru_stime, "peak": peak_rss()}

with Sandbox() as sb:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = FD_LIMIT if soft == resource.RLIM_INFINITY else min(soft, FD_LIMIT)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    held = []
    print(json.dumps({"port": sb.address[1], "apiKey": sb.api_key, **usage()}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "exhaust":  # open descriptors until the table is full
            try:
                while True:
                    held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                pass
        elif command == "release":
            while held:
                os.close(held.pop())
        print(json.dumps({"held": len(held), **usage()}), flush=True)
"""


class Child:
    """A sandbox in a child process that reports its CPU time and peak RSS on request."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        hello = self._answer()
        self.address: Address = ("127.0.0.1", hello["port"])
        self.api_key: str = hello["apiKey"]

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the child sandbox exited"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def command(self, name: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def child() -> Iterator[Child]:
    started = Child()
    try:
        yield started
    finally:
        started.close()


# -- 3. an exhausted file-descriptor table -------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_NOFILE")
def test_accept_loop_backs_off_while_out_of_descriptors(child: Child) -> None:
    assert child.command("exhaust")["held"] > 0
    body = json.dumps(CREATE).encode()
    with socket.create_connection(child.address, timeout=PROMPT) as pending:
        # the kernel completes the handshake; the sandbox cannot accept it for now
        pending.sendall(request_head(child.api_key, f"Content-Length: {len(body)}") + body)
        before = child.command("usage")["cpu"]
        time.sleep(1.0)
        cpu = child.command("usage")["cpu"] - before
        child.command("release")
        answer = http.client.HTTPResponse(pending)
        answer.begin()  # the pending request is answered once descriptors are free again
        assert answer.status == 200
    assert cpu < 0.25, f"{cpu:.3f} s of CPU in 1 s out of descriptors"
    assert_serves_normally(child.address, child.api_key)


# -- 4. a request log bounded in bytes ------------------------------------------------------


def test_request_log_keeps_a_prefix_of_large_bodies(sb: Sandbox, client: Client) -> None:
    big = json.dumps({"groupRef": "g", "type": "create", "record": "x" * (4 * MIB)}).encode()
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(8):
            reply = client.send("POST", WRITE_PATH, big)
            assert reply.status == 400  # record: expected an object
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 2 * MIB, f"the log grew memory by {grown / MIB:.1f} MiB"
    entry = sb.requests[-1]
    assert entry.status == 400
    assert entry.body_truncated is True
    assert entry.body_size == len(big)
    assert entry.body == big[:LOG_BODY_PREFIX].decode()
    logged = client.send("GET", "/_sandbox/requests").json()[-1]
    assert (logged["bodySize"], logged["bodyTruncated"]) == (len(big), True)
    assert logged["body"] == entry.body
    assert_serves_normally(sb.address, sb.api_key)


def test_request_log_keeps_normal_bodies_as_parsed_json(sb: Sandbox, client: Client) -> None:
    raw = json.dumps(CREATE).encode()
    assert client.send("POST", WRITE_PATH, raw).status == 200
    entry = sb.requests[-1]
    assert entry.body == CREATE
    assert (entry.body_size, entry.body_truncated) == (len(raw), False)
    logged = client.send("GET", "/_sandbox/requests").json()[-1]
    assert (logged["body"], logged["bodySize"], logged["bodyTruncated"]) == (
        CREATE,
        len(raw),
        False,
    )


def test_request_log_drops_the_oldest_entries_beyond_its_byte_budget() -> None:
    budget = 1 * MIB
    with Sandbox(request_log_bytes=budget) as sb:
        client = Client(sb)
        try:
            for index in range(40):
                record = {"pad": "x" * (100 * KIB)}
                body = {"groupRef": f"g-{index:02d}", "type": "create", "record": record}
                assert client.write(body).status == 200
            log = sb.requests
            refs = [json.loads(entry.body.split(",", 1)[0] + "}")["groupRef"] for entry in log]
            assert 1 <= len(log) <= budget // LOG_BODY_PREFIX
            assert refs == [f"g-{index:02d}" for index in range(40 - len(log), 40)]
            assert sum(len(entry.body) for entry in log) <= budget
            assert len(sb.records()) == 40  # only the log is trimmed
            assert_serves_normally(sb.address, sb.api_key)
        finally:
            client.close()


def test_request_log_bytes_has_a_default_and_is_checked() -> None:
    assert inspect.signature(Sandbox).parameters["request_log_bytes"].default == 32 * MIB
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="request_log_bytes"):
            Sandbox(request_log_bytes=bad)  # type: ignore[arg-type]


# -- 5. chunked bodies in tiny chunks --------------------------------------------------------


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc")
def test_a_body_in_two_byte_chunks_costs_little_memory(child: Child) -> None:
    pairs = 2 * MIB // 2  # a 2 MiB record field, two bytes a chunk
    prefix = b'{"groupRef":"g","type":"create","record":{"pad":"'
    payload = (
        request_head(child.api_key, "Transfer-Encoding: chunked", "Connection: close")
        + chunk(prefix)
        + b"2\r\nab\r\n" * pairs
        + chunk(b'"}}')
        + b"0\r\n\r\n"
    )
    before = child.command("usage")["peak"]
    with socket.create_connection(child.address, timeout=PROMPT) as sock:
        sock.sendall(payload)
        answer = read_until_closed(sock)
    grown = child.command("usage")["peak"] - before
    head, _, data = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    assert json.loads(data)["result"]["data"]["pad"] == "ab" * pairs
    assert grown < 32 * MIB, f"peak RSS grew by {grown / MIB:.0f} MiB for a 2 MiB body"
    assert_serves_normally(child.address, child.api_key)


def test_chunked_bodies_are_still_bounded_while_read(sb: Sandbox) -> None:
    piece = chunk(b"x" * MIB)
    most = MAX_BODY + 32 * MIB  # past the bound, by more than socket buffers can hold
    sent = 0
    with socket.create_connection(sb.address, timeout=PROMPT) as sock:
        sock.sendall(request_head(sb.api_key, "Transfer-Encoding: chunked"))
        while sent < most:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += MIB
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent < most  # refused while the body was still coming
    assert_serves_normally(sb.address, sb.api_key)


# -- 6. records nested too deep to inspect ---------------------------------------------------


def nested(levels: int) -> dict[str, Any]:
    """An object nested ``levels`` levels deep, itself included."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def inspect_everything(sb: Sandbox, client: Client) -> list[dict[str, Any]]:
    records = sb.records()
    over_http = client.send("GET", "/_sandbox/records")
    assert over_http.status == 200
    assert over_http.json() == records
    assert client.send("GET", "/_sandbox/requests").status == 200
    return records


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"groupRef": "g", "type": "create", "record": nested(600)}, "record"),
        (
            {"groupRef": "g", "type": "create", "batch": [{"record": {}}, {"record": nested(600)}]},
            "batch[1].record",
        ),
        (
            {"groupRef": "g", "type": "create", "record": {}, "associations": [nested(600)]},
            "associations[0]",
        ),
    ],
    ids=["record", "batch", "associations"],
)
def test_records_nested_too_deep_are_refused(
    sb: Sandbox, client: Client, body: dict[str, Any], path: str
) -> None:
    reply = client.write(body)
    assert reply.status == 400
    assert reply.content_type == "text/plain; charset=utf-8"
    assert f"nested deeper than {MAX_DEPTH} levels" in reply.text
    assert reply.text.startswith(f"{path}: ")
    assert inspect_everything(sb, client) == []
    assert_serves_normally(sb.address, sb.api_key)


def test_the_deepest_record_the_client_sends_survives_every_inspection(
    sb: Sandbox, client: Client
) -> None:
    sb.configure_object("contacts", unique_fields=["deep"])
    deepest = {"deep": nested(MAX_DEPTH - 1)}  # MAX_DEPTH levels, the record included
    too_deep = {"deep": nested(MAX_DEPTH)}
    where = {"projectIdOrName": "p", "integrationId": "i", "objectName": "contacts"}
    for record, accepted in ((deepest, True), (too_deep, False)):
        body = {"groupRef": "g", "type": "create", "record": record}
        assert isinstance(check_request({**where, "requestBody": body}), Checked) is accepted
        assert client.write(body).status == (200 if accepted else 400)
    duplicate = client.write({"groupRef": "g", "type": "create", "record": deepest})
    assert duplicate.status == 422  # the uniqueness comparison walks the whole value
    assert "DUPLICATE_VALUE" in duplicate.text
    records = inspect_everything(sb, client)
    assert [record["deep"] for record in records] == [deepest["deep"]]
    assert_serves_normally(sb.address, sb.api_key)


def test_seeding_records_nested_too_deep_is_refused(sb: Sandbox, client: Client) -> None:
    where = {"project_id_or_name": "p", "integration_id": "i", "object_name": "o"}
    with pytest.raises(ValueError, match=f"nested deeper than {MAX_DEPTH} levels"):
        sb.add_record(nested(600), group_ref="g", **where)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match=f"nested deeper than {MAX_DEPTH} levels"):
        sb.add_record(cyclic, group_ref="g", **where)
    seed = {"project": "p", "integration": "i", "object": "o", "groupRef": "g"}
    reply = client.send(
        "POST", "/_sandbox/records", json.dumps({**seed, "record": nested(600)}).encode()
    )
    assert reply.status == 400
    assert reply.content_type == "text/plain; charset=utf-8"
    assert f"nested deeper than {MAX_DEPTH} levels" in reply.text
    assert inspect_everything(sb, client) == []
    assert_serves_normally(sb.address, sb.api_key)


def test_request_log_survives_the_deepest_bodies_the_parser_takes(
    sb: Sandbox, client: Client
) -> None:
    """Bodies nested nearly as deep as the JSON parser goes are refused (too deep, or not
    parsed at all); the log must still serialize whatever it kept of them."""
    head = b'{"groupRef":"g","type":"create","record":{},"x":'
    bodies = [head + b"[" * levels + b"]" * levels + b"}" for levels in range(900, 1000, 5)]
    for raw in bodies:
        assert client.send("POST", WRITE_PATH, raw).status == 400
    logged = client.send("GET", "/_sandbox/requests")
    assert logged.status == 200
    assert [entry["body"] for entry in logged.json()] == [None] * len(bodies)
    assert [entry.body_size for entry in sb.requests] == [len(raw) for raw in bodies]
    assert_serves_normally(sb.address, sb.api_key)
