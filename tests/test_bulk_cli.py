"""`ampwrite load`: files in, a results file out, resuming, exit statuses, interruption."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from ampwrite.bulk._load import count_records, read_results
from ampwrite.cli import EXIT_API_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_TRANSPORT, EXIT_USAGE, main
from ampwrite.cli._load import ProgressBar
from ampwrite.sandbox import Faults, Sandbox


def load_args(sandbox: Sandbox, path: pathlib.Path | str, *extra: str) -> list[str]:
    return [
        "load",
        str(path),
        "--project",
        "proj",
        "--integration",
        "int",
        "--object",
        "contacts",
        "--group-ref",
        "group",
        "--api-key",
        sandbox.api_key,
        "--server-url",
        sandbox.url,
        *extra,
    ]


def jsonl(path: pathlib.Path, records: list[Any]) -> pathlib.Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def results(path: pathlib.Path, *, skip: str | None = None) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line != skip]


def last_status(path: pathlib.Path, *, skip: str | None = None) -> dict[int, str]:
    return {entry["index"]: entry["status"] for entry in results(path, skip=skip)}


def writes(sandbox: Sandbox) -> int:
    return sum(1 for entry in sandbox.requests if entry.method == "POST")


def test_a_jsonl_file_is_loaded_with_one_result_line_per_record(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = jsonl(
        tmp_path / "contacts.jsonl", [{"email": f"u{i}@example.com"} for i in range(250)]
    )
    out = tmp_path / "results.jsonl"

    status = main(load_args(ampwrite_sandbox, source, "--out", str(out), "--batch-size", "40"))

    assert status == EXIT_OK
    lines = results(out)
    assert sorted(line["index"] for line in lines) == list(range(250))
    assert set(lines[0]) == {"index", "status", "record_id", "error", "operation_id"}
    stored = {r["id"]: r for r in ampwrite_sandbox.records(object_name="contacts")}
    for line in lines:
        assert line["status"] == "written" and line["error"] is None
        assert stored[line["record_id"]]["email"] == f"u{line['index']}@example.com"
    assert writes(ampwrite_sandbox) == 7
    assert not (tmp_path / "results.jsonl.inflight").exists()  # the journal, once done
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "written 250, failed 0, unknown 0" in captured.err and "records/s" in captured.err
    assert "\r" not in captured.err  # no progress bar when stderr is not a terminal


def test_resume_after_a_complete_run_sends_nothing(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [{"email": f"u{i}@example.com"} for i in range(120)] + [{"score": "NaN"}]
    source = tmp_path / "contacts.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records) + "{oops\n")
    out = tmp_path / "results.jsonl"
    args = load_args(ampwrite_sandbox, source, "--out", str(out))

    assert main(args) == EXIT_API_ERROR  # the line that is not JSON failed
    first = results(out)
    sent = writes(ampwrite_sandbox)
    assert sent == 2
    assert main([*args, "--resume"]) == EXIT_API_ERROR  # the bad line is still failed

    assert writes(ampwrite_sandbox) == sent, "the second run sent nothing"
    assert results(out) == first, "and added no line"
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 121
    assert "122 settled by earlier runs" in capsys.readouterr().err


def test_resume_sends_only_what_has_no_final_outcome(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(10)])
    out = tmp_path / "results.jsonl"
    done = [
        {"index": 0, "status": "written", "record_id": "r0", "error": None},
        {"index": 1, "status": "failed", "record_id": None, "error": "refused"},
        {"index": 2, "status": "unknown", "record_id": None, "error": "502"},
        {"index": 3, "status": "accepted", "record_id": None, "error": None},
        {"index": 4, "status": "unknown", "record_id": None, "error": "reset"},
        {"index": 4, "status": "written", "record_id": "r4", "error": None},  # the last wins
    ]
    torn = '{"index": 5, "status": "wri'  # a crash in the middle of a line
    out.write_text("".join(json.dumps(d) + "\n" for d in done) + torn)

    status = main(load_args(ampwrite_sandbox, source, "--out", str(out), "--resume"))

    stored = sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert stored == [5, 6, 7, 8, 9]
    assert status == EXIT_TRANSPORT  # index 2 is still unknown (and 1 failed)
    assert "1 record(s) have an unknown outcome" in capsys.readouterr().err
    text = out.read_text()
    assert text.startswith("".join(json.dumps(d) + "\n" for d in done) + torn + "\n")
    assert last_status(out, skip=torn) == {
        0: "written",
        1: "failed",
        2: "unknown",
        3: "accepted",
        4: "written",
        **{i: "written" for i in range(5, 10)},
    }

    again = main(
        load_args(ampwrite_sandbox, source, "--out", str(out), "--resume", "--retry-unknown")
    )
    assert again == EXIT_API_ERROR  # 1 stays failed; 2 was sent again and written
    assert last_status(out, skip=torn)[2] == "written"
    assert "check for a duplicate" in results(out, skip=torn)[-1]["error"]
    assert sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts")) == [
        2,
        5,
        6,
        7,
        8,
        9,
    ]


def test_csv_with_column_types_and_bad_rows(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_bytes(
        b"name,age,vip,tags\n"
        b'Ada,36,yes,"[1, 2]"\n'
        b"Bob,thirty,no,[]\n"
        b"Cy,1\n"
        b"\n"
        b"Di,,TRUE,{}\n"
        b'"Multi\nline",7,0,null\n'
        b"Ed\xff,5,1,[]\n"
        b"Flo,8,maybe,[]\n"
    )
    out = tmp_path / "results.jsonl"

    status = main(
        load_args(
            ampwrite_sandbox,
            source,
            "--out",
            str(out),
            "--column-type",
            "age=int",
            "--column-type",
            "vip=bool",
            "--column-type",
            "tags=json",
        )
    )

    assert status == EXIT_API_ERROR
    lines = {entry["index"]: entry for entry in results(out)}
    assert sorted(lines) == list(range(7))
    assert [lines[i]["status"] for i in range(7)] == [
        "written",
        "failed",
        "failed",
        "written",
        "written",
        "failed",
        "failed",
    ]
    assert lines[1]["error"] == "line 3: column age: 'thirty' is not an int"
    assert lines[2]["error"] == "line 4: 2 values, the header has 4 columns"
    assert lines[5]["error"] == "line 9: not UTF-8"
    assert "column vip" in lines[6]["error"] and "bool" in lines[6]["error"]
    stored = sorted(ampwrite_sandbox.records(object_name="contacts"), key=lambda r: r["id"])
    assert [{k: v for k, v in r.items() if k != "id"} for r in stored] == [
        {"name": "Ada", "age": 36, "vip": True, "tags": [1, 2]},
        {"name": "Di", "vip": True, "tags": {}},
        {"name": "Multi\nline", "age": 7, "vip": False, "tags": None},
    ]


def test_csv_values_stay_strings_without_column_types(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text("\ufeffname,age\nAda,36\n", encoding="utf-8")

    assert main(load_args(ampwrite_sandbox, source)) == EXIT_OK
    stored = ampwrite_sandbox.records(object_name="contacts")
    assert [{"name": r["name"], "age": r["age"]} for r in stored] == [{"name": "Ada", "age": "36"}]


def test_bad_jsonl_lines_fail_without_stopping_the_run(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"n": 0}\n\n{"n": \n[1, 2]\n\xff\xfe\n{"n": 4}\n')
    out = tmp_path / "out.jsonl"

    assert main(load_args(ampwrite_sandbox, source, "--out", str(out))) == EXIT_API_ERROR

    lines = {entry["index"]: entry for entry in results(out)}
    assert [lines[i]["status"] for i in range(5)] == [
        "written",
        "failed",
        "failed",
        "failed",
        "written",
    ]
    assert lines[1]["error"].startswith("line 3: not JSON")
    assert "expected an object" in lines[2]["error"]
    assert lines[3]["error"].startswith("line 5: not UTF-8")


def test_stdin_and_the_environment(
    ampwrite_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv("AMPERSAND_API_KEY", ampwrite_sandbox.api_key)
    monkeypatch.setenv("AMPERSAND_SERVER_URL", ampwrite_sandbox.url)
    data = b"".join(json.dumps({"n": i}).encode() + b"\n" for i in range(5))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "out.jsonl"

    status = main(
        [
            "load",
            "-",
            "--project",
            "p",
            "--integration",
            "i",
            "--object",
            "contacts",
            "--group-ref",
            "g",
            "--out",
            str(out),
        ]
    )

    assert status == EXIT_OK
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 5
    assert sorted(last_status(out)) == list(range(5))


def test_unknown_outcomes_exit_4(ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    ampwrite_sandbox.fail_next(502)
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(3)])

    assert main(load_args(ampwrite_sandbox, source)) == EXIT_TRANSPORT


def test_deletes_and_asynchronous_writes(ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(3)])
    out = tmp_path / "created.jsonl"
    assert main(load_args(ampwrite_sandbox, source, "--out", str(out))) == EXIT_OK
    ids = [entry["record_id"] for entry in results(out)]

    deletes = jsonl(tmp_path / "deletes.jsonl", [{"id": i} for i in ids])
    assert main(load_args(ampwrite_sandbox, deletes, "--type", "delete")) == EXIT_OK
    assert ampwrite_sandbox.records(object_name="contacts") == []

    queued = tmp_path / "queued.jsonl"
    assert (
        main(load_args(ampwrite_sandbox, source, "--mode", "asynchronous", "--out", str(queued)))
        == EXIT_OK
    )
    assert {entry["status"] for entry in results(queued)} == {"accepted"}
    assert all(entry["operation_id"] for entry in results(queued))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resume"], "--resume needs --out"),
        (["--column-type", "age"], "NAME=TYPE"),
        (["--column-type", "age=date"], "NAME=TYPE"),
        (["--column-type", "age=int"], "CSV input only"),
        (["--batch-size", "0"], "--batch-size"),
        (["--concurrency", "0"], "--concurrency"),
    ],
)
def test_usage_errors_send_nothing(
    ampwrite_sandbox: Sandbox,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": 1}])

    assert main(load_args(ampwrite_sandbox, source, *extra)) == EXIT_USAGE

    assert message in capsys.readouterr().err
    assert ampwrite_sandbox.requests == []


def test_an_existing_results_file_is_never_overwritten(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": 1}])
    out = tmp_path / "out.jsonl"
    out.write_text('{"index": 0, "status": "written"}\n')

    assert main(load_args(ampwrite_sandbox, source, "--out", str(out))) == EXIT_USAGE
    assert "--resume" in capsys.readouterr().err
    assert main(load_args(ampwrite_sandbox, tmp_path / "missing.jsonl")) == EXIT_USAGE
    assert main(load_args(ampwrite_sandbox, source, "--api-key", "")) == EXIT_USAGE
    assert ampwrite_sandbox.requests == []


def test_a_journal_left_by_a_killed_run_needs_resume(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(3)])
    out = tmp_path / "out.jsonl"
    out.write_text("")  # killed before its first outcome was recorded
    (tmp_path / "out.jsonl.inflight").write_text("[0, 1]\n")  # ... with 0 and 1 in flight

    assert main(load_args(ampwrite_sandbox, source, "--out", str(out))) == EXIT_USAGE
    assert "out.jsonl.inflight exists: pass --resume" in capsys.readouterr().err
    assert ampwrite_sandbox.requests == []

    out.unlink()  # even without the results file, the journal is read
    assert main(load_args(ampwrite_sandbox, source, "--out", str(out), "--resume")) == 4
    assert last_status(out) == {0: "unknown", 1: "unknown", 2: "written"}
    assert [r["n"] for r in ampwrite_sandbox.records(object_name="contacts")] == [2]
    assert not (tmp_path / "out.jsonl.inflight").exists()


def test_a_missing_csv_column_for_a_type_is_a_usage_error(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("name\nAda\n")

    assert main(load_args(ampwrite_sandbox, source, "--column-type", "age=int")) == EXIT_USAGE
    assert "age" in capsys.readouterr().err


def test_help_documents_the_results_file_and_exit_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["load", "--help"])

    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "usage: ampwrite load" in text and "--resume" in text and "--column-type" in text
    assert "exit status: 0 every record written" in text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_rate_and_eta() -> None:
    screen = Terminal()
    bar = ProgressBar(screen, total=200, enabled=True)
    bar.update(50, force=True)
    bar.finish(200)

    drawn = screen.getvalue()
    assert drawn.startswith("\r[")
    assert " 25% 50/200" in drawn and "rec/s" in drawn and "ETA" in drawn
    assert "100% 200/200" in drawn and drawn.endswith("\n")

    unknown_total = Terminal()
    ProgressBar(unknown_total, total=None, enabled=True).update(7, force=True)
    assert "7 records" in unknown_total.getvalue()
    quiet = Terminal()
    ProgressBar(quiet, total=10, enabled=False).update(1, force=True)
    assert quiet.getvalue() == ""


def test_progress_counts_csv_records_not_lines(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = "".join(f'{i},"line one\nline two of note {i}"\n' for i in range(30))
    source = tmp_path / "notes.csv"
    source.write_text("n,note\n" + rows + "\n", encoding="utf-8")  # 61 lines of text
    assert count_records(str(source), "csv") == 30
    assert count_records(str(jsonl(tmp_path / "a.jsonl", [{"n": 1}] * 7)), "jsonl") == 7
    assert count_records(str(tmp_path / "missing.csv"), "csv") is None
    if hasattr(os, "mkfifo"):  # counting a pipe would take records from the load
        os.mkfifo(tmp_path / "pipe")
        assert count_records(str(tmp_path / "pipe"), "jsonl") is None

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    status = main(load_args(ampwrite_sandbox, source, "--batch-size", "5"))

    assert status == EXIT_OK
    drawn = screen.getvalue()
    assert "/30 " in drawn or "30 records" in drawn  # the total, once counted, is right
    assert "/61" not in drawn and "/60" not in drawn


def _command(sandbox: Sandbox, *args: str) -> list[str]:
    code = "import sys; from ampwrite.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *load_args(sandbox, *args)]


@contextlib.contextmanager
def running(command: list[str], **options: Any) -> Iterator[subprocess.Popen[str]]:
    """`ampwrite load` in a child process, killed at the end if it has not exited."""
    process = subprocess.Popen(command, text=True, **options)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_an_interrupted_run_records_what_it_sent_and_resumes(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    total = 2_000
    source = jsonl(tmp_path / "in.jsonl", [{"key": f"k{i}"} for i in range(total)])
    out = tmp_path / "out.jsonl"
    ampwrite_sandbox.set_faults(Faults(latency=0.05))
    command = _command(ampwrite_sandbox, str(source), "--out", str(out), "--batch-size", "10")

    with running(command, stderr=subprocess.PIPE) as process:
        while not out.exists() or out.stat().st_size < 1_000:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "--resume" in stderr
    recorded = last_status(out)
    stored = Counter(r["key"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert 0 < len(recorded) < total
    assert set(stored) == {f"k{i}" for i in recorded}, "everything sent was recorded"

    ampwrite_sandbox.set_faults(Faults())
    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=60)

    assert finished.returncode == EXIT_OK, finished.stderr
    assert sorted(last_status(out)) == list(range(total))
    stored = Counter(r["key"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert len(stored) == total and max(stored.values()) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX signals")
def test_sigterm_stops_gracefully_too(ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(2_000)])
    out = tmp_path / "out.jsonl"
    ampwrite_sandbox.set_faults(Faults(latency=0.05))
    command = _command(ampwrite_sandbox, str(source), "--out", str(out), "--batch-size", "10")
    with running(command, stderr=subprocess.PIPE) as process:
        while not out.exists() or out.stat().st_size == 0:
            assert process.poll() is None
            time.sleep(0.02)
        process.terminate()
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert len(last_status(out)) == len(ampwrite_sandbox.records(object_name="contacts"))


def test_resent_unknown_records_refused_as_duplicates_stay_unknown(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    ampwrite_sandbox.configure_object("unique_people", unique_fields=["email"])
    source = jsonl(tmp_path / "in.jsonl", [{"email": f"u{i}@x"} for i in range(3)])
    out = tmp_path / "out.jsonl"
    args = load_args(ampwrite_sandbox, source, "--out", str(out))
    args[args.index("contacts")] = "unique_people"
    ampwrite_sandbox.set_faults(Faults(commit_then_fail=1.0))  # stored, then a 5xx

    assert main(args) == EXIT_TRANSPORT
    assert set(last_status(out).values()) == {"unknown"}

    ampwrite_sandbox.set_faults(Faults())
    status = main([*args, "--resume", "--retry-unknown"])

    assert status == EXIT_TRANSPORT
    assert set(last_status(out).values()) == {"unknown"}  # stored once, never "failed"
    last = {entry["index"]: entry for entry in results(out)}
    assert all("earlier run may have written it" in last[i]["error"] for i in range(3))
    assert len(ampwrite_sandbox.records(object_name="unique_people")) == 3


def test_csv_an_unclosed_quote_fails_its_row_only(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b'name,note\nAda,"open\nBob,x\n')
    out = tmp_path / "out.jsonl"

    status = main(load_args(ampwrite_sandbox, source, "--out", str(out)))

    assert status == EXIT_API_ERROR
    assert last_status(out) == {0: "failed"}
    assert "not CSV" in results(out)[0]["error"]


def test_csv_duplicate_header_names_are_a_usage_error(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("email,name,email\na@x,Ada,b@x\n")

    assert main(load_args(ampwrite_sandbox, source)) == EXIT_USAGE
    assert "email" in capsys.readouterr().err
    assert writes(ampwrite_sandbox) == 0


def test_jsonl_with_a_byte_order_mark(ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"n": 0}\n{"n": 1}\n')

    assert main(load_args(ampwrite_sandbox, source)) == EXIT_OK
    assert sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts")) == [0, 1]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_results_file_that_cannot_be_written_stops_the_run_honestly(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(300)])
    out = tmp_path / "out.jsonl"
    out.symlink_to("/dev/full")  # every write: no space left on device

    status = main(load_args(ampwrite_sandbox, source, "--out", str(out), "--batch-size", "10"))

    err = capsys.readouterr().err
    assert status == EXIT_TRANSPORT  # written, without a result line
    assert f"cannot write {out}" in err and "cannot read" not in err
    shown = [
        json.loads(line.removeprefix("ampwrite load: not recorded: "))
        for line in err.splitlines()
        if line.startswith("ampwrite load: not recorded: ")
    ]
    stored = sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert sorted(entry["index"] for entry in shown) == stored
    assert 0 < len(stored) < 300  # it stopped sending
    assert (tmp_path / "out.jsonl.inflight").exists(), "kept: outcomes were not recorded"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX signals")
def test_a_second_interrupt_records_the_abandoned_records_as_unknown(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"key": f"k{i}"} for i in range(2_000)])
    out = tmp_path / "out.jsonl"
    ampwrite_sandbox.set_faults(Faults(latency=1.0))
    command = _command(ampwrite_sandbox, str(source), "--out", str(out), "--batch-size", "10")
    with running(command, stderr=subprocess.PIPE) as process:
        # the first 4 requests answered, and the next ones waiting out their latency
        while len(ampwrite_sandbox.requests) < 4 or ampwrite_sandbox.wait_idle(timeout=0):
            assert process.poll() is None
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)  # let the first be handled on its own
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "were not sent" not in stderr or "may have been written" in stderr
    assert ampwrite_sandbox.wait_idle(timeout=30)  # what the abandoned requests did, done
    recorded = last_status(out)
    stored = {r["key"] for r in ampwrite_sandbox.records(object_name="contacts")}
    assert stored <= {f"k{i}" for i in recorded}, "every record that may be written has a line"
    assert all(recorded[int(key[1:])] in ("written", "unknown") for key in stored)


def test_a_killed_run_leaves_a_journal_so_resume_does_not_resend(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    total = 2_000
    source = jsonl(tmp_path / "in.jsonl", [{"key": f"k{i}"} for i in range(total)])
    out = tmp_path / "out.jsonl"
    journal = tmp_path / "out.jsonl.inflight"
    ampwrite_sandbox.set_faults(Faults(latency=0.5))
    command = _command(ampwrite_sandbox, str(source), "--out", str(out), "--batch-size", "10")
    with running(command, stderr=subprocess.DEVNULL) as process:
        # some outcomes recorded, and the next requests waiting out their latency
        while len(ampwrite_sandbox.requests) < 4 or ampwrite_sandbox.wait_idle(timeout=0):
            assert process.poll() is None
            time.sleep(0.01)
        process.kill()  # no chance to record anything more
        process.wait()
    assert ampwrite_sandbox.wait_idle(timeout=30)  # the requests it left have been applied
    stored = {r["key"] for r in ampwrite_sandbox.records(object_name="contacts")}
    recorded = last_status(out) if out.exists() else {}
    assert stored - {f"k{i}" for i in recorded}, "some records were written without a line"
    assert journal.exists()

    ampwrite_sandbox.set_faults(Faults())
    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=60)

    assert finished.returncode == EXIT_TRANSPORT, finished.stderr  # some outcomes unknown
    assert "are not sent again" in finished.stderr
    final = last_status(out)
    assert sorted(final) == list(range(total))
    by_key = Counter(r["key"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert max(by_key.values()) == 1, "nothing resent that the killed run had sent"
    assert set(final.values()) == {"written", "unknown"}
    for index, status in final.items():
        if status == "written":
            assert f"k{index}" in by_key
    # unknown: journaled by the killed run, so written by it, or killed before sending
    assert stored - {f"k{i}" for i in recorded} <= {
        f"k{i}" for i, status in final.items() if status == "unknown"
    }
    assert not journal.exists(), "a run that ends on its own removes its journal"


def test_a_journal_that_cannot_be_written_stops_the_run_before_sending(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full to make writes fail")
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(50)])
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.inflight").symlink_to("/dev/full")  # every write: no space left

    status = main(load_args(ampwrite_sandbox, source, "--out", str(out), "--batch-size", "10"))

    assert status == EXIT_USAGE
    assert "out.jsonl.inflight" in capsys.readouterr().err
    assert writes(ampwrite_sandbox) == 0
    assert ampwrite_sandbox.records(object_name="contacts") == []
    assert not out.read_text()  # nothing sent, nothing recorded: a --resume sends it all


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX signals")
def test_a_signal_while_stdin_waits_stops_the_load(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "out.jsonl"
    command = _command(ampwrite_sandbox, "-", "--out", str(out), "--batch-size", "3")
    log = tmp_path / "stderr.txt"
    with (
        log.open("w") as stderr_file,
        running(command, stdin=subprocess.PIPE, stderr=stderr_file) as process,
    ):
        assert process.stdin is not None
        process.stdin.write("".join(json.dumps({"n": i}) + "\n" for i in range(3)))
        process.stdin.flush()  # and nothing more: the producer is slow
        deadline = time.monotonic() + 20
        while len(ampwrite_sandbox.records(object_name="contacts")) < 3:  # sent; now it reads
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)  # stdin still open: the read was not waited for
    process.stdin.close()
    stderr = log.read_text()

    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted; records without an outcome were not sent" in stderr
    assert last_status(out) == {0: "written", 1: "written", 2: "written"}
    assert not (tmp_path / "out.jsonl.inflight").exists()


# -- a results file that is damaged, or not this input's ---------------------------------------


HUGE = 10**12


@pytest.mark.parametrize("where", ["results file", "journal"])
def test_resume_with_an_index_the_input_does_not_have_sends_the_rest_and_warns(
    ampwrite_sandbox: Sandbox,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(5)])
    out = tmp_path / "out.jsonl"
    done = [{"index": i, "status": "written", "record_id": f"r{i}", "error": None} for i in (0, 1)]
    if where == "journal":
        (tmp_path / "out.jsonl.inflight").write_text(f"[{HUGE}]\n")
    else:
        done.append({"index": HUGE, "status": "failed", "record_id": None, "error": "refused"})
    out.write_text("".join(json.dumps(d) + "\n" for d in done))

    status = main(load_args(ampwrite_sandbox, source, "--out", str(out), "--resume"))

    assert status == EXIT_OK  # no record of this input failed or is unknown
    assert sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts")) == [2, 3, 4]
    assert {i: s for i, s in last_status(out).items() if i < 5} == dict.fromkeys(
        range(5), "written"
    )
    err = capsys.readouterr().err
    assert f"warning: {out} has outcomes for 1 record(s) that {source} does not have" in err
    assert f"it has 5 records; the first such index is {HUGE}" in err
    assert "2 settled by earlier runs" in err


@pytest.mark.parametrize(
    "line",
    [
        {"index": -1, "status": "written"},
        {"index": 1.0, "status": "written"},
        {"index": "1", "status": "written"},
        {"index": True, "status": "written"},
        {"index": None, "status": "failed"},
        {"status": "written"},
    ],
    ids=["negative", "float", "string", "bool", "null", "missing"],
)
def test_a_results_line_whose_index_is_no_record_number_stops_the_resume(
    ampwrite_sandbox: Sandbox,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    line: dict[str, Any],
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(3)])
    out = tmp_path / "out.jsonl"
    first = json.dumps({"index": 0, "status": "written"})
    out.write_text(f'{first}\n{{"index": 1, "sta\n{json.dumps(line)}\n')  # a torn line between
    before = out.read_text()

    status = main(load_args(ampwrite_sandbox, source, "--out", str(out), "--resume"))

    assert status == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"ampwrite load: {out} line 3: " in err and "index" in err
    assert ampwrite_sandbox.requests == []
    assert out.read_text() == before


def test_reading_a_results_file_costs_memory_in_proportion_to_its_lines(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "out.jsonl"
    indices = [*range(20_000), *(HUGE + 7 * i for i in range(1_000))]
    path.write_text("".join(json.dumps({"index": i, "status": "written"}) + "\n" for i in indices))

    tracemalloc.start()
    try:
        state = read_results(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 1_000_000  # about a byte per record in order, a little more per line beyond
    assert state[0] == state[19_999] == state[HUGE] == state[HUGE + 6_993] != state[20_000]
    assert state[HUGE + 1] == state[20_000]  # no line: no status
