"""Cold import cost of `from ampwrite import Core, write_records` against its dependencies.

Each sample is a fresh interpreter that times its own imports (interpreter start-up is left
out); samples of the probes alternate so drift hits them alike. Bytecode caching is on, as after
a normal `pip install` (the first, discarded, round writes the caches of an editable install).

ampwrite's own cost is timed in interpreters that have imported requests, attrs and cattrs
first: ampwrite defers some of what it uses (cattrs, until the first answer is decoded), so
the cold import against the dependencies alone, shown as well, is not its own cost.

    python benchmarks/import_time.py            # 30 samples of each
    python benchmarks/import_time.py --smoke    # 8 samples of each
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPENDENCIES = "import requests, attrs, cattrs"
AMPWRITE = "from ampwrite import Core, write_records"
PROBES = {  # name: (imports made first, untimed; imports timed)
    "requests + attrs + cattrs": ("", DEPENDENCIES),
    "from ampwrite import Core, write_records": ("", AMPWRITE),
    "the same, after the dependencies": (DEPENDENCIES, AMPWRITE),
}
HEAVY = (
    "ampwrite.facade",
    "ampwrite.cli",
    "ampwrite.sandbox",
    "ampwrite.bulk",
    "argparse",
    "http.server",
    "tqdm",
)


def sample(setup: str, statement: str) -> tuple[float, list[str]]:
    code = (
        "import sys, time\n"
        f"{setup}\n"
        "start = time.perf_counter()\n"
        f"{statement}\n"
        "elapsed = time.perf_counter() - start\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(elapsed, ','.join(heavy))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    seconds, _, heavy = done.stdout.strip().partition(" ")
    return float(seconds), [name for name in heavy.split(",") if name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="fewer samples")
    samples = 8 if parser.parse_args().smoke else 30
    for setup, statement in PROBES.values():  # write bytecode caches, warm the file system
        sample(setup, statement)
    times: dict[str, list[float]] = {name: [] for name in PROBES}
    loaded: set[str] = set()
    for _ in range(samples):
        for name, (setup, statement) in PROBES.items():
            seconds, heavy = sample(setup, statement)
            times[name].append(seconds)
            loaded.update(heavy)
    deps, cold, own = (statistics.median(values) * 1000 for values in times.values())
    print(f"median of {samples} fresh interpreters each")
    for name, values in times.items():
        print(f"  {name:<42} {statistics.median(values) * 1000:6.1f} ms")
    print(f"  ampwrite's own cost above its dependencies: {own:+.1f} ms")
    print(f"  cold, against the dependencies alone:       {cold - deps:+.1f} ms")
    print(f"  modules that should not load: {', '.join(sorted(loaded)) or 'none loaded'}")


if __name__ == "__main__":
    main()
