"""A tiny loopback HTTP proxy that sends everything to one upstream port, whatever the host.

A `CONNECT` gets `200 Connection established` and a tunnel; any other request (a forwarded
`POST http://host/...`) is relayed as it came. So a test can name a server that does not
exist (`write.example.test`: a loopback server is never reached through a proxy) and reach a
`ScriptedServer` through the proxy. With `tls=True` the proxy itself speaks HTTPS, with the
certificate in tests/tls (`CA_FILE` verifies it, and the upstream's `write.example.test`).

`split_after`: once the client has sent more than that many bytes, the upstream's bytes are
relayed one at a time, `interval` seconds apart (a proxy slicing what it relays thinly).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable

from tests.scripted_server import CA_FILE, TLS_DIR

__all__ = ["CA_FILE", "TARGET_HOST", "Proxy"]

TARGET_HOST = "write.example.test"
"""A name in the test certificate that no resolver knows: only a proxy can reach it."""


class Proxy:
    """`with Proxy(upstream_port) as proxy: ... proxy.url, proxy.requests`."""

    def __init__(
        self,
        upstream_port: int,
        *,
        tls: bool = False,
        split_after: int | None = None,
        interval: float = 0.0,
    ) -> None:
        self._upstream = upstream_port
        self._context: ssl.SSLContext | None = None
        if tls:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(CA_FILE, f"{TLS_DIR}/key.pem")
        self._split_after = split_after
        self._interval = interval
        self.requests: list[str] = []
        """The first line of each request the proxy was asked to carry."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Proxy:
        self._start(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._start(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        try:
            if self._context is not None:
                client.settimeout(5)
                client = self._context.wrap_socket(client, server_side=True)
                client.settimeout(None)
            self._sockets.append(client)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            first_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.requests.append(first_line)
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            self._sockets.append(upstream)
            if first_line.startswith("CONNECT "):
                tunneled = head.split(b"\r\n\r\n", 1)[1]
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                head = tunneled
            upstream.sendall(head)
        except OSError:
            return
        sent = [len(head)]
        self._start(self._client_to_upstream, client, upstream, sent)
        self._upstream_to_client(upstream, client, sent)

    def _client_to_upstream(
        self, client: socket.socket, upstream: socket.socket, sent: list[int]
    ) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                sent[0] += len(data)
                upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _upstream_to_client(
        self, upstream: socket.socket, client: socket.socket, sent: list[int]
    ) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if self._split_after is None or sent[0] <= self._split_after:
                    client.sendall(data)
                    continue
                for index in range(len(data)):
                    if self._stop.is_set():
                        return
                    client.sendall(data[index : index + 1])
                    time.sleep(self._interval)
        with contextlib.suppress(OSError):
            client.close()
