"""A compressed answer decodes alike on both drivers: gzip (one member or several), x-gzip,
deflate with or without its zlib header, codings stacked, a coding ampwrite does not know
(left as it is). A body that does not decode is a broken answer that may have been
processed, and one that decompresses past the size bound is refused without holding it."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib

import pytest

from ampwrite import Core, Err, Ok, RetryConfig
from ampwrite.errors import TransportError
from ampwrite.models import SingleWriteResponse
from tests.conftest import API_KEY, Driver
from tests.requests_data import single
from tests.scripted_server import Reply, ScriptedServer

BODY = json.dumps({"operationId": "op-z", "result": {"success": True, "recordId": "rec-z"}})
PLAIN = BODY.encode()


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


CODED = {
    "gzip": ("gzip", gzip.compress(PLAIN)),
    "x-gzip": ("x-gzip", gzip.compress(PLAIN)),
    "gzip in two members": ("gzip", gzip.compress(PLAIN[:20]) + gzip.compress(PLAIN[20:])),
    "deflate (zlib)": ("deflate", zlib.compress(PLAIN)),
    "deflate (raw)": ("deflate", _raw_deflate(PLAIN)),
    "deflate, then gzip": ("deflate, gzip", gzip.compress(zlib.compress(PLAIN))),
    "identity": ("identity", PLAIN),
    "a coding not known": ("x-unknown", PLAIN),
}


def _answer(coding: str, body: bytes, framing: str) -> Reply | bytes:
    """Framed by its length, on a connection kept alive; or chunked, the server closing the
    connection after it."""
    if framing == "length":
        return Reply(200, (("Content-Encoding", coding),), body)
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    head += f"Content-Encoding: {coding}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    return head.encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


@pytest.fixture
def zcore(server: ScriptedServer) -> Core:
    return Core(API_KEY, server_url=server.url, timeout=(2.0, 2.0), retries=RetryConfig.none())


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize(("coding", "body"), CODED.values(), ids=CODED.keys())
def test_a_coded_answer_decodes(
    server: ScriptedServer, zcore: Core, coding: str, body: bytes, framing: str, driver: Driver
) -> None:
    server.script(_answer(coding, body, framing))

    result = driver(zcore, single())

    assert isinstance(result, Ok), result
    assert isinstance(result.value, SingleWriteResponse)
    assert result.value.result is not None and result.value.result.record_id == "rec-z"
    assert isinstance(driver(zcore, single()), Ok)  # the connection is left fit for the next
    assert server.connections == (1 if framing == "length" else 2)
    zcore.close()


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_body_that_does_not_decode_is_a_broken_answer(
    server: ScriptedServer, zcore: Core, coding: str, driver: Driver
) -> None:
    server.script(_answer(coding, b"\x1f\x8b\x08\x00 certainly not " + PLAIN, "length"))

    result = driver(zcore, single())

    assert isinstance(result, Err) and type(result.error) is TransportError, result
    assert result.error.kind == "interrupted" and result.error.maybe_sent
    assert isinstance(driver(zcore, single()), Ok)
    zcore.close()


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_decompression_bomb_is_refused_without_holding_it(
    server: ScriptedServer, zcore: Core, framing: str, driver: Driver
) -> None:
    bomb = gzip.compress(b"\0" * (256 << 20), compresslevel=9)  # 256 MiB in about 250 KiB
    assert driver(zcore, single()).ok  # warm up: connection, caches, generated code
    server.script(_answer("gzip", bomb, framing))
    tracemalloc.start()
    try:
        result = driver(zcore, single())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        zcore.close()

    assert isinstance(result, Err) and isinstance(result.error, TransportError), result
    assert result.error.kind == "too-large"
    assert peak < 24 << 20, f"peak {peak / 2**20:.1f} MiB while refusing 256 MiB"
