"""The parsed-plan cache: hits, what invalidates an entry, damaged entries, --cache-clear."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import planrun
from planrun import ExitCode
from planrun.plancache import MAGIC, key_path
from planrun.pluginmanager import conftest_module_name
from planrun.testing import Planrunner

PLAN = """\
plan: Cached
workdir: w
tasks:
  - id: one
    name: One
    criteria:
      - file_exists: a.txt
      - file_contains: {path: a.txt, pattern: '^hello'}
      - data: {file: d.json, path: 'k', equals: 1}
      - "`a.txt` exists"
  - id: two
    name: Two
    depends_on: [one]
    criteria:
      - file_not_contains: {path: a.txt, text: TODO}
      - {data: {file: d.json, path: 'k', type: integer}, name: typed key}
verification:
  - file_exists: d.json
"""


class Stats:
    """What the session's cache did, and the outcomes it reported."""

    def __init__(self) -> None:
        self.hits = self.misses = self.stores = -1
        self.locations: list[str] = []

    @planrun.hookimpl
    def planrun_sessionfinish(self, session: Any, exitstatus: int) -> None:
        cache = session.plancache
        if cache is not None:
            self.hits, self.misses, self.stores = cache.hits, cache.misses, cache.stores
        self.locations = [f"{r.nodeid} {c.location} {c.outcome}" for r in session.reports for c in r.criteria]


@pytest.fixture(autouse=True)
def machine_key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The per-machine key goes to a folder of this test, never the user's cache."""
    home = tmp_path.parent / f"{tmp_path.name}-xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


def project(planrunner: Planrunner, plan: str = PLAN) -> None:
    planrunner.makefile("w/a.txt", "hello\n")
    planrunner.makefile("w/d.json", '{"k": 1}')
    planrunner.makeplan("p", plan)


def run(planrunner: Planrunner, *args: str) -> tuple[Any, Stats]:
    stats = Stats()
    result = planrunner.run("--verify-only", "-v", *args, plugins=[stats])
    return result, stats


def pack(planrunner: Planrunner) -> Path:
    return planrunner.path / ".planrun" / "cache" / "plans" / "plans.pack"


def records(data: bytes) -> list[tuple[int, int, int]]:
    """(offset of the record, offset of its payload, payload length) of each record of a pack."""
    head = struct.Struct(">IQ")
    out, pos = [], len(MAGIC)
    while pos < len(data):
        name_len, size = head.unpack_from(data, pos)
        payload = pos + head.size + 64 + name_len
        out.append((pos, payload, size))
        pos = payload + size
    return out


def test_an_unchanged_plan_comes_from_the_cache_with_the_same_report(planrunner: Planrunner) -> None:
    project(planrunner)
    cold, first = run(planrunner)
    assert cold.ret == ExitCode.OK
    assert (first.hits, first.misses, first.stores) == (0, 1, 1)
    warm, second = run(planrunner)
    assert (second.hits, second.misses, second.stores) == (1, 0, 0)
    assert warm.parseoutcomes() == cold.parseoutcomes() == {"passed": 3}
    assert [line for line in warm.outstr.splitlines() if "::" in line or "    " in line] == [
        line for line in cold.outstr.splitlines() if "::" in line or "    " in line
    ]
    assert second.locations == first.locations  # criterion locations exact (file:line:col) from the cache
    assert "p.plan.yaml:7:9" in " ".join(second.locations)


def test_a_warm_run_does_not_call_the_collection_hooks(planrunner: Planrunner) -> None:
    project(planrunner)
    planrunner.makeconftest(
        """
        import os

        def planrun_collect_file(file_path):
            with open(os.path.join(os.path.dirname(file_path), "collected.log"), "a") as f:
                f.write(file_path + "\\n")
            return None
        """
    )
    assert run(planrunner)[0].ret == ExitCode.OK
    assert run(planrunner)[0].ret == ExitCode.OK
    assert len((planrunner.path / "collected.log").read_text().splitlines()) == 1  # parsed once, not twice


