"""Peak memory of bulk writes, each case measured in a fresh child process.

- a 200,000-record generator through `write_many` (default batch 100, concurrency 4);
- a 1,000,000-row JSONL file through `ampwrite load --out results.jsonl`.

The server is `benchmarks/_server.py` (well-formed answers, nothing stored) in its own
process, so the figures are the client's. Each child reports its peak resident set size
(`resource.getrusage(...).ru_maxrss`); a baseline child imports the same modules and writes
100 records, so the difference is what the input's length costs (it should be about
nothing: the input is streamed).

    python benchmarks/bulk_memory.py            # about a minute (1M rows)
    python benchmarks/bulk_memory.py --smoke    # a few seconds (smaller inputs)
    python benchmarks/bulk_memory.py --limit-mb 150   # exit 1 above this peak
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WHERE: dict[str, Any] = {
    "project_id_or_name": "bench-project",
    "integration_id": "bench-integration",
    "object_name": "contacts",
    "group_ref": "bench",
}


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def child_generator(url: str, count: int) -> dict[str, Any]:
    from ampwrite import Core
    from ampwrite.bulk import write_many

    def records() -> Any:
        for i in range(count):
            yield {"email": f"user{i}@example.com", "firstName": "Ada", "score": i}

    written = 0
    started = time.perf_counter()
    with Core("bench-key", server_url=url) as core:
        for outcome in write_many(core, records(), **WHERE):
            written += outcome.status == "written"
    return {"records": count, "written": written, "seconds": time.perf_counter() - started}


def child_file(url: str, path: str, out: str) -> dict[str, Any]:
    from ampwrite.cli import main

    started = time.perf_counter()
    status = main(
        [
            "load",
            path,
            "--project",
            "bench-project",
            "--integration",
            "bench-integration",
            "--object",
            "contacts",
            "--group-ref",
            "bench",
            "--api-key",
            "bench-key",
            "--server-url",
            url,
            "--out",
            out,
        ]
    )
    with open(out, "rb") as handle:
        lines = sum(1 for _ in handle)
    return {"status": status, "result_lines": lines, "seconds": time.perf_counter() - started}


def _child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed: {done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _write_jsonl(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(f'{{"email": "user{i}@example.com", "firstName": "Ada", "score": {i}}}\n')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--generator", type=int, default=200_000, help="records from a generator")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the JSONL file")
    parser.add_argument("--smoke", action="store_true", help="smaller inputs, a few seconds")
    parser.add_argument("--limit-mb", type=float, default=0.0, help="exit 1 above this peak")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, url, *rest = args.child
        if kind == "generator":
            report = child_generator(url, int(rest[0]))
        else:
            report = child_file(url, rest[0], rest[1])
        report["peak_mb"] = _peak_mb()
        print(json.dumps(report))
        return 0
    if args.smoke:
        args.generator, args.rows = 20_000, 50_000

    from benchmarks._server import answering_server

    worst = 0.0
    with answering_server() as url, tempfile.TemporaryDirectory() as tmp:
        baseline = _child(["generator", url, "100"])
        print(f"baseline (100 records):             peak {baseline['peak_mb']:6.1f} MB")
        generated = _child(["generator", url, str(args.generator)])
        worst = max(worst, generated["peak_mb"])
        print(
            f"generator, {args.generator:>9,} records: peak {generated['peak_mb']:6.1f} MB "
            f"(+{generated['peak_mb'] - baseline['peak_mb']:.1f} MB over baseline), "
            f"{generated['seconds']:.1f} s, {args.generator / generated['seconds']:,.0f} records/s"
        )
        source = Path(tmp) / "rows.jsonl"
        _write_jsonl(source, args.rows)
        size_mb = source.stat().st_size / 1e6
        loaded = _child(["file", url, str(source), str(Path(tmp) / "results.jsonl")])
        worst = max(worst, loaded["peak_mb"])
        print(
            f"ampwrite load, {args.rows:>9,} rows ({size_mb:.0f} MB JSONL): peak "
            f"{loaded['peak_mb']:6.1f} MB (+{loaded['peak_mb'] - baseline['peak_mb']:.1f} MB), "
            f"{loaded['seconds']:.1f} s, {args.rows / loaded['seconds']:,.0f} rows/s, "
            f"exit {loaded['status']}, {loaded['result_lines']:,} result lines"
        )
    if args.limit_mb and worst > args.limit_mb:
        print(f"peak {worst:.1f} MB is above {args.limit_mb} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
