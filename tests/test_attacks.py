"""Issue 6's classes tried again with other inputs: each attack failed on the code the fixes left (a "still" test guards what must keep working)."""

from __future__ import annotations

import fnmatch
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner

SECRET = "TOP-SECRET-outside"
LEAK = "LEAKED-LINE-42"  # only ever in the outside files: never in any output


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside every workdir: secret.txt, secret.json, sub/secret.txt."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "secret.txt").write_text(f"{LEAK}\n{SECRET}\n")
    (folder / "secret.json").write_text(json.dumps({"v": SECRET}) + "\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "secret.txt").write_text(SECRET + "\n")
    return folder


# -- 1-3: the workdir itself swapped for a symlink ---------------------------------

# Each criterion holds only if it is checked in the outside folder.
OUTSIDE_TRUE = [
    "file_contains: {path: secret.txt, text: TOP-SECRET-outside}",
    "file_contains: {path: sub/secret.txt, pattern: 'TOP-SECRET'}",
    "file_not_contains: {path: secret.txt, text: nothing-like-this}",
    "data: {file: secret.json, path: v, equals: TOP-SECRET-outside}",
    "file_exists: sub/secret.txt",
    "file_exists: '**/secret.txt'",
    "file_absent: only-inside.txt",
]

SWAP = 'd="$PWD"; cd ..; mv "$d" "$d.old"; ln -s {outside} "$d"'


@pytest.mark.parametrize("criterion", OUTSIDE_TRUE)
@pytest.mark.parametrize("workspace", ["inplace", "temp", "copy"])
def test_a_step_that_swaps_the_workdir_for_a_symlink_moves_no_check_outside(
    planrunner: Planrunner, outside: Path, criterion: str, workspace: str
) -> None:
    (planrunner.path / "w").mkdir()
    (planrunner.path / "w" / "only-inside.txt").write_text("x")
    planrunner.makeplan(
        "swap",
        f"""
plan: swap
workdir: w
workspace: {workspace}
tasks:
  - id: swap
    name: swaps its own workdir
    run: {SWAP.format(outside=outside)!r}
    criteria:
      - {criterion}
""",
    )
    result = planrunner.run("-rA")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(["*the workdir * was replaced: it now resolves to *, not *"])
    assert LEAK not in result.outstr
    assert result.no_traceback(), result


def test_a_command_check_that_swaps_the_workdir_fails_the_checks_after_it(
    planrunner: Planrunner, outside: Path
) -> None:
    (planrunner.path / "w").mkdir()
    marker = planrunner.path / "swapped"
    once = f"test -e {marker} || {{ touch {marker}; {SWAP.format(outside=outside)}; }}"  # the baseline runs it too
    planrunner.makeplan(
        "swap",
        f"""
plan: swap
workdir: w
tasks:
  - id: one
    name: nothing
    run: "true"
    criteria:
      - command: {once!r}
      - file_exists: secret.txt
  - id: two
    name: later
    run: "true"
    criteria:
      - data: {{file: secret.json, path: v, equals: TOP-SECRET-outside}}
""",
    )
    result = planrunner.run()
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(failed=2)
    assert result.outstr.count("was replaced") >= 2, result.outstr


# -- 9/25: hints on a sentence that compiles to nothing stay cheap ------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "sentence",
    [
        " ".join(["foo", "contains", "`x`", "passes", "a/b", "exists", "bar"] * 12000),  # many words
        "contains " + "a" * 400000,  # one huge word
        " ".join(["deleted", "outputs"] * 40000),  # words the forms hold
    ],
    ids=["many-words", "huge-word", "form-words"],
)
def test_a_long_unmatched_sentence_is_a_quick_located_error(planrunner: Planrunner, sentence: str) -> None:
    planrunner.makeplan(
        "long",
        f"plan: p\ntasks:\n  - id: t\n    name: n\n    run: touch executed.txt\n    criteria:\n      - '{sentence}'\n",
    )
    result = planrunner.run("--max-plan-bytes", "10000000")
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines(["long.plan.yaml:7:9: *"])
    assert result.no_traceback(), result
    assert not (planrunner.path / "executed.txt").exists()


# -- 1/2: a glob that cannot search the whole tree says so (file_absent never passes on it) --


def _deep_tree(root: Path, depth: int) -> None:
    folder = root.joinpath(*["d"] * depth)
    folder.mkdir(parents=True)
    (folder / "deep.txt").write_text("x")