@pytest.mark.parametrize("swap", ["another criterion", "another task", "same size"])
def test_a_plan_that_changes_while_it_is_read_is_not_cached_under_the_old_content(
    planrunner: Planrunner, swap: str
) -> None:
    """The cache key hashes one read of the file, the loader parses another: the entry must name what was parsed.

    A conftest rewrites the plan file after the key's read and before the
    loader's. Put back as it was, the old content must be collected afresh,
    never served the compiled new one under the old content's key.
    """
    project(planrunner)
    old = PLAN
    new = {
        "another criterion": PLAN.replace("      - file_exists: a.txt\n", "      - file_exists: b.txt\n"),
        "another task": PLAN.replace("  - id: two\n    name: Two\n", "  - id: three\n    name: Three\n"),
        "same size": PLAN.replace("'^hello'", "'^HELLO'"),
    }[swap]
    assert new != old and (swap != "same size" or len(new) == len(old))
    planrunner.makefile("new.yaml", new)
    planrunner.makeconftest(
        """
        import os, pathlib
        import pluggy

        @pluggy.HookimplMarker("planrun")(hookwrapper=True, tryfirst=True)
        def planrun_collect_file(file_path):
            here = pathlib.Path(file_path).parent
            if (here / "swap").exists():  # between the cache key's read and the loader's
                pathlib.Path(file_path).write_bytes((here / "new.yaml").read_bytes())
            yield
        """
    )
    (planrunner.path / "swap").write_text("")
    swapped, first = run(planrunner)
    assert first.misses == 1 and first.stores == 0, swapped  # what it parsed is not what its key names
    (planrunner.path / "swap").unlink()
    planrunner.makeplan("p", old)
    again, second = run(planrunner)
    cold, third = run(planrunner, "--cache-clear")
    assert (second.hits, second.misses) == (0, 1), again
    assert second.locations == third.locations  # the old plan, as a run without a cache collects it
    assert [line for line in again.outstr.splitlines() if "::" in line] == [
        line for line in cold.outstr.splitlines() if "::" in line
    ]
    assert run(planrunner)[1].hits == 1  # stored now, under the content it was parsed from


_READY = """
import pathlib

KIND = {kind!r}

def planrun_compile_criterion(text):
    if text.endswith(" is ready"):
        return {{KIND: text.split("`")[1]}}
{then}
"""


def test_a_conftest_that_changes_after_its_import_is_stamped_as_it_ran(planrunner: Planrunner) -> None:
    """The stamp in the key is of the source that was imported, not of the file read again later.

    The conftest that runs compiles "`a.txt` is ready" to file_exists and, as
    it is imported, rewrites itself to compile it to file_absent. The next run
    (a new process: one process imports a conftest once) imports the rewritten
    one: its entry cannot be the first run's.
    """
    planrunner.makefile("w/a.txt", "hello\n")
    planrunner.makeplan(
        "p", "plan: p\nworkdir: w\ntasks:\n  - id: t\n    name: T\n    criteria: ['`a.txt` is ready']\n"
    )
    later = _READY.format(kind="file_absent", then="")
    planrunner.makeconftest(_READY.format(kind="file_exists", then=f"pathlib.Path(__file__).write_text({later!r})\n"))

    def cli() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "planrun", "--verify-only", "-v", "p.plan.yaml"]
        return subprocess.run(command, cwd=planrunner.path, capture_output=True, text=True, timeout=120)

    first = cli()
    assert first.returncode == ExitCode.OK, first
    assert (planrunner.path / "conftest.py").read_text() == later
    for _ in range(2):  # collected afresh, then from the entry the rewritten conftest made
        again = cli()
        assert again.returncode == ExitCode.TESTS_FAILED, again
        assert "exists but should not: a.txt" in again.stdout, again


