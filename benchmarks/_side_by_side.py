"""Clients measured side by side: interleaved rounds of sequential calls, medians per call,
and the ratios to a baseline, printed as one table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def measure(call: Callable[[], None], calls: int) -> tuple[float, float]:
    """(wall, cpu) seconds per call over `calls` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        call()
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def compare(
    clients: Mapping[str, Callable[[], None]], *, rounds: int, calls: int, baseline: str
) -> None:
    """Warm every client up, run `rounds` interleaved rounds of `calls` calls of each (so drift
    on a noisy machine hits them alike), and print medians and ratios to `baseline`."""
    for call in clients.values():  # warm up: connections, caches, generated code
        measure(call, 50)
    walls: dict[str, list[float]] = {name: [] for name in clients}
    cpus: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, call in clients.items():
            wall, cpu = measure(call, calls)
            walls[name].append(wall)
            cpus[name].append(cpu)
    base_wall = statistics.median(walls[baseline])
    base_cpu = statistics.median(cpus[baseline])
    print(f"{rounds} interleaved rounds of {calls} sequential calls each; medians per call")
    short = baseline.split()[-1]
    header = ("client", "wall µs", "cpu µs", f"wall ÷ {short}", f"cpu ÷ {short}")
    print(f"{header[0]:<14} {header[1]:>9} {header[2]:>9} {header[3]:>16} {header[4]:>15}")
    for name in clients:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(
            f"{name:<14} {wall * 1e6:>9.1f} {cpu * 1e6:>9.1f} "
            f"{wall / base_wall:>16.2f} {cpu / base_cpu:>15.2f}"
        )
