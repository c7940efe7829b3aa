"""`ampwrite mcp` without the `mcp` package: the rest of ampwrite never imports it, and the
command says how to install it (these tests run whether or not the extra is installed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nothing_but_the_command_itself_imports_the_mcp_package() -> None:
    done = run_python(
        """
        import sys
        import ampwrite, ampwrite.mcp, ampwrite.mcp._cli
        from ampwrite.cli import build_parser
        build_parser().parse_args(["mcp", "--sandbox", "--read-only"])
        print(",".join(name for name in ("mcp", "ampwrite.mcp._server") if name in sys.modules))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_without_the_extra_the_command_says_how_to_install_it() -> None:
    done = run_python(
        """
        import sys
        sys.modules["mcp"] = None  # as if the extra were not installed
        from ampwrite.cli import main
        sys.exit(main(["mcp", "--sandbox"]))
        """
    )
    assert done.returncode == 2
    assert done.stderr.strip() == 'ampwrite mcp needs the mcp extra: pip install "ampwrite[mcp]"'
    assert done.stdout == ""


def test_the_help_names_the_tools_and_the_flags() -> None:
    done = run_python(
        """
        from ampwrite.cli import main
        main(["mcp", "--help"])
        """
    )
    assert done.returncode == 0
    for needed in ("--transport", "--sandbox", "--read-only", "--tool", "write_records"):
        assert needed in done.stdout