@pytest.mark.parametrize(
    "change",
    ["plan", "conftest", "max-plan-bytes", "plugin object"],
)
def test_what_changes_compilation_rebuilds_the_entry(planrunner: Planrunner, change: str) -> None:
    project(planrunner)
    planrunner.makeconftest("X = 1\n")
    assert run(planrunner)[1].misses == 1
    args: list[str] = []
    plugins: list[Any] = []
    if change == "plan":
        planrunner.makeplan("p", PLAN.replace("'^hello'", "'^bye'"))
    elif change == "conftest":
        path = planrunner.makeconftest("X = 2\n")
        # As the next process would: one process imports a conftest once, and is stamped by what it imported.
        del sys.modules[conftest_module_name(path)]
    elif change == "max-plan-bytes":
        args = ["--max-plan-bytes", "100000"]
    else:

        class Sentences:
            @planrun.hookimpl
            def planrun_compile_criterion(self, text: str) -> None:
                return None

        plugins = [Sentences()]
    stats = Stats()
    result = planrunner.run("--verify-only", *args, plugins=[stats, *plugins])
    assert (stats.hits, stats.misses) == (0, 1)
    if change == "plan":  # the new content is what ran
        assert result.ret == ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(["*a.txt*^bye*"])
    else:
        assert result.ret == ExitCode.OK


def flip_payload_byte(data: bytes) -> bytes:
    _, payload, size = records(data)[0]
    at = payload + size // 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def truncate_half(data: bytes) -> bytes:
    _, payload, size = records(data)[0]
    return data[: payload + size // 2]


def truncate_header(data: bytes) -> bytes:
    return data[: len(MAGIC) + 5]


def other_format(data: bytes) -> bytes:
    return b"planrun-planpack-0\n" + data[len(MAGIC) :]


def garbage(data: bytes) -> bytes:
    return os.urandom(len(data))


def empty(data: bytes) -> bytes:
    return b""


@pytest.mark.parametrize("damage", [flip_payload_byte, truncate_half, truncate_header, other_format, garbage, empty])
def test_a_damaged_entry_is_ignored_and_rebuilt(planrunner: Planrunner, damage: Any) -> None:
    project(planrunner)
    cold, _ = run(planrunner)
    pack(planrunner).write_bytes(damage(pack(planrunner).read_bytes()))
    warm, stats = run(planrunner)
    assert (stats.hits, stats.misses, stats.stores) == (0, 1, 1)
    assert warm.ret == ExitCode.OK
    assert warm.parseoutcomes() == cold.parseoutcomes()
    assert run(planrunner)[1].hits == 1  # rebuilt: the next run hits again


class Boom:
    """Unpickling this runs code: it creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (open, (str(self.marker), "w"))


def test_a_planted_pickle_is_never_unpickled(planrunner: Planrunner) -> None:
    project(planrunner)
    run(planrunner)
    data = pack(planrunner).read_bytes()
    offset, payload, size = records(data)[0]
    marker = planrunner.path / "pwned"
    evil = pickle.dumps(Boom(marker))
    head = struct.Struct(">IQ")
    name_len, _ = head.unpack_from(data, offset)
    forged = data[:offset] + head.pack(name_len, len(evil)) + data[offset + head.size : payload] + evil
    pack(planrunner).write_bytes(forged)
    result, stats = run(planrunner)
    assert not marker.exists()  # the HMAC did not verify: the bytes were never unpickled
    assert (result.ret, stats.hits, stats.misses) == (ExitCode.OK, 0, 1)


@pytest.mark.parametrize("foreign", [True, False])
def test_an_authentic_entry_for_another_key_or_version_is_ignored(planrunner: Planrunner, foreign: bool) -> None:
    """Signed with the machine key, but under another key text (another planrun version): rebuilt.

    The key text is bound by the HMAC, not stored. The control (``foreign=False``: the same forging,
    signed under the current key text) is used: the forging is sound.
    """
    project(planrunner)
    keys = KeyText()
    planrunner.run("--verify-only", plugins=[keys])
    data = pack(planrunner).read_bytes()
    offset, payload, size = records(data)[0]
    key = key_path().read_bytes()
    signed_under = keys.text.replace("planrun ", "planrun 0.0.0-other ", 1) if foreign else keys.text
    assert signed_under != keys.text or not foreign
    mac = hmac.new(key, signed_under.encode(), hashlib.sha256)
    mac.update(b"\0")
    mac.update(data[payload : payload + size])
    digest_at = offset + struct.Struct(">IQ").size
    forged = data[: digest_at + 32] + mac.digest() + data[digest_at + 64 :]
    pack(planrunner).write_bytes(forged)
    result, stats = run(planrunner)
    assert (result.ret, stats.hits, stats.misses) == ((ExitCode.OK, 0, 1) if foreign else (ExitCode.OK, 1, 0))


class KeyText:
    """The key text of the first collected plan, as the session's cache computes it."""

    text = ""

    @planrun.hookimpl
    def planrun_collection_finish(self, session: Any) -> None:
        cplan = session.plans[0]
        found = session.plancache.key_of(cplan.source_file, cplan.display, cplan.scope.hook)
        self.text = found[1]


def test_a_key_others_can_read_is_not_used(planrunner: Planrunner, machine_key_home: Path) -> None:
    project(planrunner)
    path = key_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"k" * 32)
    path.chmod(0o644)
    run(planrunner)
    result, stats = run(planrunner)
    assert result.ret == ExitCode.OK
    assert (stats.hits, stats.stores) == (0, 0)
    assert not pack(planrunner).exists()


