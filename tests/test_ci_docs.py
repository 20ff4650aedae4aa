"""docs/ci.md and .pre-commit-hooks.yaml: they parse, and the commands they document work."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from planrun import git_env

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "ci.md").read_text()


def _blocks() -> list[object]:
    return [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", DOC, re.MULTILINE | re.DOTALL)]


def _planrun_commands() -> list[str]:
    """Every planrun command line the workflows run (GitHub `run:` steps, GitLab `script:` lines)."""
    found = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "run" and isinstance(value, str):
                    found.extend(line for line in value.splitlines() if line.startswith("planrun"))
                elif key == "script" and isinstance(value, list):
                    found.extend(line for line in value if isinstance(line, str) and line.startswith("planrun"))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for block in _blocks():
        walk(block)
    return found


def test_every_yaml_block_parses_and_the_workflows_have_their_keys() -> None:
    blocks = _blocks()
    assert len(blocks) >= 4
    github = [b for b in blocks if isinstance(b, dict) and "jobs" in b]
    assert github and all(isinstance(job.get("steps"), list) for b in github for job in b["jobs"].values())
    gitlab = next(b for b in blocks if isinstance(b, dict) and "planrun" in b)
    assert gitlab["planrun"]["artifacts"]["reports"]["junit"] == "planrun.xml"


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "plans").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[tool.planrun]\n")
    (repo / "README.md").write_text("hello\n")
    (repo / "plans" / "readme.plan.yaml").write_text(
        "plan: readme\ntasks:\n  - id: t\n    name: T\n    criteria: [{file_contains: {path: README.md, text: hello}}]\n"
    )
    env = git_env()
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"],
    ):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=repo, env=env, check=True)
    return repo


@pytest.mark.parametrize("line", _planrun_commands())
def test_each_documented_command_runs(tmp_path: Path, line: str) -> None:
    repo = _repo(tmp_path)
    for name, value in {
        "${{ github.base_ref }}": "main",
        "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "${{ matrix.shard }}": "1",
    }.items():
        line = line.replace(name, value)
    args = shlex.split(line)
    if args[1] == "merge-reports":
        for k in ("1", "2"):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "planrun",
                    "--verify-only",
                    "--shard",
                    f"{k}/2",
                    "--junitxml",
                    f"reports/planrun-{k}.xml",
                    "plans/",
                ],
                cwd=repo,
                capture_output=True,
                text=True,
                timeout=120,
            )
        args = [a for a in args if "*" not in a] + sorted(str(p) for p in (repo / "reports").glob("planrun-*.xml"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PLANRUN_"))}
    result = subprocess.run(
        [sys.executable, "-m", "planrun", *args[1:]], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (line, result.stdout, result.stderr)
    for out in re.findall(r"--junitxml (\S+)|-o (\S+\.xml)", line):
        path = repo / (out[0] or out[1])
        assert path.is_file() and "<testsuites" in path.read_text()


def test_pre_commit_hooks_run_their_entries(tmp_path: Path) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"planrun-lint", "planrun-verify"}
    repo = _repo(tmp_path)
    for hook in hooks:
        assert hook["language"] == "python"
        assert re.search(hook["files"], "plans/readme.plan.yaml") and not re.search(hook["files"], "README.md")
        args = shlex.split(hook["entry"])
        assert args[0] == "planrun"
        result = subprocess.run(
            [sys.executable, "-m", "planrun", *args[1:], "plans/readme.plan.yaml"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (hook["id"], result.stdout, result.stderr)
