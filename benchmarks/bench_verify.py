"""Time ``planrun --verify-only`` against an equivalent pytest suite, in the same run.

Generates N plans (default 1,000) of T tasks (default 10) with 5 file/regex/data
criteria each, the files they check, and a pytest suite with one parametrized
item per criterion doing the same checks. Runs both in subprocesses and prints
the wall times and their ratio.

    python benchmarks/bench_verify.py [--plans N] [--tasks T] [--repeat R] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAN_TASK = """\
  - id: task-{t}
    name: Task {t} of plan {p}
    action: create
    file: p{p}/mod{t}.py
    criteria:
      - file_exists: p{p}/mod{t}.py
      - file_contains: {{path: p{p}/mod{t}.py, pattern: '^def func_{t}\\(x\\):'}}
      - file_not_contains: {{path: p{p}/mod{t}.py, text: TODO}}
      - data: {{file: p{p}/meta.json, path: 'tasks[{t}].id', equals: task-{t}}}
      - data: {{file: p{p}/meta.json, path: 'tasks[{t}].done', equals: true}}
"""

PYTEST_SUITE = """\
import json
import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "work")
P = {p}
T = {tasks}


def _read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("t", range(T))
def test_file_exists(t):
    assert os.path.exists(os.path.join(ROOT, f"p{{P}}/mod{{t}}.py"))


@pytest.mark.parametrize("t", range(T))
def test_file_contains(t):
    assert re.search(rf"^def func_{{t}}\\(x\\):", _read(f"p{{P}}/mod{{t}}.py"), re.M)


@pytest.mark.parametrize("t", range(T))
def test_file_not_contains(t):
    assert "TODO" not in _read(f"p{{P}}/mod{{t}}.py")


@pytest.mark.parametrize("t", range(T))
def test_data_id(t):
    assert json.loads(_read(f"p{{P}}/meta.json"))["tasks"][t]["id"] == f"task-{{t}}"


@pytest.mark.parametrize("t", range(T))
def test_data_done(t):
    assert json.loads(_read(f"p{{P}}/meta.json"))["tasks"][t]["done"] is True
"""


def generate(root: Path, plans: int, tasks: int) -> None:
    work, plan_dir, suite = root / "work", root / "plans", root / "suite"
    for d in (work, plan_dir, suite):
        d.mkdir(parents=True)
    for p in range(plans):
        pdir = work / f"p{p}"
        pdir.mkdir()
        for t in range(tasks):
            (pdir / f"mod{t}.py").write_text(f'"""Module {t}."""\n\n\ndef func_{t}(x):\n    return x + {t}\n')
        (pdir / "meta.json").write_text(
            json.dumps({"tasks": [{"id": f"task-{t}", "done": True} for t in range(tasks)]})
        )
        body = "".join(PLAN_TASK.format(p=p, t=t) for t in range(tasks))
        (plan_dir / f"plan{p:05d}.plan.yaml").write_text(f"plan: Generated plan {p}\nworkdir: ../work\ntasks:\n{body}")
        (suite / f"test_plan{p:05d}.py").write_text(PYTEST_SUITE.format(p=p, tasks=tasks))
    (root / "pyproject.toml").write_text("[tool.planrun]\n[tool.pytest.ini_options]\n")


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool; the median is reported")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="planrun-bench-"))
    try:
        start = time.perf_counter()
        generate(root, args.plans, args.tasks)
        criteria = args.plans * args.tasks * 5
        print(
            f"generated {args.plans} plans, {args.plans * args.tasks} tasks, {criteria} criteria "
            f"in {time.perf_counter() - start:.1f}s under {root}"
        )
        planrun_cmd = [sys.executable, "-m", "planrun", "--verify-only", "-q", "plans"]
        pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "suite"]
        p_times, t_times = [], []
        for _ in range(args.repeat):
            p_times.append(timed(planrun_cmd, root))
            t_times.append(timed(pytest_cmd, root))
        p, t = statistics.median(p_times), statistics.median(t_times)
        print(f"planrun --verify-only: {p:7.2f}s  ({criteria / p:,.0f} criteria/s)")
        print(f"pytest (same checks):  {t:7.2f}s  ({criteria / t:,.0f} items/s)")
        print(f"ratio planrun/pytest:  {p / t:7.2f}  (below 1 means planrun is faster)")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