@pytest.mark.parametrize(
    "criterion",
    [
        "file_absent: '**/deep.txt'",
        "file_absent: 'd/**/deep.txt'",
        "file_absent: '**/**/**/**/**/**/deep.txt'",  # also: repeated ** cost no more than one
        "file_absent: '**/d/**/nothing'",
        "file_exists: '**/deep.txt'",
    ],
)
def test_a_glob_past_the_depth_limit_fails_instead_of_finding_nothing(planrunner: Planrunner, criterion: str) -> None:
    _deep_tree(planrunner.path, 260)
    planrunner.makeplan("deep", f"plan: p\ntasks:\n  - id: t\n    name: n\n    criteria:\n      - {criterion}\n")
    result = planrunner.run()
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(["*: folders deeper than 200 levels were not searched, so nothing can be said"])


def test_a_glob_within_the_depth_limit_still_finds_and_misses(planrunner: Planrunner) -> None:
    _deep_tree(planrunner.path, 150)
    planrunner.makeplan(
        "deep",
        "plan: p\ntasks:\n  - id: t\n    name: n\n    criteria:\n"
        "      - file_exists: '**/**/deep.txt'\n      - file_absent: '**/nothing'\n",
    )
    planrunner.run().assert_outcomes(passed=1)


# -- 4/9: a command check whose cwd or environment the system refuses: one line, no traceback --


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("{run: 'true', cwd: %s}" % ("n" * 300), "cwd n* cannot be used: File name too long"),
        ("{run: 'true', cwd: %s}" % ("c/" * 2100 + "c"), "cwd c/c/c/*"),
        ("{run: 'true', env: {BIG: %s}}" % ("v" * 200000), "`true` could not be started: Argument list too long"),
    ],
    ids=["long-name", "long-path", "huge-env-value"],
)
def test_a_command_that_cannot_start_fails_in_one_line(planrunner: Planrunner, args: str, expected: str) -> None:
    planrunner.makeplan("cmd", f"plan: p\ntasks:\n  - id: t\n    name: n\n    criteria:\n      - command: {args}\n")
    result = planrunner.run()
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines([f"  {expected}"])
    assert "crashed" not in result.outstr and result.no_traceback(), result


@pytest.mark.parametrize("name", ["A=B", "", "=x"])
def test_an_environment_variable_name_the_system_refuses_is_a_compile_error(planrunner: Planrunner, name: str) -> None:
    planrunner.makeplan(
        "cmd",
        "plan: p\ntasks:\n  - id: t\n    name: n\n    run: touch executed.txt\n    criteria:\n"
        f"      - command: {{run: 'true', env: {{'{name}': x}}}}\n",
    )
    result = planrunner.run()
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines([f"cmd.plan.yaml:7:*: command: env: {name!r} is not a variable name*"])
    assert not (planrunner.path / "executed.txt").exists()


# -- 4: a redirect's Location that urllib cannot even split -------------------------


