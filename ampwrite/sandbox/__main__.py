"""``python -m ampwrite.sandbox``: run the Write API emulator in the foreground."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m ampwrite.sandbox"))
