"""Ctrl-C while a program iterates `write_many` in its main thread: real SIGINTs.

Whatever moment the signal comes at, every record the sandbox stored is reported exactly
once (after one Ctrl-C), or at most once and never wrongly (after two). Each test checks
these invariants over many moments; none depends on where a signal lands.
"""

from __future__ import annotations

import inspect
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ampwrite import Core
from ampwrite.bulk import BulkWrites, Outcome, write_many
from ampwrite.bulk._engine import CTRL_C
from ampwrite.sandbox import Faults, Sandbox

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="POSIX signals")

WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}


@pytest.fixture(autouse=True)
def default_sigint() -> Iterator[None]:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "handler restored"


def records(count: int) -> Iterator[dict[str, int]]:
    return ({"n": i} for i in range(count))


def stored(sandbox: Sandbox) -> Counter[int]:
    assert sandbox.wait_idle(timeout=30)
    return Counter(r["n"] for r in sandbox.records(object_name="contacts"))


def press_ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


class Presser:
    """Ctrl-C from another thread once requests are in flight, `presses` times.

    `records()` holds its last record back until the presses are done, so no signal can
    come after the run has ended (it would interrupt the test itself).
    """

    def __init__(self, sandbox: Sandbox, presses: int, handled: Callable[[], bool]) -> None:
        self.sandbox = sandbox
        self.presses = presses
        self.handled = handled  # whether the run has seen a Ctrl-C (signals do not queue up)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.before_pressing: Callable[[], object] = lambda: None

    def records(self, count: int) -> Iterator[dict[str, int]]:
        for n in range(count):
            if n == count - 1:
                self.done.wait(30)
            yield {"n": n}

    def _run(self) -> None:
        deadline = time.monotonic() + 10
        # a run has begun (it cannot end before `done`) and has requests in flight
        while (not CTRL_C.runs or self.sandbox.wait_idle(timeout=0)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.0005)
        if not CTRL_C.runs:  # no run to press for: a stray Ctrl-C would stop the test session
            self.done.set()
            return
        self.before_pressing()
        for press in range(self.presses):
            if press:
                while not self.handled() and time.monotonic() < deadline:
                    time.sleep(0.0005)
            press_ctrl_c()
        self.done.set()

    def __enter__(self) -> Presser:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.thread.join()


def test_ctrl_c_in_the_loop_body_is_raised_there_and_stops_the_run(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.005))
    for press_at in (1, 3, 7, 12, 20, 33):
        ampwrite_sandbox.reset()
        reported: list[Outcome] = []
        caught = 0
        for outcome in write_many(
            ampwrite_core, records(500), **WHERE, batch_size=5, concurrency=6
        ):
            reported.append(outcome)
            if len(reported) == press_at:
                try:
                    press_ctrl_c()  # the program's own code is running: raised here
                    time.sleep(1)
                except KeyboardInterrupt:
                    caught += 1
                assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

        assert caught == 1
        assert Counter(o.index for o in reported) == stored(ampwrite_sandbox)
        assert press_at <= len(reported) < 500  # it stopped


def test_ctrl_c_in_the_loop_body_left_to_propagate(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.005))
    reported: list[Outcome] = []
    writes = write_many(ampwrite_core, records(500), **WHERE, batch_size=5)
    with pytest.raises(KeyboardInterrupt):
        for outcome in writes:
            reported.append(outcome)
            if len(reported) == 10:
                press_ctrl_c()
                time.sleep(1)

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    writes.close()  # waits for the requests still in flight
    counts = Counter(o.index for o in reported)
    assert max(counts.values()) == 1
    assert set(counts) <= set(stored(ampwrite_sandbox))  # in flight then: written, unreported


def test_ctrl_c_while_waiting_for_answers(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    for latency in (0.0, 0.002, 0.01, 0.05, 0.1):
        ampwrite_sandbox.reset()
        ampwrite_sandbox.set_faults(Faults(latency=latency))
        reported: list[Outcome] = []
        presser = Presser(ampwrite_sandbox, presses=1, handled=lambda: True)
        writes = write_many(
            ampwrite_core, presser.records(3_000), **WHERE, batch_size=10, concurrency=4
        )
        with presser, pytest.raises(KeyboardInterrupt) as raised:
            for outcome in writes:
                reported.append(outcome)
        writes.close()  # the requests still in flight, if it came in the loop body

        counts = Counter(o.index for o in reported)
        if any(entry.name == "outcomes" for entry in raised.traceback):  # it had control
            assert counts == stored(ampwrite_sandbox), f"latency {latency}"
        else:  # it came while `reported.append` ran: raised there
            assert max(counts.values(), default=1) == 1
            assert set(counts) <= set(stored(ampwrite_sandbox))
        assert {o.status for o in reported} <= {"written"}
        assert len(reported) < 3_000


def test_a_second_ctrl_c_leaves_at_once(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=2.0))
    reported: list[Outcome] = []
    started = time.monotonic()
    writes: list[BulkWrites] = []
    presser = Presser(ampwrite_sandbox, presses=2, handled=lambda: writes[0]._run.interrupted)
    writes.append(write_many(ampwrite_core, presser.records(100), **WHERE, batch_size=10))
    with presser, pytest.raises(KeyboardInterrupt):
        for outcome in writes[0]:
            reported.append(outcome)
    elapsed = time.monotonic() - started

    assert reported == []  # nothing had come back
    assert elapsed < 2.0, "it did not wait for the requests in flight"
    assert 0 < len(stored(ampwrite_sandbox)) <= 40  # what was in flight then was written