@pytest.fixture
def answer() -> Iterator[list[bytes]]:
    """A server on 127.0.0.1 answering every request with ``answer[0]`` (set by the test); ``answer[1]``: its port."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()
    reply: list[bytes] = [b""]

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(reply[0])
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    reply.append(str(sock.getsockname()[1]).encode())
    try:
        yield reply
    finally:
        stop.set()
        thread.join(5)
        sock.close()


@pytest.mark.parametrize("location", ["http://[::1", "//[zz", "http://[::1/x", "https://["])
def test_a_redirect_to_an_unparsable_location_fails_in_one_line(
    planrunner: Planrunner, answer: list[bytes], location: str
) -> None:
    answer[0] = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
    port = answer[1].decode()
    planrunner.makeplan(
        "h", f"plan: p\ntasks:\n  - id: t\n    name: n\n    criteria:\n      - http: http://127.0.0.1:{port}/\n"
    )
    result = planrunner.run()
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "crashed" not in result.outstr and result.no_traceback(), result
    result.stdout.fnmatch_lines([f"  GET http://127.0.0.1:{port}/*redirect*"])


# -- 13: a conftest's hooks that break while planrun starts ------------------------

HOOK = "from planrun import hookimpl\n\n\n@hookimpl\n"


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        ("def planrun_register_checks():\n    return 5\n", "planrun_register_checks returned 5, not a list of*"),
        ("def planrun_register_checks():\n    return None or 'file_exists'\n", "*returned 'file_exists', not a list*"),
        ("def planrun_register_executors():\n    return 1.5\n", "planrun_register_executors returned 1.5, not a list*"),
        (
            "def planrun_addoption(parser):\n    parser.add_argument('-k')\n",
            "a plugin's planrun_addoption failed: argument -k: conflicting option string: -k",
        ),
        (
            "def planrun_addoption(parser):\n    parser.add_argument('--timeout', '-x')\n",
            "a plugin's planrun_addoption failed: argument --timeout/-x: conflicting option strings: --timeout, -x",
        ),
    ],
)
def test_a_conftest_that_registers_wrongly_is_a_one_line_usage_error(
    planrunner: Planrunner, hook: str, expected: str
) -> None:
    planrunner.makeconftest(HOOK + hook)
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: n, run: touch ran, criteria: [{file_exists: ran}]}\n")
    result = planrunner.runsubprocess("p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.no_traceback(), result
    assert [line for line in result.errstr.splitlines() if line.startswith("ERROR")] == [result.errstr.strip()]
    assert result.errstr.startswith("ERROR: ") and fnmatch.fnmatch(result.errstr.strip(), f"ERROR: *{expected}")
    assert not (planrunner.path / "ran").exists()


@pytest.mark.parametrize(
    "hook",
    [
        "def planrun_configure(config):\n    raise ValueError('configure broke')\n",
        "def planrun_addoption(parser):\n    raise RuntimeError('addoption broke')\n",
        "def planrun_configure(config):\n    {}['missing']\n",
    ],
)
def test_a_conftest_hook_that_crashes_while_starting_is_an_internal_error(planrunner: Planrunner, hook: str) -> None:
    """Exit 3 (never 1, which means failures) with the plugin's traceback and the one INTERNAL ERROR line."""
    planrunner.makeconftest(HOOK + hook)
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: n, run: touch ran, criteria: [{file_exists: ran}]}\n")
    result = planrunner.runsubprocess("p.plan.yaml")
    assert result.ret == ExitCode.INTERNAL_ERROR, result
    assert "Traceback" in result.errstr and "conftest.py" in result.errstr
    assert result.errstr.rstrip().splitlines()[-1].startswith("INTERNAL ERROR: planrun crashed while configuring")
    assert not (planrunner.path / "ran").exists()


# -- 11/15: workspace: copy of a sparse file costs what it holds, not its size ------------

GIB = 1 << 30


