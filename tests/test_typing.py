"""What `mypy --strict` makes of code written against ampwrite: the types it follows through
`Result` chains, the mistakes it catches (a misspelt option, a wrong type), and every Python
snippet of the README and docs/, which must type-check as a reader would paste it.

mypy runs once, through its API, over small programs written to a temporary directory (and
one module per documentation page, built from the snippets `tests/test_docs.py` runs). In a
program, a line ending in `# revealed: TYPE` must reveal TYPE (module prefixes left out), a
line ending in `# error: CODE` must be reported with that error code, and no other line may
be reported.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

import pytest
from mypy import api

from tests.test_docs import PAGES, ROOT, _snippets

CHAINS = """
from ampwrite import Core, Err, Ok, Result, wait_for_operation, write_records
from ampwrite.errors import AmpWriteError, RequestValidationError
from ampwrite.models import Operation, WriteRecordsRequest


def checked(request: WriteRecordsRequest) -> Result[WriteRecordsRequest, RequestValidationError]:
    return Ok(request)


def follow(core: Core, request: WriteRecordsRequest) -> Result[Operation, AmpWriteError]:
    w = write_records(core, request)
    reveal_type(w)  # revealed: Ok[SingleWriteResponse | BatchWriteResponse] | Err[AmpWriteError]
    followed = w.and_then(lambda r: wait_for_operation(core, "p", r.operation_id))
    reveal_type(followed)  # revealed: Ok[Operation] | Err[AmpWriteError]
    v = checked(request).and_then(lambda valid: write_records(core, valid))
    reveal_type(v)  # revealed: Ok[SingleWriteResponse | BatchWriteResponse] | Err[AmpWriteError]
    ids = w.map(lambda r: r.operation_id)
    reveal_type(ids)  # revealed: Ok[str] | Err[AmpWriteError]
    reveal_type(ids.unwrap_or(None))  # revealed: str | None
    reveal_type(ids.unwrap_or_else(lambda e: type(e).__name__))  # revealed: str
    reveal_type(ids.map_err(lambda e: KeyError(e)))  # revealed: Ok[str] | Err[KeyError]
    reveal_type(ids.or_else(lambda e: Ok(0)))  # revealed: Ok[str] | Ok[int] | Err[Never]
    return followed


def status(result: Result[int, ValueError]) -> None:
    match result:
        case Ok(value):
            reveal_type(value)  # revealed: int
        case Err(error):
            reveal_type(error)  # revealed: ValueError
    if result.ok:
        reveal_type(result)  # revealed: Ok[int]
    else:
        reveal_type(result.error)  # revealed: ValueError


def misuse(core: Core, request: WriteRecordsRequest) -> None:
    written = write_records(core, request)
    written.map(lambda r: r.operation_idd)  # error: union-attr
    written.and_then(lambda r: r.operation_id)  # error: arg-type
    written.map_err(lambda e: "not an exception")  # error: arg-type
    number: Result[int, AmpWriteError] = written.map(lambda r: r.operation_id)  # error: arg-type
    Ok(1).unwrap() + "one"  # error: operator
"""

FACADE = """
import requests

from ampwrite import AmpWrite, Core, RetryConfig

AmpWrite("test-key", server_url="https://example.com", timeout=(1, 2), retries=RetryConfig.none())
AmpWrite(lambda: "rotated-key", session=requests.Session(), allow_insecure_http=False)
AmpWrite(core=Core("test-key"))
AmpWrite("test-key", server_ur="https://example.com")  # error: call-overload
AmpWrite("test-key", timeout="ten")  # error: call-overload
AmpWrite(core=Core("test-key"), timeout=3)  # error: call-overload
AmpWrite(core="k")  # error: call-overload
Core("test-key", server_ur="https://example.com")  # error: call-arg
Core("test-key", timeout="ten")  # error: arg-type
"""

PROGRAMS = {"chains": CHAINS, "facade": FACADE}
EXPECTATION = re.compile(r"#\s*(revealed|error):\s*(.+?)\s*$")
REPORT = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")


def _short(type_text: str) -> str:
    """`ampwrite.result.Ok[builtins.str]` -> `Ok[str]`."""
    return re.sub(r"\b(?:[a-z_]\w*\.)+(?=\w)", "", type_text)


def _docs_module(page: pathlib.Path) -> str:
    """A page's snippets as one module, each at its own line of the page (so that mypy's line
    numbers are the page's), in the order tests/test_docs.py runs them in one namespace."""
    lines: list[str] = []
    for line, code in _snippets(page):
        lines.extend([""] * (line - 1 - len(lines)))
        lines.extend(code.splitlines())
    return "\n".join(lines) + "\n"


def _docs_name(page: pathlib.Path) -> str:
    return "docs_" + re.sub(r"\W", "_", page.stem)


Reports = dict[str, list[tuple[int, str, str]]]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reports]:
    """mypy's reports, by module name: (line, "error" or "note", text)."""
    folder = tmp_path_factory.mktemp("typing")
    sources = {name: text for name, text in PROGRAMS.items()}
    sources.update({_docs_name(page): _docs_module(page) for page in PAGES})
    for name, text in sources.items():
        (folder / f"{name}.py").write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # ampwrite itself is found from the project, installed or not
        stdout, stderr, _ = api.run(
            [
                "--config-file",
                str(ROOT / "pyproject.toml"),
                "--strict",
                "--show-error-codes",
                "--no-error-summary",
                "--no-pretty",
                *(str(folder / f"{name}.py") for name in sources),
            ]
        )
    assert not stderr, stderr
    found: Reports = {name: [] for name in sources}
    for text in stdout.splitlines():
        match = REPORT.match(text)
        assert match, f"unexpected mypy output: {text}"
        name = pathlib.Path(match["file"]).stem
        assert name in found, f"mypy reported on {match['file']}: {text}"
        found[name].append((int(match["line"]), match["kind"], match["text"]))
    yield found


def _expectations(program: str) -> dict[int, tuple[str, str]]:
    expected = {}
    for number, line in enumerate(program.splitlines(), start=1):
        match = EXPECTATION.search(line)
        if match:
            expected[number] = (match[1], match[2])
    return expected


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_mypy_follows_the_types(name: str, reports: Reports) -> None:
    expected = _expectations(PROGRAMS[name])
    assert expected, "a program without expectations checks nothing"
    seen: dict[int, list[tuple[str, str]]] = {}
    for line, kind, text in reports[name]:
        seen.setdefault(line, []).append((kind, text))
    problems = []
    for line, (kind, wanted) in expected.items():
        got = seen.pop(line, [])
        if kind == "revealed":
            revealed = [_short(t[len("Revealed type is ") :].strip('"')) for k, t in got]
            if revealed != [wanted]:
                problems.append(f"line {line}: revealed {revealed}, expected {wanted!r}")
        else:
            codes = {t.rsplit("[", 1)[-1].rstrip("]") for k, t in got if k == "error"}
            if wanted not in codes:
                problems.append(f"line {line}: expected error [{wanted}], got {got}")
    problems += [f"line {line}: unexpected {got}" for line, got in sorted(seen.items())]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_documentation_snippets_type_check(page: pathlib.Path, reports: Reports) -> None:
    shown = [
        f"{page.name}:{line}: {kind}: {text}" for line, kind, text in reports[_docs_name(page)]
    ]
    assert not shown, "\n".join(shown)