def test_the_key_is_made_private_outside_the_rootdir(planrunner: Planrunner, machine_key_home: Path) -> None:
    project(planrunner)
    run(planrunner)
    path = key_path()
    assert path.is_relative_to(machine_key_home)
    assert not path.is_relative_to(planrunner.path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_bytes()) == 32


def test_cache_clear_empties_the_cache_and_keeps_the_state(planrunner: Planrunner) -> None:
    project(planrunner)
    run(planrunner)
    state = planrunner.makefile(".planrun/state/keep.json", "{}")
    verdict = planrunner.makefile(".planrun/cache/judge/v.json", "{}")
    result, stats = run(planrunner, "--cache-clear")
    assert result.ret == ExitCode.OK
    assert (stats.hits, stats.misses, stats.stores) == (0, 1, 1)
    assert state.read_text() == "{}"
    assert not verdict.exists()
    assert pack(planrunner).exists()  # rebuilt by this run


def test_cache_clear_removes_a_symlinked_cache_without_following_it(planrunner: Planrunner, tmp_path: Path) -> None:
    project(planrunner)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    (planrunner.path / ".planrun").mkdir()
    (planrunner.path / ".planrun" / "cache").symlink_to(outside)
    result, _ = run(planrunner, "--cache-clear")
    assert result.ret == ExitCode.OK
    assert (outside / "precious").read_text() == "x"


def test_errors_found_after_a_cache_hit_are_located_exactly(planrunner: Planrunner) -> None:
    """The marks are rebuilt from the cached text: the same file:line:col as a cold run."""
    project(planrunner)
    run(planrunner)
    (planrunner.path / "w" / "a.txt").unlink()
    (planrunner.path / "w" / "d.json").unlink()
    (planrunner.path / "w").rmdir()
    warm, stats = run(planrunner)
    assert stats.hits == 1
    cold, _ = run(planrunner, "--cache-clear")
    assert warm.ret == cold.ret == ExitCode.INTERRUPTED
    assert "p.plan.yaml:2:10: workdir 'w' is not a directory" in warm.outstr + warm.errstr
    assert (warm.outstr + warm.errstr).count("p.plan.yaml:2:10") == (cold.outstr + cold.errstr).count(
        "p.plan.yaml:2:10"
    )


def test_plans_with_errors_are_not_cached(planrunner: Planrunner) -> None:
    project(planrunner, PLAN.replace("file_exists: a.txt", "file_exist: a.txt"))
    first = run(planrunner)
    second = run(planrunner)
    assert first[0].ret == second[0].ret == ExitCode.INTERRUPTED
    assert (second[1].hits, second[1].stores) == (0, 0)
    assert "p.plan.yaml:7:9: unknown check kind 'file_exist'" in second[0].outstr + second[0].errstr


def test_the_cache_ignores_itself_in_git(planrunner: Planrunner) -> None:
    import subprocess

    env = {**planrun.git_env(), "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    subprocess.run(["git", "init", "-q", "."], cwd=planrunner.path, env=env, check=True)
    project(planrunner)
    assert run(planrunner)[0].ret == ExitCode.OK
    assert pack(planrunner).exists()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=planrunner.path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert ".planrun" not in status
    assert "p.plan.yaml" in status  # the probe sees untracked files