@pytest.mark.parametrize(
    "marks",
    [[], [0], [GIB - 3], [GIB // 2, GIB - 3], [0, 4096 * 3 + 1, GIB // 3]],
    ids=["all-hole", "data-first", "data-last", "middle-and-end", "scattered"],
)
def test_a_sparse_file_is_copied_sparse_with_its_bytes(planrunner: Planrunner, marks: list[int]) -> None:
    (planrunner.path / "w").mkdir()
    with open(planrunner.path / "w" / "sparse.bin", "wb") as f:
        f.truncate(GIB)
        for n, at in enumerate(marks):
            f.seek(at)
            f.write(b"M%d" % n)
    expected = "".join(f"{at}:M{n};" for n, at in enumerate(marks))
    reads = "".join(
        f"printf '{at}:'; dd if=sparse.bin bs=1 skip={at} count=2 status=none; printf ';'; " for at in marks
    )
    planrunner.makeplan(
        "sparse",
        f"""
plan: p
workdir: w
workspace: copy
tasks:
  - id: t
    name: reads the copy
    run: |
      du -k sparse.bin | cut -f1 > kib.txt
      stat -c %s sparse.bin > size.txt
      {{ {reads} true; }} > marks.txt
    criteria:
      - "`test $(cat kib.txt) -lt 4096` passes"
      - file_contains: {{path: size.txt, text: "{GIB}"}}
      - file_contains: {{path: marks.txt, pattern: '\\A{expected}\\Z'}}
""",
    )
    result = planrunner.run("-rA")
    result.assert_outcomes(passed=1)


# -- 9/17: a check's own ``except Exception`` cannot swallow its time limit ---------------

SWALLOWER = """
import time

from planrun import ArgsModel, CheckKind, fail, hookimpl


class NoArgs(ArgsModel):
    pass


def sleeps(args, ctx):
    try:
        time.sleep(30)
    except Exception as exc:
        fail(f"swallowed {type(exc).__name__}")


def retries(args, ctx):
    while True:  # a retry loop that takes every error for a reason to try again
        try:
            time.sleep(0.01)
        except Exception:
            continue


def loops(args, ctx):
    while True:
        try:
            sum(range(1000))
        except Exception as exc:
            fail(f"swallowed {type(exc).__name__}")


@hookimpl
def planrun_register_checks():
    return [CheckKind(n, NoArgs, f, default_timeout=0.5) for n, f in
            (("sleeps", sleeps), ("retries", retries), ("loops", loops))]
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["sleeps", "retries", "loops"])
def test_a_time_limit_is_not_swallowed_by_except_exception(planrunner: Planrunner, kind: str) -> None:
    planrunner.makeconftest(SWALLOWER)
    planrunner.makeplan("t", f"plan: p\ntasks:\n  - id: t\n    name: n\n    criteria:\n      - {kind}: {{}}\n")
    result = planrunner.run()
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "swallowed" not in result.outstr, result.outstr
    result.stdout.fnmatch_lines(["  timed out: *"])


# -- 4: the http check's timeout bounds the whole answer, however slowly it drips ------------

DRIPS = {
    "status-line": [b"HTTP/1.1 200 " + b"O" * 200] + [b"K"] * 400,
    "headers": [b"HTTP/1.1 200 OK\r\n"]
    + [piece for i in range(90) for piece in (b"X-%d" % i, b":", b" v", b"\r", b"\n")],
    "header-value": [b"HTTP/1.1 200 OK\r\nX-Long: "] + [b"v"] * 400,
}


@pytest.fixture
def drip() -> Iterator[list[object]]:
    """A server on 127.0.0.1 sending ``drip[0]`` (pieces) one every 50 ms; ``drip[1]``: its port."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()
    state: list[object] = [[], sock.getsockname()[1]]

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(65536)
                    for piece in state[0]:  # type: ignore[attr-defined]
                        if stop.wait(0.05):
                            return
                        conn.sendall(piece)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(5)
        sock.close()


@pytest.mark.parametrize("what", list(DRIPS))
def test_a_dripping_http_answer_times_out_at_the_checks_own_timeout(
    planrunner: Planrunner, drip: list[object], what: str
) -> None:
    drip[0] = DRIPS[what]
    url = f"http://127.0.0.1:{drip[1]}/"
    planrunner.makeplan(
        "h", f"plan: p\ntasks:\n  - id: t\n    name: n\n    criteria:\n      - {{http: {url}, timeout: 1}}\n"
    )
    result = planrunner.run()
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines([f"  timed out: GET {url} did not answer in 1s"])


@pytest.mark.parametrize("args", [["\x1b[2J"], ["\x9b31m", "x"], ["\u202eevil"]])
def test_planrun_schema_shows_a_wrong_argument_escaped(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from planrun.cli import main

    assert main(["schema", *args]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert err.startswith("ERROR: planrun schema takes no arguments, got ") and err.count("\n") == 1
    assert err.isascii() and "\x1b" not in err and "\x9b" not in err, repr(err)


# -- 7: an interrupt while the report is written says the report is cut ------------------


@pytest.mark.parametrize(
    "interrupt",
    [
        "raise KeyboardInterrupt",
        "os.kill(os.getpid(), signal.SIGINT)",
        "os.kill(os.getpid(), signal.SIGTERM)",
        "os.kill(os.getpid(), signal.SIGTERM); os.kill(os.getpid(), signal.SIGINT)",
    ],
)
def test_an_interrupt_while_reporting_says_the_report_is_incomplete(planrunner: Planrunner, interrupt: str) -> None:
    planrunner.makeconftest(
        "import os\nimport signal\n\nfrom planrun import hookimpl\n\n\n@hookimpl\n"
        f"def planrun_terminal_summary(terminalreporter, exitstatus, config):\n    {interrupt}\n"
    )
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: n, run: 'true', criteria: [{file_exists: nope}]}\n")
    result = planrunner.runsubprocess("p.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    assert result.errstr == "ERROR: interrupted while reporting: the report above is incomplete\n", result
    assert result.no_traceback(), result


# -- 15: a config file is read with a bound ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "sparse"),
    [("pyproject.toml", True), ("planrun.toml", True), ("pyproject.toml", False)],
    ids=["sparse-pyproject", "sparse-planrun-toml", "long-comments"],
)
def test_a_huge_config_file_is_refused_without_reading_it_whole(
    planrunner: Planrunner, name: str, sparse: bool
) -> None:
    config = planrunner.path / name
    if sparse:
        with open(config, "wb") as f:
            f.truncate(1 << 30)
    else:
        config.write_text("[tool.planrun]\n" + "# padding\n" * 900_000)
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: n, run: touch ran, criteria: [{file_exists: ran}]}\n")
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr == f"ERROR: {config}: over 8388608 bytes, too big for a config file\n", result
    assert not (planrunner.path / "ran").exists()
