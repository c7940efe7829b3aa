"""An independent HTTP client for the sandbox tests: plain http.client, not ampwrite."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

from ampwrite.sandbox import Sandbox

WRITE_PATH = "/v1/projects/proj-1/integrations/int-1/objects/contacts"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    data: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.data)


class Client:
    """A keep-alive http.client connection to a sandbox."""

    def __init__(self, sb: Sandbox) -> None:
        host, port = sb.address
        self.conn = http.client.HTTPConnection(host, port, timeout=10)
        self.api_key = sb.api_key

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        omit: tuple[str, ...] = (),
    ) -> Reply:
        """Send with the API key and a JSON Content-Type, plus `headers`, less `omit`."""
        all_headers = {"X-Api-Key": self.api_key, "Content-Type": "application/json"}
        all_headers.update(headers or {})
        for name in omit:
            all_headers.pop(name, None)
        self.conn.request(method, path, body=body, headers=all_headers)
        response = self.conn.getresponse()
        return Reply(response.status, response.headers, response.read())

    def write(self, body: object, path: str = WRITE_PATH) -> Reply:
        return self.send("POST", path, json.dumps(body).encode())

    def close(self) -> None:
        self.conn.close()
