"""Every Python snippet of the README and docs/ runs, in order, against a sandbox.

The snippets of one page share a namespace, as a reader would run them one after another.
`AMPERSAND_API_KEY`, `AMPERSAND_SERVER_URL` and `AMPERSAND_PLATFORM_URL` point at the
`ampwrite_sandbox` fixture, so
`Core()` in a snippet talks to it. A snippet that defines `test_*` functions has them called
with the plugin's fixtures, as pytest would. A snippet fenced as ```` ```python TAG ````
(`spark`, `dask`) needs that engine: the engine's own tests run it (`run_tagged_snippets`).
"""

from __future__ import annotations

import inspect
import pathlib
import re
from typing import Any

import pytest

from ampwrite import Core
from ampwrite.sandbox import Sandbox

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _snippets(page: pathlib.Path, block: re.Pattern[str] = BLOCK) -> list[tuple[int, str]]:
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in block.finditer(text)]


def run_tagged_snippets(page: pathlib.Path, tag: str, namespace: dict[str, Any]) -> int:
    """Run the snippets fenced as ```` ```python TAG ```` (they need an engine, Spark or
    Dask: the engine's tests run them, with the names the page says they rely on in
    `namespace`). Returns how many ran."""
    block = re.compile(rf"^```python {re.escape(tag)}\n(.*?)^```", re.MULTILINE | re.DOTALL)
    found = _snippets(page, block)
    for line, code in found:
        exec(compile("\n" * (line - 1) + code, str(page), "exec"), namespace)
    return len(found)


def test_every_page_has_snippets() -> None:
    assert len(PAGES) >= 6
    for page in PAGES:
        assert _snippets(page), f"{page.name} has no Python snippet"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_snippets_run(
    page: pathlib.Path,
    ampwrite_sandbox: Sandbox,
    ampwrite_core: Core,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AMPERSAND_API_KEY", ampwrite_sandbox.api_key)
    monkeypatch.setenv("AMPERSAND_SERVER_URL", ampwrite_sandbox.url)
    monkeypatch.setenv("AMPERSAND_PLATFORM_URL", ampwrite_sandbox.url)
    fixtures: dict[str, Any] = {
        "ampwrite_sandbox": ampwrite_sandbox,
        "ampwrite_core": ampwrite_core,
    }
    namespace: dict[str, Any] = {"__name__": f"docs.{page.stem}"}
    for line, code in _snippets(page):
        compiled = compile("\n" * (line - 1) + code, str(page), "exec")
        before = set(namespace)
        exec(compiled, namespace)
        for name in sorted(set(namespace) - before):
            function = namespace[name]
            if name.startswith("test_") and callable(function):
                arguments = inspect.signature(function).parameters
                function(**{argument: fixtures[argument] for argument in arguments})
