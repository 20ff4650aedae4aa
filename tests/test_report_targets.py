"""Where a report goes: a file is replaced whole; a device or FIFO that is there is written to, never replaced."""

from __future__ import annotations

import json
import os
import select
import stat
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner

PLAN = "plan: P\ntasks:\n  - id: t\n    name: T\n    run: touch ran.txt\n    criteria: [ran.txt exists]\n"

REPORTS = [("--junitxml", "xml"), ("--json", "json"), ("--evidence", "json")]


def _parses(kind: str, data: bytes) -> None:
    if kind == "xml":
        assert ET.fromstring(data).tag == "testsuites"
    else:
        assert isinstance(json.loads(data), dict)


class _Reader(threading.Thread):
    """Reads a FIFO, as ``>(jq .)`` would: open for reading before the run starts (so the writer never finds
    nobody reading), read until the writer closed it after :attr:`done` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.done = threading.Event()
        self.data = b""

    def run(self) -> None:
        chunks = []
        try:
            while True:
                select.select([self.fd], [], [], 0.05)
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if chunk:
                    chunks.append(chunk)
                elif self.done.is_set():
                    break  # no writer, and the run is over: all it wrote was read
                else:
                    time.sleep(0.01)  # no writer yet
        finally:
            os.close(self.fd)
            self.data = b"".join(chunks)

    def finish(self) -> bytes:
        self.done.set()
        self.join(30)
        assert not self.is_alive()
        return self.data


@pytest.mark.parametrize(("option", "kind"), REPORTS)
def test_a_report_to_a_fifo_reaches_its_reader_and_the_fifo_stays(
    planrunner: Planrunner, option: str, kind: str
) -> None:
    planrunner.makeplan("p", PLAN)
    fifo = planrunner.path / "out.fifo"
    os.mkfifo(fifo)
    reader = _Reader(fifo)
    reader.start()
    result = planrunner.run(option, str(fifo), "p.plan.yaml")
    data = reader.finish()
    assert result.ret == ExitCode.OK, result
    _parses(kind, data)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in planrunner.path.iterdir() if p.name.startswith(".out.fifo")] == []  # no temp file


@pytest.mark.parametrize(("option", "kind"), REPORTS)
def test_a_fifo_nobody_reads_is_a_one_line_error_not_a_hang(planrunner: Planrunner, option: str, kind: str) -> None:
    planrunner.makeplan("p", PLAN)
    fifo = planrunner.path / "out.fifo"
    os.mkfifo(fifo)
    result = planrunner.run(option, str(fifo), "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr.splitlines() == [f"ERROR: {option} {fifo}: cannot write: no process reads it"], result
    assert result.no_traceback()
    assert (planrunner.path / "ran.txt").exists()  # the run itself happened: only its report is missing
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize(("option", "kind"), REPORTS)
def test_a_device_is_written_to_never_replaced(planrunner: Planrunner, option: str, kind: str) -> None:
    """As root a rename over ``/dev/full`` would replace the device with a file; it is written to instead."""
    planrunner.makeplan("p", PLAN)
    result = planrunner.run(option, "/dev/full", "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr.splitlines() == [f"ERROR: {option} /dev/full: cannot write: No space left on device"]
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    result = planrunner.run(option, "/dev/null", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_merge_reports_writes_to_a_fifo(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", PLAN)
    assert planrunner.run("--json", "a.json", "p.plan.yaml").ret == ExitCode.OK
    fifo = planrunner.path / "merged.fifo"
    os.mkfifo(fifo)
    reader = _Reader(fifo)
    reader.start()
    result = planrunner.run("merge-reports", "-o", str(fifo), "a.json")
    data = reader.finish()
    assert result.ret == ExitCode.OK, result
    _parses("json", data)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize(("option", "kind"), REPORTS)
def test_a_file_that_is_there_is_still_replaced_whole(planrunner: Planrunner, option: str, kind: str) -> None:
    planrunner.makeplan("p", PLAN)
    target = planrunner.makefile("out.report", "old content " * 10_000)
    assert planrunner.run(option, str(target), "p.plan.yaml").ret == ExitCode.OK
    _parses(kind, target.read_bytes())
    assert stat.S_ISREG(os.lstat(target).st_mode)
