"""`ampwrite mcp`: the functional core as tools for AI agents, over the Model Context Protocol.

Needs the extra `mcp` (`pip install "ampwrite[mcp]"`). The tools are `write_records`,
`validate_write`, `get_operation`, `wait_for_operation` and `list_operation_logs`, each a few
lines over `ampwrite.aio` (see `ampwrite.mcp._tools`). `build_server(core)` gives the `mcp`
package's low-level `Server` with them, to serve or to drive in-process; `ampwrite mcp` serves
it over stdio or streamable HTTP.

Importing this package does not import `mcp`: `build_server` loads it when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._server import build_server

__all__ = ["build_server"]


def __getattr__(name: str) -> Any:
    if name == "build_server":
        from ._server import build_server

        return build_server
    raise AttributeError(f"module 'ampwrite.mcp' has no attribute {name!r}")
