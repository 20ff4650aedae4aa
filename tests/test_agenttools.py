"""The agent's tools (planrun.agenttools): every protection refuses, and nothing outside the workdir changes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from planrun.agenttools import PROTECTED_PATTERNS, TOOL_SCHEMAS, Toolbox, ToolError, sandbox_name, schemas
from planrun.atomic import write_atomic
from planrun.errors import UsageError
from planrun.process import descendants

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

CANARY = "sk-canary-5f3e9a1c7b"


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry below ``root``: its kind and content (files), target (links) or nothing."""
    found: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                found[rel] = (f"file {stat.S_IMODE(st.st_mode):o}", path.read_bytes().decode("latin-1"))
            else:
                found[rel] = (stat.filemode(st.st_mode)[0], "")
    return found


class Outside:
    """A folder beside the workdir holding files an agent must never read or change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        (path / "secret.txt").write_text("outside secret\n")
        (path / "sub").mkdir()
        (path / "sub" / "deep.txt").write_text("deep outside\n")
        self.before = snapshot(path)

    def assert_unchanged(self) -> None:
        assert snapshot(self.path) == self.before


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Outside:
    return Outside(tmp_path / "outside")


@pytest.fixture
def tb(work: Path) -> Iterator[Toolbox]:
    with Toolbox(work, sandbox="none", timeout=10) as box:
        yield box


def refused(fn: object, *args: object, match: str) -> str:
    """Call ``fn(*args)``, expect a ToolError matching ``match``; its one-line message."""
    assert callable(fn)
    with pytest.raises(ToolError, match=match) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# -- paths as written -------------------------------------------------------

BAD_PATHS = [
    ("/etc/passwd", "is absolute"),
    ("~/x", "is absolute"),
    ("../outside/secret.txt", "uses '..'"),
    ("a/../../outside/secret.txt", "uses '..'"),
    ("a/..", "uses '..'"),
    ("", "empty path"),
    ("a\x00b", "NUL byte"),
]


@pytest.mark.parametrize("path, message", BAD_PATHS)
@pytest.mark.parametrize("tool", ["read_file", "write_file", "edit_file", "list_dir", "search"])
def test_bad_paths_are_refused_before_anything_is_opened(
    tb: Toolbox, work: Path, outside: Outside, tool: str, path: str, message: str
) -> None:
    args = {
        "read_file": {"path": path},
        "write_file": {"path": path, "content": "pwned"},
        "edit_file": {"path": path, "old": "outside", "new": "pwned"},
        "list_dir": {"path": path},
        "search": {"pattern": "secret", "path": path},
    }[tool]
    refused(tb.call, tool, args, match=message)
    outside.assert_unchanged()
    assert list(work.iterdir()) == []


def test_absolute_path_into_the_workdir_is_refused_too(tb: Toolbox, work: Path) -> None:
    (work / "f.txt").write_text("x")
    refused(tb.read_file, str(work / "f.txt"), match="is absolute: paths are relative to the workdir")


# -- symlinks ---------------------------------------------------------------


def test_symlink_escape_in_the_first_component(tb: Toolbox, work: Path, outside: Outside) -> None:
    (work / "link").symlink_to(outside.path)
    refused(tb.read_file, "link/secret.txt", match="'link/secret.txt' resolves outside the workdir")
    refused(tb.write_file, "link/secret.txt", "pwned", match="'link' is a symlink.*leads outside")
    refused(tb.write_file, "link/new.txt", "pwned", match="'link' is a symlink")
    refused(tb.edit_file, "link/secret.txt", "outside", "pwned", match="'link' is a symlink")
    refused(tb.list_dir, "link", match="resolves outside")
    refused(tb.search, "secret", "link", match="resolves outside")
    outside.assert_unchanged()


def test_symlink_escape_in_a_middle_component(tb: Toolbox, work: Path, outside: Outside) -> None:
    (work / "a" / "b").mkdir(parents=True)
    (work / "a" / "b" / "up").symlink_to("../../../outside")  # relative, climbing out
    refused(tb.read_file, "a/b/up/sub/deep.txt", match="resolves outside")
    refused(tb.write_file, "a/b/up/sub/deep.txt", "pwned", match="'a/b/up' is a symlink")
    refused(tb.write_file, "a/b/up/sub/new/x.txt", "pwned", match="'a/b/up' is a symlink")
    refused(tb.list_dir, "a/b/up/sub", match="resolves outside")
    outside.assert_unchanged()


def test_symlink_escape_in_the_final_component(tb: Toolbox, work: Path, outside: Outside) -> None:
    (work / "f.txt").symlink_to(outside.path / "secret.txt")
    refused(tb.read_file, "f.txt", match="'f.txt' resolves outside the workdir")
    refused(tb.write_file, "f.txt", "pwned", match="'f.txt' is a symlink.*leads outside")
    refused(tb.edit_file, "f.txt", "outside", "pwned", match="'f.txt' is a symlink")
    outside.assert_unchanged()
    assert (work / "f.txt").is_symlink()


def test_dangling_symlink_is_never_written_through(tb: Toolbox, work: Path, outside: Outside) -> None:
    (work / "d.txt").symlink_to(outside.path / "created.txt")
    (work / "dd").symlink_to(outside.path / "newdir")
    refused(tb.write_file, "d.txt", "pwned", match="'d.txt' is a symlink")
    refused(tb.write_file, "dd/x.txt", "pwned", match="'dd' is a symlink")
    refused(tb.read_file, "d.txt", match="resolves outside")
    outside.assert_unchanged()  # neither created.txt nor newdir appeared


def test_symlink_inside_is_read_but_never_written_through(tb: Toolbox, work: Path) -> None:
    (work / "real.txt").write_text("real\n")
    (work / "alias.txt").symlink_to("real.txt")
    (work / "sub").mkdir()
    (work / "dirlink").symlink_to("sub")
    assert tb.read_file("alias.txt") == "real\n"
    refused(tb.write_file, "alias.txt", "changed", match="is a symlink: .*write its target 'real.txt' instead")
    refused(tb.write_file, "dirlink/x.txt", "x", match="'dirlink' is a symlink.*write its target 'sub' instead")
    assert (work / "real.txt").read_text() == "real\n"
    assert list((work / "sub").iterdir()) == []


def test_symlink_to_a_protected_path_is_refused_by_its_real_name(tb: Toolbox, work: Path) -> None:
    (work / ".git").mkdir()
    (work / ".git" / "config").write_text("[remote]\nurl = https://user:token@example.com\n")
    (work / "g").symlink_to(".git")
    (work / "p.txt").symlink_to("x.plan.yaml")
    (work / "x.plan.yaml").write_text("plan: x\n")
    refused(tb.read_file, "g/config", match="protected .git internals")
    refused(tb.list_dir, "g", match="protected .git internals")
    refused(tb.read_file, "p.txt", match="protected .a plan file")


def test_search_never_follows_symlinks(tb: Toolbox, work: Path, outside: Outside) -> None:
    (work / "link").symlink_to(outside.path)
    (work / "f.txt").symlink_to(outside.path / "secret.txt")
    (work / "own.txt").write_text("my secret\n")
    assert tb.search("secret") == "own.txt:1:my secret"


class Flipper:
    """A thread that keeps swapping ``work/name`` between a real entry and a symlink leading outside."""

    def __init__(self, work: Path, name: str, target: Path, real: str) -> None:
        self.work, self.name, self.target, self.real = work, name, target, real
        self.stop = threading.Event()
        self.flips = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Flipper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        path = self.work / self.name
        while not self.stop.is_set():
            try:
                if self.real == "file":
                    (self.work / "l.tmp").symlink_to(self.target)
                    os.replace(self.work / "l.tmp", path)
                    (self.work / "r.tmp").write_text("inside\n")
                    os.replace(self.work / "r.tmp", path)
                elif path.is_symlink():
                    path.unlink()
                    path.mkdir()
                else:
                    shutil.rmtree(path, ignore_errors=True)
                    path.symlink_to(self.target)
                self.flips += 1
            except OSError:
                for leftover in ("l.tmp", "r.tmp"):
                    (self.work / leftover).unlink(missing_ok=True)

    def until(self, flips: int) -> Iterator[int]:
        """Count on until the other thread has swapped ``flips`` times (and at least as many rounds)."""
        i = 0
        while self.flips < flips or i < flips:
            yield i
            i += 1
            time.sleep(0)  # let the flipper run


def test_a_file_swapped_for_a_symlink_during_reads_and_writes(tb: Toolbox, work: Path, outside: Outside) -> None:
    (work / "f.txt").write_text("inside\n")
    seen: set[str] = set()
    with Flipper(work, "f.txt", outside.path / "secret.txt", "file") as flipper:
        for _ in flipper.until(300):
            for call in (lambda: tb.read_file("f.txt"), lambda: tb.write_file("f.txt", "pwned\n")):
                try:
                    seen.add(call())
                except ToolError as exc:
                    seen.add(str(exc).split(":")[0])
    assert not [s for s in seen if "outside secret" in s]
    outside.assert_unchanged()


def test_a_folder_swapped_for_a_symlink_during_writes(tb: Toolbox, work: Path, outside: Outside) -> None:
    (work / "d").mkdir()
    with Flipper(work, "d", outside.path / "sub", "dir") as flipper:
        for i in flipper.until(300):
            for path in (f"d/x{i}.txt", "d/deep.txt"):
                try:
                    assert "outside" not in tb.write_file(path, "pwned\n") + tb.read_file("d/deep.txt")
                except ToolError:
                    pass
    outside.assert_unchanged()


def test_the_workdir_swapped_for_another_folder_is_refused(work: Path, tmp_path: Path, outside: Outside) -> None:
    box = Toolbox(work, sandbox="none")
    work.rename(tmp_path / "moved")
    work.symlink_to(outside.path)  # the workdir's path now leads elsewhere
    refused(box.read_file, "secret.txt", match="workdir (cannot be opened|was moved or replaced)")
    refused(box.write_file, "secret.txt", "pwned", match="workdir (cannot be opened|was moved or replaced)")
    refused(box.run_command, "echo pwned > secret.txt", match="workdir (cannot be opened|was moved or replaced)")
    outside.assert_unchanged()


# -- protected names --------------------------------------------------------

PROTECTED_WRITES = [
    ".git/config",
    ".git/hooks/pre-commit",
    "sub/.git/HEAD",
    ".GIT/config",
    ".Git./config",
    ".planrun/state.json",
    "a.plan.yaml",
    "plans/b.PLAN.YML",
    ".github/workflows/ci.yml",
    ".GitHub/Workflows/x.yml",
    ".github/actions/setup/action.yml",
    ".gitlab-ci.yml",
    ".circleci/config.yml",
    "azure-pipelines.yml",
    "Jenkinsfile",
    "jenkinsfile",
    ".pre-commit-config.yaml",
    ".claude/settings.json",
    "CLAUDE.md",
    "docs/claude.md",
    "AGENTS.md",
    ".cursor/rules/x.mdc",
    ".vscode/settings.json",
    ".idea/workspace.xml",
    ".aider.conf.yml",
    ".mcp.json",
    "sub/.MCP.json",
    ".github/instructions/x.instructions.md",
    ".github/prompts/p.prompt.md",
    ".clinerules",
    ".roo/rules.md",
    ".continue/config.yaml",
    ".zed/settings.json",
    ".envrc",
    ".env",
    ".env.production",
    "deploy/server.pem",
    "my.plan",  # given in protected=
]


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "existing"])
@pytest.mark.parametrize("path", PROTECTED_WRITES)
def test_protected_paths_are_refused_for_writes_by_name(work: Path, path: str, exists: bool) -> None:
    box = Toolbox(work, sandbox="none", protected=[str(work / "my.plan")])
    if exists:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text("original\n")
    before = snapshot(work)
    refused(box.write_file, path, "pwned\n", match="is protected")
    refused(box.call, "write_file", {"path": path, "content": "pwned\n"}, match="is protected")
    refused(box.edit_file, path, "original", "pwned", match="is protected")
    assert snapshot(work) == before  # not even a parent folder was created


@pytest.mark.parametrize(
    "path",
    [".git/config", ".planrun/transcripts/t1.json", "x.plan.yaml", "p/y.plan.yml", ".env", ".env.local", "my.plan"],
)
def test_unreadable_protected_paths_are_refused_for_reads(work: Path, path: str) -> None:
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).write_text("hidden from the agent\n")
    box = Toolbox(work, sandbox="none", protected=["my.plan"])
    refused(box.read_file, path, match="is protected .*cannot be read")
    assert "hidden" not in box.search("hidden")
    assert box.search("hidden") == "no matches"


def test_a_protected_path_given_through_a_symlink_protects_its_target_too(work: Path) -> None:
    (work / "real.yaml").write_text("plan: r\n")
    (work / "alias.yaml").symlink_to("real.yaml")
    box = Toolbox(work, sandbox="none", protected=["alias.yaml", "./sub/../Other.YAML", str(work.parent / "x.yaml")])
    refused(box.write_file, "real.yaml", "pwned", match="'real.yaml' is protected .a plan file, real.yaml")
    refused(box.read_file, "real.yaml", match="'real.yaml' is protected")
    refused(box.write_file, "other.yaml", "pwned", match="'other.yaml' is protected .a plan file, Other.YAML")
    assert box.write_file("x.yaml", "fine\n") == "created x.yaml (5 bytes)"  # the outside one protects nothing here
    assert (work / "real.yaml").read_text() == "plan: r\n" and not (work / "other.yaml").exists()


def test_protected_folders_cannot_be_listed_but_are_shown(tb: Toolbox, work: Path) -> None:
    (work / ".git").mkdir()
    (work / ".planrun").mkdir()
    refused(tb.list_dir, ".git", match="is protected")
    refused(tb.list_dir, ".planrun", match="is protected")
    refused(tb.search, "x", ".git", match="is protected")
    assert tb.list_dir(".") == ".git/\n.planrun/"


@pytest.mark.parametrize(
    "path", [".github/workflows/ci.yml", "CLAUDE.md", "AGENTS.md", ".vscode/settings.json", ".env.example"]
)
def test_readable_protected_paths_can_be_read(tb: Toolbox, work: Path, path: str) -> None:
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).write_text("guidance\n")
    assert tb.read_file(path) == "guidance\n"
    assert tb.search("guid") == f"{path}:1:guidance"


def test_protected_patterns_are_documented_and_case_folded() -> None:
    patterns = {p.pattern for p in PROTECTED_PATTERNS}
    for needed in (".git", ".planrun", "*.plan.yaml", "*.plan.yml", ".github/workflows", ".gitlab-ci.yml"):
        assert needed in patterns
    assert all(p.reason for p in PROTECTED_PATTERNS)


# -- what a write may replace -----------------------------------------------


def test_no_write_into_a_fifo(tb: Toolbox, work: Path) -> None:
    os.mkfifo(work / "fifo")
    refused(tb.write_file, "fifo", "x", match="'fifo' is a FIFO: only regular files are written")
    refused(tb.edit_file, "fifo", "a", "b", match="is a FIFO")
    refused(tb.read_file, "fifo", match="'fifo' is a FIFO")  # and no hang
    assert stat.S_ISFIFO((work / "fifo").lstat().st_mode)


def test_no_write_onto_a_directory_or_socket(tb: Toolbox, work: Path) -> None:
    (work / "adir").mkdir()
    refused(tb.write_file, "adir", "x", match="'adir' is a directory")
    refused(tb.read_file, "adir", match="is a directory: use list_dir")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(work / "sock"))
        refused(tb.write_file, "sock", "x", match="'sock' is a socket")
    finally:
        sock.close()
    assert (work / "adir").is_dir() and stat.S_ISSOCK((work / "sock").lstat().st_mode)


def test_no_write_onto_a_device(tb: Toolbox, work: Path) -> None:
    try:
        os.mknod(work / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    refused(tb.write_file, "null", "x", match="'null' is a device")
    refused(tb.read_file, "null", match="'null' is a device")


def test_no_write_to_a_hard_linked_file(tb: Toolbox, work: Path, outside: Outside) -> None:
    os.link(outside.path / "secret.txt", work / "hard.txt")
    refused(tb.write_file, "hard.txt", "pwned", match="has 2 hard links")
    refused(tb.edit_file, "hard.txt", "outside", "pwned", match="has 2 hard links")
    outside.assert_unchanged()


def test_write_creates_folders_keeps_the_mode_and_leaves_no_temporary_file(tb: Toolbox, work: Path) -> None:
    assert tb.write_file("a/b/run.sh", "#!/bin/sh\necho hi\n") == "created a/b/run.sh (18 bytes)"
    os.chmod(work / "a/b/run.sh", 0o755)
    assert tb.write_file("a/b/run.sh", "#!/bin/sh\necho ho\n") == "replaced a/b/run.sh (18 bytes)"
    assert (work / "a/b/run.sh").read_text() == "#!/bin/sh\necho ho\n"
    assert stat.S_IMODE((work / "a/b/run.sh").stat().st_mode) == 0o755
    assert sorted(p.name for p in (work / "a/b").iterdir()) == ["run.sh"]


def test_write_needs_a_file_name(tb: Toolbox, work: Path) -> None:
    refused(tb.write_file, ".", "x", match="path '.' is the workdir itself, not a file")
    refused(tb.write_file, "./", "x", match="is the workdir itself")
    refused(tb.write_file, "new/", "x", match="path 'new/' ends with '/': name a file")
    assert list(work.iterdir()) == []


def test_write_through_a_file_used_as_a_folder_is_refused(tb: Toolbox, work: Path) -> None:
    (work / "f").write_text("x")
    refused(tb.write_file, "f/g.txt", "y", match="'f' is not a regular file, not a folder|'f' is .* not a folder")
    assert (work / "f").read_text() == "x"


# -- edit_file --------------------------------------------------------------


def test_edit_file_needs_exactly_one_match(tb: Toolbox, work: Path) -> None:
    (work / "f.py").write_text("a = 1\nb = 1\n")
    refused(tb.edit_file, "f.py", "c = 1", "c = 2", match=r"old text not found in 'f.py' \(0 matches\)")
    refused(tb.edit_file, "f.py", " = 1", " = 2", match=r"occurs 2 times in 'f.py' \(2 matches\).*unique")
    assert (work / "f.py").read_text() == "a = 1\nb = 1\n"
    assert tb.edit_file("f.py", "b = 1", "b = 2") == "edited f.py: replaced 1 occurrence at line 2"
    assert (work / "f.py").read_text() == "a = 1\nb = 2\n"


def test_edit_file_refusals(tb: Toolbox, work: Path) -> None:
    (work / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    (work / "latin1.txt").write_bytes(b"caf\xe9\n")
    refused(tb.edit_file, "crlf.txt", "one\ntwo", "x", match="0 matches.*CRLF line endings")
    refused(tb.edit_file, "latin1.txt", "caf", "x", match="not valid UTF-8")
    refused(tb.edit_file, "missing.txt", "a", "b", match="does not exist .use write_file")
    refused(tb.edit_file, "crlf.txt", "", "b", match="non-empty")
    assert (work / "crlf.txt").read_bytes() == b"one\r\ntwo\r\n"
    assert (work / "latin1.txt").read_bytes() == b"caf\xe9\n"
    assert not (work / "missing.txt").exists()


# -- read_file --------------------------------------------------------------


def test_read_file_gives_the_exact_text(tb: Toolbox, work: Path) -> None:
    text = "tab\there\r\nesc \x1b[31m red\nno newline"
    (work / "f.txt").write_bytes(text.encode())
    assert tb.read_file("f.txt") == text  # raw for the model: edit_file needs the exact text


def test_read_file_offset_limit_and_cap(work: Path) -> None:
    (work / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 101)))
    box = Toolbox(work, sandbox="none", max_read=100)
    first = box.read_file("f.txt")
    assert first.startswith("line 1\nline 2\n")
    assert first.endswith("[planrun: showed lines 1-13 of f.txt (792 bytes); read on with offset=13]")
    assert box.read_file("f.txt", 14, 2) == (
        "line 15\nline 16\n[planrun: showed lines 15-16 of f.txt (792 bytes); read on with offset=16]"
    )
    assert box.read_file("f.txt", 98) == "line 99\nline 100\n"
    assert box.read_file("f.txt", 500) == "[planrun: f.txt has 100 lines; offset 500 is past its end]"


def test_read_file_binary_empty_long_line_and_bad_utf8(work: Path) -> None:
    (work / "bin").write_bytes(b"\x7fELF\x00\x00\x01")
    (work / "empty").write_bytes(b"")
    (work / "long").write_bytes(b"x" * 500 + b"\n")
    (work / "bad").write_bytes(b"caf\xe9\n")
    box = Toolbox(work, sandbox="none", max_read=100)
    refused(box.read_file, "bin", match="is a binary file .7 bytes.")
    assert box.read_file("empty") == "[planrun: empty is empty]"
    assert (
        box.read_file("long")
        == "x" * 100
        + "\n[planrun: line 1 of long is longer than 100 bytes: only its start is shown; read on with offset=1]"
    )
    assert box.read_file("bad") == "caf\ufffd\n[planrun: bad is not valid UTF-8: undecodable bytes are shown as U+FFFD]"


def test_odd_names_are_one_line_refusals(tb: Toolbox, work: Path) -> None:
    (work / "loop").symlink_to("loop")
    long = "n" * 300
    refused(tb.read_file, "loop", match="'loop' cannot be opened: Too many levels of symbolic links")
    refused(tb.write_file, "loop", "x", match="'loop' is a symlink")
    refused(tb.read_file, long, match="cannot be opened: File name too long")
    refused(tb.call, "write_file", {"path": long, "content": "x"}, match="File name too long")
    refused(tb.call, "write_file", {"path": "a\nb\x1b[2J", "content": "\ud800"}, match="not valid Unicode")
    refused(tb.read_file, "a\nb\x1b[2J", match=r"^'a\\nb\\x1b\[2J' does not exist$")
    assert sorted(p.name for p in work.iterdir()) == ["loop"]


def test_missing_file(tb: Toolbox) -> None:
    refused(tb.read_file, "nope.txt", match="'nope.txt' does not exist")
    refused(tb.read_file, "no/dir/x", match="'no/dir/x' does not exist")


# -- list_dir ---------------------------------------------------------------


def test_list_dir_marks_folders_links_and_special_files(tb: Toolbox, work: Path) -> None:
    (work / "d").mkdir()
    (work / "f.txt").write_text("x")
    (work / "l").symlink_to("f.txt")
    os.mkfifo(work / "p")
    (work / "bad\nname\x1b[2J").write_text("x")
    assert tb.list_dir() == "bad\\nname\\x1b[2J\nd/\nf.txt\nl -> f.txt\np [FIFO]"
    assert tb.list_dir("d") == "[planrun: d is empty]"
    refused(tb.list_dir, "f.txt", match="'f.txt' is not a directory")


def test_list_dir_is_bounded(tb: Toolbox, work: Path) -> None:
    for i in range(1005):
        (work / f"f{i:04}").touch()
    lines = tb.list_dir().splitlines()
    assert len(lines) == 1001
    assert lines[0] == "f0000" and lines[-1] == "[... 5 more entries not shown]"


# -- search -----------------------------------------------------------------


def test_search_glob_binary_and_skipped_folders(tb: Toolbox, work: Path) -> None:
    (work / "src" / "pkg").mkdir(parents=True)
    (work / "src" / "pkg" / "a.py").write_text("import os\nTODO = 1\n")
    (work / "src" / "b.txt").write_text("TODO later\n")
    (work / "blob.bin").write_bytes(b"TODO\x00\x01")
    (work / "node_modules").mkdir()
    (work / "node_modules" / "m.js").write_text("TODO\n")
    assert tb.search("TODO") == "src/b.txt:1:TODO later\nsrc/pkg/a.py:2:TODO = 1"
    assert tb.search("TODO", glob="*.py") == "src/pkg/a.py:2:TODO = 1"
    assert tb.search("TODO", glob="src/**/*.py") == "src/pkg/a.py:2:TODO = 1"
    assert tb.search("TODO", glob="src/pkg/[ab].py") == "src/pkg/a.py:2:TODO = 1"
    assert tb.search("TODO", glob="src/pkg/[!a].py") == "no matches"
    assert tb.search("TODO", glob="src/**") == "src/b.txt:1:TODO later\nsrc/pkg/a.py:2:TODO = 1"
    assert tb.search("TODO", glob="*.TXT") == "no matches"  # globs are case-sensitive, like the file system
    assert tb.search("TODO", "src/b.txt") == "src/b.txt:1:TODO later"
    assert tb.search("TODO", "node_modules") == "node_modules/m.js:1:TODO"  # named explicitly: searched
    assert tb.search("nothing here") == "no matches"


def test_search_caps_matches_and_result_size(work: Path) -> None:
    (work / "many.txt").write_text("hit\n" * 300)
    (work / "wide.txt").write_text(("hit " + "w" * 1000 + "\n") * 20)
    result = Toolbox(work, sandbox="none").search("hit", glob="many.txt")
    assert result.count("\n") == 200 and result.endswith(
        "[planrun: stopped at 200 matches; narrow the pattern, path or glob]"
    )
    wide = Toolbox(work, sandbox="none", max_output=2000).search("hit", glob="wide.txt")
    assert len(wide) <= 2000 and "stopped at 1800 characters of results" in wide
    assert all(len(line) <= 320 for line in wide.splitlines())


def test_search_escapes_control_characters(tb: Toolbox, work: Path) -> None:
    (work / "f.txt").write_text("match \x1b]0;title\x07 here\n")
    assert tb.search("match") == "f.txt:1:match \\x1b]0;title\\x07 here"


def test_search_regex_errors_and_time_limit(work: Path) -> None:
    (work / "f.txt").write_text("a" * 40 + "!\n")
    box = Toolbox(work, sandbox="none", timeout=0.5)
    refused(box.search, "(", match="search: invalid regex")
    refused(box.search, "(a+)+$", match=r"search stopped: the regex '\(a\+\)\+\$' ran longer than 0.5s")


def test_search_in_another_thread_is_stopped_too(work: Path) -> None:
    (work / "f.txt").write_text("a" * 40 + "!\n")
    (work / ".env").write_text("a" * 40 + "!\n")
    box = Toolbox(work, sandbox="none", timeout=0.5)
    results: list[str] = []

    def worker() -> None:  # no SIGALRM outside the main thread: the search runs in a child process
        for pattern in ["(a+)+$", "a!", "("]:
            try:
                results.append(box.search(pattern))
            except ToolError as exc:
                results.append(f"ToolError: {exc}")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert results == [
        r"ToolError: search stopped: the regex '(a+)+$' ran longer than 0.5s",
        "f.txt:1:" + "a" * 40 + "!",  # and not .env, protected in the child as here
        "ToolError: search: invalid regex '(': missing ), unterminated subpattern at position 0",
    ]
    assert descendants() == []


# -- call(): what a model sends ----------------------------------------------


@pytest.mark.parametrize(
    "name, arguments, message",
    [
        (
            "rm_rf",
            {},
            r"unknown tool 'rm_rf'; the tools are: read_file, write_file, edit_file, list_dir, search, run_command",
        ),
        ("finish", {"summary": "x"}, "finish is handled by the executor"),
        ("read_file", ["a.txt"], "arguments must be a JSON object, not an array"),
        ("read_file", "a.txt", "arguments must be a JSON object, not a string"),
        ("read_file", {}, "read_file: missing argument 'path'"),
        ("read_file", {"path": None}, "read_file: missing argument 'path'"),
        ("write_file", {"path": "a.txt"}, "write_file: missing argument 'content'"),
        ("read_file", {"path": "a.txt", "mode": "r"}, "unexpected argument 'mode'; it takes path, offset, limit"),
        ("read_file", {"path": 3}, "argument 'path' must be a string, not a number"),
        ("read_file", {"path": "a.txt", "offset": "1"}, "argument 'offset' must be an integer, not a string"),
        ("read_file", {"path": "a.txt", "offset": True}, "argument 'offset' must be an integer, not a boolean"),
        ("read_file", {"path": "a.txt", "offset": 1.5}, "argument 'offset' must be an integer, not a number"),
        ("read_file", {"path": "a.txt", "offset": -1}, "argument 'offset' must be >= 0, not -1"),
        ("read_file", {"path": "a.txt", "limit": 0}, "argument 'limit' must be >= 1, not 0"),
        ("run_command", {"command": "true", "timeout": 0}, "argument 'timeout' must be > 0, not 0"),
        ("run_command", {"command": "true", "timeout": float("nan")}, "must be a finite number"),
        ("run_command", {"command": ["ls"]}, "argument 'command' must be a string, not an array"),
        ("search", {"pattern": "x", "glob": {}}, "argument 'glob' must be a string, not an object"),
    ],
)
def test_call_validates_arguments(tb: Toolbox, work: Path, name: str, arguments: object, message: str) -> None:
    (work / "a.txt").write_text("a\n")
    refused(
        tb.call,
        name,
        arguments,
        match=message.replace("(", r"\(").replace(")", r"\)") if "\\" not in message else message,
    )
    assert (work / "a.txt").read_text() == "a\n"


def test_call_dispatches_and_null_means_omitted(tb: Toolbox, work: Path) -> None:
    assert tb.call("write_file", {"path": "a.txt", "content": "one\ntwo\n"}) == "created a.txt (8 bytes)"
    assert tb.call("read_file", {"path": "a.txt", "offset": None, "limit": 1}).startswith("one\n[planrun:")
    assert tb.call("edit_file", {"path": "a.txt", "old": "two", "new": "2"}).startswith("edited a.txt")
    assert tb.call("list_dir", {}) == "a.txt"
    assert tb.call("search", {"pattern": "2", "glob": None}) == "a.txt:2:2"
    assert tb.call("run_command", {"command": "cat a.txt"}) == "exit code 0\none\n2"


def test_readonly_toolbox_only_reads(work: Path) -> None:
    (work / "a.txt").write_text("a\n")
    box = Toolbox(work, sandbox="none", readonly=True)
    for name, args in [
        ("write_file", {"path": "b.txt", "content": "x"}),
        ("edit_file", {"path": "a.txt", "old": "a", "new": "b"}),
        ("run_command", {"command": "touch c.txt"}),
    ]:
        refused(box.call, name, args, match=f"{name} is not available: this agent may only read")
        refused(getattr(box, name), *args.values(), match=f"{name} is not available")
    refused(box.call, "nope", {}, match="the tools are: read_file, list_dir, search, report_blocked, finish$")
    assert box.read_file("a.txt") == "a\n" and box.list_dir() == "a.txt" and box.search("a") == "a.txt:1:a"
    assert sorted(p.name for p in work.iterdir()) == ["a.txt"] and (work / "a.txt").read_text() == "a\n"


def test_tool_schemas() -> None:
    names = [s["function"]["name"] for s in TOOL_SCHEMAS]
    assert names == [
        "read_file",
        "write_file",
        "edit_file",
        "list_dir",
        "search",
        "run_command",
        "report_blocked",
        "finish",
    ]
    for schema in TOOL_SCHEMAS:
        assert schema["type"] == "function" and schema["function"]["description"]
        params = schema["function"]["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        assert set(params["required"]) <= set(params["properties"])
    assert [s["function"]["name"] for s in schemas(readonly=True)] == [
        "read_file",
        "list_dir",
        "search",
        "report_blocked",
        "finish",
    ]
    assert schemas() == TOOL_SCHEMAS
    json.dumps(TOOL_SCHEMAS)


# -- run_command --------------------------------------------------------------


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    values = []
    for name in (
        "OPENAI_API_KEY",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "MY_SERVICE_TOKEN",
        "DB_PASSWORD",
        "PLANRUN_UNLISTED",
    ):
        value = f"{CANARY}-{name.lower()}"
        monkeypatch.setenv(name, value)
        values.append(value)
    monkeypatch.setenv("LC_SECRET_KEY", f"{CANARY}-lc")  # LC_* passes the allowlist, not the deny list
    values.append(f"{CANARY}-lc")
    return values


@pytest.mark.parametrize("sandbox", ["none", pytest.param("bwrap", marks=needs_bwrap)])
def test_commands_never_see_secrets(work: Path, secrets_in_env: list[str], sandbox: str) -> None:
    with Toolbox(work, sandbox=sandbox) as box:
        out = box.run_command("env; env > env.txt")
        assert "PATH=" in out and "HOME=" in out
        assert CANARY not in out
        assert CANARY not in (work / "env.txt").read_text()
        assert "HOME=" + str(Path.home()) + "\n" not in out
    if sandbox == "bwrap":  # no other process's environment is visible either
        with Toolbox(work, sandbox=sandbox) as box:
            assert CANARY not in box.run_command("cat /proc/*/environ | tr '\\0' '\\n'")


def test_secret_looking_extra_env_is_refused(work: Path) -> None:
    with pytest.raises(ValueError, match="env: OPENAI_API_KEY looks like a secret"):
        Toolbox(work, sandbox="none", env={"OPENAI_API_KEY": CANARY})
    with Toolbox(work, sandbox="none", env={"PLANRUN_MODE": "agent"}) as box:
        assert box.run_command("echo $PLANRUN_MODE") == "exit code 0\nagent"


def test_command_output_exit_status_and_escapes(tb: Toolbox) -> None:
    assert tb.run_command("echo out; echo err >&2; exit 3") == "exit code 3\nout\nerr"
    assert tb.run_command("true") == "exit code 0 (no output)"
    assert tb.run_command("printf '\\033[31mred\\n'") == "exit code 0\n\\x1b[31mred"
    assert tb.run_command("cat") == "exit code 0 (no output)"  # stdin is /dev/null
    assert tb.run_command("echo bye; kill -9 $$") == "killed by signal 9\nbye"
    refused(tb.run_command, "   ", match="non-empty")
    refused(tb.run_command, "true", "5", match="timeout must be a number of seconds, not a string")
    refused(tb.run_command, "true", -1, match="timeout must be a positive number of seconds, not -1")


def test_command_output_is_capped_head_and_tail(work: Path) -> None:
    with Toolbox(work, sandbox="none", max_output=1000) as box:
        out = box.run_command("echo START; head -c 300000 /dev/zero | tr '\\0' x; echo; echo END")
    assert len(out) <= 1000
    assert out.startswith("exit code 0; output 300011 bytes, 299511 not shown (the middle)\nSTART\n")
    assert out.endswith("\nEND")


def test_command_runs_in_its_own_session_in_the_workdir(tb: Toolbox, work: Path) -> None:
    out = tb.run_command(f"{sys.executable} -c 'import os; print(os.getsid(0), os.getpgid(0), os.getcwd())'")
    sid, pgid, cwd = out.splitlines()[1].split()
    assert int(sid) != os.getsid(0) and int(pgid) != os.getpgid(0)
    assert cwd == str(work)


@pytest.mark.parametrize("sandbox", ["none", pytest.param("bwrap", marks=needs_bwrap)])
def test_command_timeout_kills_everything(work: Path, sandbox: str) -> None:
    with Toolbox(work, sandbox=sandbox, timeout=0.5) as box:
        out = box.run_command("sleep 60 & sleep 61; echo never")
        assert out == "timed out after 0.5s: the command and everything it started were killed (no output)"
        assert descendants() == []
        assert box.run_command("sleep 60", timeout=0.3).startswith("timed out after 0.3s")
        assert descendants() == []


@pytest.mark.parametrize("sandbox", ["none", pytest.param("bwrap", marks=needs_bwrap)])
def test_command_escapees_are_reaped(work: Path, sandbox: str) -> None:
    with Toolbox(work, sandbox=sandbox) as box:
        assert box.run_command("setsid sleep 300 & (sleep 301 &) ; echo left").startswith("exit code 0")
    assert descendants() == []


def test_home_and_tmpdir_are_private_and_removed(work: Path) -> None:
    box = Toolbox(work, sandbox="none")
    out = box.run_command('echo "$HOME"; echo "$TMPDIR"; touch "$HOME/.cache-x"')
    home, tmp = out.splitlines()[1:3]
    assert Path(home).is_dir() and not Path(home).is_relative_to(work) and Path(home) != Path.home()
    box.close()
    assert not Path(home).exists() and not Path(tmp).exists()
    assert list(work.iterdir()) == []


# -- the sandbox ----------------------------------------------------------------


def test_sandbox_choice(work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox_name("none") == "none" and Toolbox(work, sandbox="none").sandbox_name() == "none"
    with pytest.raises(UsageError, match="sandbox must be auto, bwrap or none, not 'docker'"):
        Toolbox(work, sandbox="docker")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no bwrap to be found
    assert sandbox_name("auto") == "none"
    with pytest.raises(UsageError, match="sandbox bwrap: bubblewrap is not installed"):
        Toolbox(work, sandbox="bwrap")


@needs_bwrap
def test_sandbox_auto_uses_bubblewrap(work: Path) -> None:
    assert sandbox_name() == "bubblewrap" and Toolbox(work).sandbox_name() == "bubblewrap"


@pytest.fixture
def off_tmp() -> Iterator[Path]:
    """A folder on the root file system outside /tmp (the sandbox's /tmp is its own)."""
    base = Path("/var/tmp")
    if not os.access(base, os.W_OK):
        pytest.skip("/var/tmp is not writable")
    path = Path(tempfile.mkdtemp(prefix="planrun-test-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path)


@needs_bwrap
def test_sandbox_file_system_is_read_only_outside_the_workdir(work: Path, outside: Outside, off_tmp: Path) -> None:
    with Toolbox(work, sandbox="bwrap") as box:
        out = box.run_command(
            f"echo pwned > {off_tmp}/x; echo pwned > {outside.path}/secret.txt; echo pwned > made.txt"
        )
        assert "Read-only file system" in out
        out = box.run_command(f"mount -o remount,rw / 2>&1; echo pwned > {off_tmp}/y")
        assert "exit code 0" not in out
        assert box.run_command("cat made.txt") == "exit code 0\npwned"
    assert list(off_tmp.iterdir()) == []
    outside.assert_unchanged()
    assert (work / "made.txt").read_text() == "pwned\n"


@needs_bwrap
def test_sandbox_keeps_protected_paths_read_only(work: Path) -> None:
    (work / ".git").mkdir()
    (work / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (work / "a.plan.yaml").write_text("plan: a\n")
    (work / "plans").mkdir()
    (work / "plans" / "My.Plan").write_text("plan: m\n")
    before = snapshot(work)
    with Toolbox(work, sandbox="bwrap", protected=[str(work / "plans" / "My.Plan")]) as box:
        out = box.run_command(
            "echo x > .git/HEAD; echo x >> a.plan.yaml; echo x >> plans/My.Plan; rm -f plans/My.Plan a.plan.yaml;"
            " touch .git/new; mv plans/My.Plan plans/moved"
        )
        assert "Read-only file system" in out or "Device or resource busy" in out
    assert snapshot(work) == before


class _Server:
    """A TCP server on 127.0.0.1 counting the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize("sandbox", ["none", pytest.param("bwrap", marks=needs_bwrap)])
def test_sandbox_has_no_network(work: Path, sandbox: str) -> None:
    server = _Server()
    try:
        connect = (
            f"import socket; socket.create_connection(('127.0.0.1', {server.port}), timeout=3); print('connected')"
        )
        with Toolbox(work, sandbox=sandbox) as box:
            out = box.run_command(f'{sys.executable} -c "{connect}"')
    finally:
        server.close()
    if sandbox == "none":  # the control: the same command reaches the server without the sandbox
        assert out == "exit code 0\nconnected" and server.accepted == 1
    else:
        assert out.startswith("exit code 1") and "connected" not in out.splitlines()[-1]
        assert server.accepted == 0


@pytest.mark.parametrize("name", ["é" * 127, "😀" * 63, "a" * 255, "日本" * 42, "x" * 199 + "é" * 28])
def test_a_long_valid_name_is_written_and_edited(tb: Toolbox, work: Path, name: str) -> None:
    assert len(name.encode()) <= 255
    assert tb.call("write_file", {"path": name, "content": "one\n"}).startswith("created ")
    assert tb.call("edit_file", {"path": name, "old": "one", "new": "two"}).startswith("edited ")
    assert (work / name).read_text() == "two\n"
    assert not [p for p in work.iterdir() if p.name.endswith(".planrun-tmp")]


@pytest.mark.parametrize("name", ["é" * 127, "😀" * 63, "z" * 255])
def test_write_atomic_keeps_a_long_name_within_the_limit(tmp_path: Path, name: str) -> None:
    write_atomic(tmp_path / name, "data")
    assert (tmp_path / name).read_text() == "data"