# such an interrupt can also land in a weakref callback, where Python reports and drops it
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_program_handler_that_raises_anywhere(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    """A program's own handler raising KeyboardInterrupt at random steps of the loop (here
    from SIGALRM): best effort, but no outcome is lost or repeated when the run catches it."""

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGALRM, raise_interrupt)
    chance = random.Random(5)
    ampwrite_sandbox.set_faults(Faults(latency=0.002))
    try:
        for _trial in range(40):
            ampwrite_sandbox.reset()
            reported: list[Outcome] = []
            caught_inside = False
            writes = write_many(ampwrite_core, records(400), **WHERE, batch_size=5, concurrency=8)
            signal.setitimer(signal.ITIMER_REAL, chance.uniform(0.002, 0.05))
            try:
                try:
                    for outcome in writes:
                        reported.append(outcome)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except KeyboardInterrupt as exc:
                frames = []
                trace = exc.__traceback__
                while trace is not None:
                    frames.append(trace.tb_frame.f_code.co_name)
                    trace = trace.tb_next
                caught_inside = "outcomes" in frames  # raised again by the run at its end
            writes.close()
            counts = Counter(o.index for o in reported)
            assert max(counts.values(), default=1) == 1, "no outcome twice"
            if caught_inside:
                assert counts == stored(ampwrite_sandbox)
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_other_threads_and_a_program_handler_are_left_alone(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    seen: list[object] = []

    def iterate() -> None:
        for _ in write_many(ampwrite_core, records(30), **WHERE, batch_size=10):
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=iterate)
    thread.start()
    thread.join()
    assert seen and all(h is signal.default_int_handler for h in seen)

    def own(signum: int, frame: Any) -> None:
        pass

    signal.signal(signal.SIGINT, own)
    try:
        for _ in write_many(ampwrite_core, records(30), **WHERE, batch_size=10):
            assert signal.getsignal(signal.SIGINT) is own
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_the_handler_is_restored_when_a_run_is_closed_early(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    with write_many(ampwrite_core, records(1_000), **WHERE, batch_size=10) as writes:
        next(writes)
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):  # and Ctrl-C is the default again
        press_ctrl_c()
        time.sleep(1)


def _lines_of(function: Any) -> list[int]:
    """The lines of `function`'s body, but a `yield` line: between the store before it and
    the yield itself CPython runs no signal handler, so only a tracer could raise there."""
    code = function.__code__
    source, first = inspect.getsourcelines(function)
    return sorted(
        line
        for _, _, line in code.co_lines()
        if line
        and line > code.co_firstlineno
        and not source[line - first].strip().startswith("yield ")
    )


def at_line(code: Any, line: int, action: Callable[[], None]) -> Any:
    """A `sys.settrace` tracer that calls `action` the first time `line` of `code` runs."""
    done: list[bool] = []

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not code:
            return None

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line" and frame.f_lineno == line and not done:
                done.append(True)
                action()
            return local

        return local

    return tracer


def _interrupt_at(core: Core, sandbox: Sandbox, code: Any, line: int) -> tuple[bool, bool]:
    """Run write_many in a thread, raising KeyboardInterrupt the first time `line` of
    `code` runs; returns (the run ended, the run handled the interrupt gracefully)."""
    box: dict[str, Any] = {}

    def interrupt() -> None:
        raise KeyboardInterrupt

    tracer = at_line(code, line, interrupt)

    def run() -> None:
        writes = write_many(core, records(40), **WHERE, batch_size=5, concurrency=3)
        box["writes"], box["reported"] = writes, []
        sys.settrace(tracer)
        try:
            for outcome in writes:
                box["reported"].append(outcome)
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        writes.stop()  # if the interrupt kept the run from stopping its writers
        writes.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        return False, False
    counts = Counter(o.index for o in box["reported"])
    assert max(counts.values(), default=1) == 1, f"line {line}: an outcome twice"
    kept = stored(sandbox)
    assert all(o.index in kept for o in box["reported"] if o.status == "written")
    run_state = box["writes"]._run
    graceful = run_state.interrupted and not run_state.abandoned
    if graceful:
        assert counts == kept, f"line {line}: stored and reported differ"
    return True, graceful


