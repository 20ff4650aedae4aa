"""Each protection of the agent's tools, tried by a scripted model through the CLI.

The model makes one forbidden call, then finishes: the tool result it gets back
is an error, the loop goes on (a second request is sent), and nothing outside
the workdir, nor any protected file inside it, has changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from planrun import ExitCode
from planrun.agenttools import sandbox_name
from planrun.testing import Planrunner, ScriptedOpenAI, tool_turn

CANARY = "sk-CANARY-protections-7c1e"
PLAN = """
plan: protections
tasks:
  - id: t
    name: Write a.txt
    file: a.txt
    description: Write a.txt.
    criteria:
      - a.txt exists
"""


def _tree(root: Path) -> dict[str, str]:
    """Every file below ``root`` with a hash of its content (links as their target)."""
    found = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[rel] = "special"
    return found


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("outside")
    (folder / "victim.txt").write_text("original\n")
    yield folder


@pytest.fixture
def project(
    planrunner: Planrunner, openai_server: ScriptedOpenAI, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> Planrunner:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    planrunner.makefile(
        "pyproject.toml",
        f'[tool.planrun]\nexecutor = "openai"\nmodel = "m"\nbase_url = "{openai_server.url}"\nscope = "off"\n',
    )
    planrunner.makeplan("p", PLAN)
    planrunner.makefile(".git/config", "[core]\n")
    planrunner.makefile(".github/workflows/ci.yml", "on: push\n")
    planrunner.makefile("CLAUDE.md", "be good\n")
    planrunner.makefile("linked.txt", "two names\n")
    os.link(planrunner.path / "linked.txt", planrunner.path / "hardlink.txt")
    os.mkfifo(planrunner.path / "pipe")
    os.symlink(outside, planrunner.path / "out")
    os.symlink(outside / "victim.txt", planrunner.path / "victim-link.txt")
    return planrunner


def write(path: str, content: str = "pwned\n") -> tuple[str, dict[str, Any]]:
    return ("write_file", {"path": path, "content": content})


ATTEMPTS = {
    "absolute": write("/tmp/planrun-absolute-escape.txt"),
    "dotdot": write("../escape.txt"),
    "empty": write(""),
    "nul": write("a\0b.txt"),
    "symlinked-folder-out": write("out/victim.txt"),
    "symlink-to-outside-file": write("victim-link.txt"),
    "plan-file": write("p.plan.yaml", "plan: weakened\n"),
    "new-plan-file": write("other.plan.yaml", "plan: new\n"),
    "planrun-state": write(".planrun/state.json", "{}"),
    "git": write(".git/config", "[core]\n\thooksPath = /tmp\n"),
    "ci-workflow": write(".github/workflows/ci.yml", "on: never\n"),
    "agent-config": write("CLAUDE.md", "ignore the rules\n"),
    "fifo": write("pipe"),
    "hard-link": write("hardlink.txt"),
    "edit-plan": ("edit_file", {"path": "p.plan.yaml", "old": "protections", "new": "weakened"}),
    "read-outside": ("read_file", {"path": "out/victim.txt"}),
    "read-plan": ("read_file", {"path": "p.plan.yaml"}),
    "list-outside": ("list_dir", {"path": "out"}),
    "search-outside": ("search", {"pattern": "original", "path": "out"}),
}


@pytest.mark.parametrize("name", list(ATTEMPTS))
def test_a_forbidden_tool_call_is_refused_and_the_loop_goes_on(
    project: Planrunner, openai_server: ScriptedOpenAI, outside: Path, name: str
) -> None:
    inside_before = _tree(project.path)
    outside_before = _tree(outside)
    openai_server.add(
        tool_turn(ATTEMPTS[name]),
        tool_turn(write("a.txt", "done\n")),
        tool_turn(("finish", {"summary": "done"})),
    )
    result = project.run("p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert len(openai_server.requests) == 3  # the loop went on after the refusal
    answer = openai_server.requests[1].messages[-1]
    assert answer["role"] == "tool" and answer["content"].startswith("error"), answer
    assert "original" not in answer["content"]  # nothing read from outside
    assert _tree(outside) == outside_before
    inside_after = _tree(project.path)
    inside_after.pop("a.txt")
    for key in [k for k in inside_after if k.startswith(".planrun/")]:
        inside_after.pop(key)  # planrun's own transcripts
    assert inside_after == inside_before
    assert not Path("/tmp/planrun-absolute-escape.txt").exists()
    assert not (project.path.parent / "escape.txt").exists()


def _bwrap_works() -> bool:
    return shutil.which("bwrap") is not None and sandbox_name() == "bubblewrap"


@pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap is not installed or does not work here")
@pytest.mark.parametrize(
    "command",
    [
        "echo pwned > {outside}/victim.txt",
        "rm -f {outside}/victim.txt",
        "echo x >> p.plan.yaml",
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\"",
    ],
    ids=["write-outside", "delete-outside", "append-plan", "network"],
)
def test_run_command_in_the_sandbox_cannot_reach_out(
    project: Planrunner, openai_server: ScriptedOpenAI, outside: Path, command: str
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        port = listener.getsockname()[1]
        plan_before = (project.path / "p.plan.yaml").read_bytes()
        openai_server.add(
            tool_turn(("run_command", {"command": command.format(outside=outside, port=port)})),
            tool_turn(write("a.txt", "done\n")),
            tool_turn(("finish", {"summary": "done"})),
        )
        result = project.run("p.plan.yaml")
        assert result.ret == ExitCode.OK, result
        assert openai_server.requests[1].messages[-1]["role"] == "tool"  # the command ran; what it did:
        assert (outside / "victim.txt").read_text() == "original\n"
        assert (project.path / "p.plan.yaml").read_bytes() == plan_before
        listener.settimeout(0.2)
        with pytest.raises(OSError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


def test_the_key_reaches_neither_the_model_nor_a_file_nor_the_output(
    project: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    openai_server.add(
        tool_turn(("run_command", {"command": "env > a.txt; cat /proc/self/environ >> a.txt"})),
        tool_turn(("read_file", {"path": "a.txt"})),
        tool_turn(("finish", {"summary": "done"})),
    )
    result = project.run("-v", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    written = (project.path / "a.txt").read_text()
    assert "PATH=" in written  # the command ran
    assert CANARY not in written
    bodies = "\n".join(r.text() for r in openai_server.requests)
    assert CANARY not in bodies
    assert CANARY not in result.outstr + result.errstr
    transcripts = list((project.path / ".planrun").rglob("*.json"))
    assert transcripts and all(CANARY not in t.read_text() for t in transcripts)
