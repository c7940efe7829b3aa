"""The API reference, built from the docstrings with pdoc, with every warning an error, so that
it cannot rot: a name in `__all__` that does not resolve, a broken cross-reference or a module
that fails to import fails the suite.

To read it: `python tests/test_api_reference.py DIR` writes the HTML pages to DIR.
"""

from __future__ import annotations

import importlib
import pathlib
import sys
import warnings

import pytest

from tests.test_docstrings import MODULES

pdoc = pytest.importorskip("pdoc", reason="pdoc builds the API reference (the test extra)")


def build_reference(output: pathlib.Path) -> list[pathlib.Path]:
    """Write the reference of every public module to `output`; return the pages written."""
    for name in MODULES:
        module = importlib.import_module(name)
        for exported in getattr(module, "__all__", ()):
            getattr(module, exported)  # names loaded lazily are documented too
    package = importlib.import_module("ampwrite")
    # the package's page takes in the submodules it exports; the others are named
    others = [name for name in MODULES[1:] if name.split(".")[1] not in package.__all__]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # run from a checkout, with the package installed: the name is the installed one
        warnings.filterwarnings("ignore", "'ampwrite' may refer to either", RuntimeWarning)
        pdoc.pdoc("ampwrite", *others, output_directory=output)
    return sorted(output.rglob("*.html"))


def test_the_reference_builds_without_a_warning(tmp_path: pathlib.Path) -> None:
    pages = build_reference(tmp_path)

    names = {page.relative_to(tmp_path).as_posix() for page in pages}
    for module in MODULES:
        assert module.replace(".", "/") + ".html" in names
    write_page = (tmp_path / "ampwrite.html").read_text(encoding="utf-8")
    assert "write_records" in write_page and "Core" in write_page
    sandbox_page = (tmp_path / "ampwrite" / "sandbox.html").read_text(encoding="utf-8")
    assert "fault" in sandbox_page.lower(), "the Sandbox's options are documented"


if __name__ == "__main__":
    for page in build_reference(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "api")):
        print(page)