@pytest.mark.parametrize(
    "where",
    ["outcomes", "_take", "give", "wait", "finish"],
)
def test_a_keyboard_interrupt_at_every_line(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, where: str
) -> None:
    from ampwrite.bulk import _engine

    function = getattr(_engine._Run, where, None) or getattr(_engine._Writers, where)
    code = function.__code__
    graceful = 0
    for line in _lines_of(function):
        ampwrite_sandbox.reset()
        ended, handled = _interrupt_at(ampwrite_core, ampwrite_sandbox, code, line)
        assert ended, f"{where} line {line}: the run never ended"
        graceful += handled
    assert graceful, "the run handled some of them itself"


def test_a_run_left_unfinished_does_not_swallow_ctrl_c(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    writes = write_many(ampwrite_core, records(1_000), **WHERE, batch_size=10)
    next(writes)  # then the program goes on with other things, keeping the iterator
    with pytest.raises(KeyboardInterrupt):
        press_ctrl_c()
        time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    writes.close()
    later = write_many(ampwrite_core, records(20), **WHERE, batch_size=10)
    assert len(list(later)) == 20  # a later run is not taken for an interrupted one


def test_a_ctrl_c_as_the_run_ends_is_raised(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    from ampwrite.bulk import _engine

    source, first = inspect.getsourcelines(_engine._Run.outcomes)
    line = first + next(i for i, text in enumerate(source) if "if deferring:" in text)
    fired: list[int] = []

    def press() -> None:
        fired.append(line)
        press_ctrl_c()  # handled by the run's handler, just before it leaves

    tracer = at_line(_engine._Run.outcomes.__code__, line, press)

    reported: list[Outcome] = []
    sys.settrace(tracer)
    try:
        with pytest.raises(KeyboardInterrupt):
            for outcome in write_many(ampwrite_core, records(6), **WHERE, batch_size=2):
                reported.append(outcome)
    finally:
        sys.settrace(None)
    assert fired and len(reported) == 6


def test_ctrl_c_while_the_input_blocks_stops_the_run_at_once(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    more = threading.Event()  # never set: a pipe nobody writes to

    def slow_input() -> Iterator[dict[str, int]]:
        yield from ({"n": i} for i in range(3))
        more.wait(30)
        yield {"n": 3}

    def press_once_sent() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            CTRL_C.runs and len(ampwrite_sandbox.records(object_name="contacts")) == 3
        ):
            time.sleep(0.005)
        if CTRL_C.runs:
            press_ctrl_c()

    presser = threading.Thread(target=press_once_sent)
    reported: list[Outcome] = []
    started = time.monotonic()
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for outcome in write_many(ampwrite_core, slow_input(), **WHERE, batch_size=3):
                reported.append(outcome)
    finally:
        presser.join()
        more.set()

    assert time.monotonic() - started < 10, "the read was interrupted"
    assert Counter(o.index for o in reported) == stored(ampwrite_sandbox) == Counter(range(3))


def test_one_ctrl_c_after_stop_still_reports_what_was_sent(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.5))
    presser = Presser(ampwrite_sandbox, presses=1, handled=lambda: True)
    writes = write_many(ampwrite_core, presser.records(100), **WHERE, batch_size=10)
    presser.before_pressing = writes.stop  # stop() first, then one Ctrl-C
    reported: list[Outcome] = []
    with presser, pytest.raises(KeyboardInterrupt):
        for outcome in writes:
            reported.append(outcome)

    assert Counter(o.index for o in reported) == stored(ampwrite_sandbox)
    assert 0 < len(reported) < 100  # the requests in flight at the stop, all reported


def test_a_dropped_run_is_closed(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    before = {t for t in threading.enumerate() if t.name.startswith("ampwrite-bulk")}

    def first_only() -> Outcome:
        for outcome in write_many(ampwrite_core, records(1_000), **WHERE, batch_size=10):
            return outcome  # the iterator is dropped here, without close()
        raise AssertionError("no outcome")

    assert first_only().status == "written"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    left = [
        t
        for t in threading.enumerate()
        if t.name.startswith("ampwrite-bulk") and t not in before and t.is_alive()
    ]
    assert left == [], "its writers ended"
    assert len(stored(ampwrite_sandbox)) < 1_000  # nothing more was sent
