"""Run every benchmark and print what each measured.

    python benchmarks/run.py            # the full runs (a few minutes)
    python benchmarks/run.py --smoke    # each in its smoke mode: seconds, same ratios, noisier

It reports; it never fails on a timing (only on a benchmark that crashed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="run each benchmark briefly")
    smoke = parser.parse_args().smoke
    scripts = sorted(
        p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "run.py"
    )
    crashed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        done = subprocess.run([sys.executable, str(script), *(["--smoke"] if smoke else [])])
        print(f"   ({time.monotonic() - started:.1f} s)\n", flush=True)
        if done.returncode != 0:
            crashed.append(script.name)
    if crashed:
        print(f"crashed: {', '.join(crashed)}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
