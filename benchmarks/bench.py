"""planrun's speed against its baselines, every figure measured in this one run.

Generates plan suites (N plans of T tasks, 5 file/regex/data criteria each, and
the files they check) under ``benchmarks/_generated/`` and prints one table:

- verify-only, cold (``--cache-clear``): planrun vs the bare floor (CSafeLoader
  parse + the same checks in a plain loop, below) vs the equivalent pytest
  suite (one parametrized item per criterion);
- the warm re-run (parsed-plan cache) vs the cold run, and vs its own floor
  (the import floor, every plan read already parsed from one pickle, the same
  checks): what a perfect plan cache would leave;
- cost per plan at 100 / 1,000 / 3,000 plans, and peak RSS (of that process alone);
- ``planrun --version`` vs the import floor (``import yaml, pydantic, pluggy, rich.console``);
- ``-n 1`` vs ``-n auto`` on a command-heavy suite of 10 plans, on one plan of such commands (run in parts),
  and on one plan of 20 independent shell tasks that are performed (side by side).

Each figure is the median of ``--repeat`` runs; the runs of a comparison are
paired (run one after the other in each round), and each ratio is the median
of the rounds' own ratios, so a machine whose speed drifts from minute to
minute slows both sides of every ratio alike.

    python benchmarks/bench.py [--plans 1000] [--tasks 10] [--repeat 3] [--sizes 100,1000,3000] [--no-pytest]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATED = HERE / "_generated"

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

# The floor: what any tool must do at least. Parse each plan with libyaml, run
# the same checks in a plain loop (the file read, the regex, the JSON path).
#
# With --cached it is the floor of a warm run: what a tool with a perfect plan
# cache must still do. It imports what planrun's own import floor is (yaml,
# pydantic, pluggy, rich.console), reads every plan already parsed from one
# pickle (made by an untimed first run), and runs the same checks.
FLOOR = r"""
import json, os, pickle, re, sys
import yaml

root = sys.argv[1]
cached = "--cached" in sys.argv
plans = os.path.join(root, "plans")
work = os.path.join(root, "work")
passed = failed = 0
if cached:
    import pluggy, pydantic, rich.console  # noqa: F401 - what a cached run still imports
    store = os.path.join(root, "floor-cache.pickle")
    if not os.path.exists(store):
        parsed = []
        for name in sorted(os.listdir(plans)):
            with open(os.path.join(plans, name), encoding="utf-8") as f:
                parsed.append(yaml.load(f.read(), Loader=yaml.CSafeLoader))
        with open(store, "wb") as f:
            pickle.dump(parsed, f, protocol=pickle.HIGHEST_PROTOCOL)
    with open(store, "rb") as f:
        documents = pickle.load(f)


def get(doc, path):
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        doc = doc[int(part[1:-1])] if part.startswith("[") else doc[part]
    return doc


def documents_parsed():
    for name in sorted(os.listdir(plans)):
        with open(os.path.join(plans, name), encoding="utf-8") as f:
            yield yaml.load(f.read(), Loader=yaml.CSafeLoader)


for plan in documents if cached else documents_parsed():
    for task in plan["tasks"]:
        for c in task["criteria"]:
            (kind, args), = c.items()
            if kind == "file_exists":
                ok = os.path.isfile(os.path.join(work, args))
            elif kind == "file_contains":
                with open(os.path.join(work, args["path"]), encoding="utf-8") as f:
                    ok = re.search(args["pattern"], f.read(), re.M) is not None
            elif kind == "file_not_contains":
                with open(os.path.join(work, args["path"]), encoding="utf-8") as f:
                    ok = args["text"] not in f.read()
            else:
                with open(os.path.join(work, args["file"]), encoding="utf-8") as f:
                    ok = get(json.load(f), args["path"]) == args["equals"]
            passed += ok
            failed += not ok
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
"""

COMMAND_PLAN = """\
plan: Commands {p}
tasks:
{tasks}
"""


def generate(plans: int, tasks: int) -> Path:
    """The suite of ``plans`` plans (reused when already generated with the same shape)."""
    root = GENERATED / f"suite-{plans}x{tasks}"
    stamp = root / "generated.json"
    shape = {"plans": plans, "tasks": tasks, "version": 1}
    if stamp.exists() and json.loads(stamp.read_text()) == shape:
        (root / "floor.py").write_text(FLOOR)  # the floor as this script has it (its cache is of the plans)
        return root
    shutil.rmtree(root, ignore_errors=True)
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
    (root / "floor.py").write_text(FLOOR)
    stamp.write_text(json.dumps(shape))
    return root


def generate_performed(tasks: int) -> Path:
    """One plan of ``tasks`` shell tasks, each writing its own file in 0.2 s: independent, so ``-n`` performs them side by side."""
    root = GENERATED / f"performed-1x{tasks}"
    if (root / "generated.json").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "plans").mkdir(parents=True)
    body = "".join(
        f"  - id: t{t}\n    name: T{t}\n    files: [out/t{t}.txt]\n"
        f"    run: 'sleep 0.2; mkdir -p out; echo {t} > out/t{t}.txt'\n"
        f"    criteria:\n      - file_contains: {{path: out/t{t}.txt, text: '{t}'}}\n"
        for t in range(tasks)
    )
    (root / "plans" / "performed.plan.yaml").write_text(f"plan: Performed\ntasks:\n{body}")
    (root / "pyproject.toml").write_text("[tool.planrun]\n")
    (root / "generated.json").write_text("{}")
    return root


def generate_commands(plans: int, per_plan: int) -> Path:
    root = GENERATED / f"commands-{plans}x{per_plan}"
    if (root / "generated.json").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "plans").mkdir(parents=True)
    for p in range(plans):
        tasks = "".join(
            f"  - id: t{t}\n    name: T{t}\n    criteria:\n      - command: 'sleep 0.05'\n" for t in range(per_plan)
        )
        (root / "plans" / f"c{p:03d}.plan.yaml").write_text(COMMAND_PLAN.format(p=p, tasks=tasks))
    (root / "pyproject.toml").write_text("[tool.planrun]\n")
    (root / "generated.json").write_text("{}")
    return root


# What a user's machine has: compiled modules are cached. Some sandboxes set PYTHONDONTWRITEBYTECODE,
# which makes every run of planrun compile its own modules again while the floor's imports (installed,
# already compiled) do not: an unfair comparison.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """``(wall seconds, peak RSS MiB)`` of one run of ``cmd`` (its own rusage, by wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_ENV)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{out[-3000:].decode(errors='replace')}")
    return elapsed, usage.ru_maxrss / 1024  # KiB on Linux


def planrun_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "planrun", *args]


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ""
    try:
        load = " load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        pass
    system = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    return f"{system}, {model or '?'}, Python {platform.python_version()}{load}"


def med(values: list[float]) -> float:
    return statistics.median(values)


def ratio(tops: list[float], bottoms: list[float]) -> float:
    """The median of the paired runs' ratios (each pair measured one right after the other)."""
    return statistics.median(t / b for t, b in zip(tops, bottoms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=1000, help="plans in the main comparison")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="paired rounds; medians are reported")
    parser.add_argument("--sizes", default="100,1000,3000", help="suite sizes for the cost per plan")
    parser.add_argument("--no-pytest", action="store_true", help="skip the (slow) pytest suite")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")} | {args.plans})
    roots = {n: generate(n, args.tasks) for n in sizes}
    criteria = args.plans * args.tasks * 5
    print(f"machine: {machine()}")
    print(f"suites: {', '.join(str(n) for n in sizes)} plans x {args.tasks} tasks x 5 criteria; {args.repeat} rounds")

    cold: dict[int, list[tuple[float, float]]] = {n: [] for n in sizes}
    warm: dict[int, list[tuple[float, float]]] = {n: [] for n in sizes}
    floor: list[tuple[float, float]] = []
    warm_floor: list[float] = []
    pytest_runs: list[tuple[float, float]] = []
    version: list[float] = []
    imports: list[float] = []
    main_root = roots[args.plans]
    measure([sys.executable, "floor.py", str(main_root), "--cached"], main_root)  # makes its cache, untimed
    for _ in range(args.repeat):
        for n in sizes:
            root = roots[n]
            cold[n].append(measure(planrun_cmd("--verify-only", "-q", "--cache-clear", "plans"), root))
            warm[n].append(measure(planrun_cmd("--verify-only", "-q", "plans"), root))
        floor.append(measure([sys.executable, "floor.py", str(main_root)], main_root))
        warm_floor.append(measure([sys.executable, "floor.py", str(main_root), "--cached"], main_root)[0])
        if not args.no_pytest:
            pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "suite"]
            pytest_runs.append(measure(pytest_cmd, main_root))
        for _ in range(5):
            version.append(measure(planrun_cmd("--version"), main_root)[0])
            imports.append(measure([sys.executable, "-c", "import yaml, pydantic, pluggy, rich.console"], HERE)[0])

    rows: list[tuple[str, str, str, str]] = []
    c, f = med([t for t, _ in cold[args.plans]]), med([t for t, _ in floor])
    colds, floors = [t for t, _ in cold[args.plans]], [t for t, _ in floor]
    rows.append(
        (f"verify-only cold, {criteria:,} criteria", f"{c:.2f} s", f"floor {f:.2f} s", f"{ratio(colds, floors):.2f}x")
    )
    if pytest_runs:
        p = med([t for t, _ in pytest_runs])
        pytests = [t for t, _ in pytest_runs]
        rows.append(("the same vs pytest", f"{c:.2f} s", f"pytest {p:.2f} s", f"{ratio(pytests, colds):.1f}x faster"))
    w = med([t for t, _ in warm[args.plans]])
    rows.append(
        ("warm cache re-run", f"{w:.2f} s", f"cold {c:.2f} s", f"{ratio([t for t, _ in warm[args.plans]], colds):.2f}x")
    )
    warms, wf = [t for t, _ in warm[args.plans]], med(warm_floor)
    rows.append(
        ("warm re-run vs its floor", f"{w:.2f} s", f"warm floor {wf:.2f} s", f"{ratio(warms, warm_floor):.2f}x")
    )
    rows.append(("the warm floor itself vs cold", f"{wf:.2f} s", f"cold {c:.2f} s", f"{ratio(warm_floor, colds):.2f}x"))
    per = {n: med([t for t, _ in cold[n]]) / n * 1000 for n in sizes}
    small, big = min(sizes), max(sizes)
    for n in sizes:
        rows.append(
            (
                f"cost per plan, {n:,} plans (cold)",
                f"{per[n]:.2f} ms",
                f"{small} plans {per[small]:.2f} ms",
                f"{ratio([t / n for t, _ in cold[n]], [t / small for t, _ in cold[small]]):.2f}x",
            )
        )
    rss = {n: med([r for _, r in cold[n]]) for n in sizes}
    slope = (rss[big] - rss[small]) / (big - small) if big > small else 0.0
    rows.append(
        (
            f"peak RSS, {big:,} plans",
            f"{rss[big]:.0f} MiB",
            f"{small} plans {rss[small]:.0f} MiB",
            f"{slope:.3f} MiB/plan",
        )
    )
    rows.append(
        (
            f"peak RSS, {args.plans:,} plans vs floor",
            f"{rss[args.plans]:.0f} MiB",
            f"floor {med([r for _, r in floor]):.0f} MiB",
            f"{rss[args.plans] / max(med([r for _, r in floor]), 1):.1f}x",
        )
    )
    v, i = med(version), med(imports)
    rows.append(
        ("planrun --version", f"{v * 1000:.0f} ms", f"imports {i * 1000:.0f} ms", f"{ratio(version, imports):.2f}x")
    )
    for label, (plans, per_plan) in (("500 `sleep 0.05` commands", (10, 50)), ("1 plan of 100 such", (1, 100))):
        croot = generate_commands(plans, per_plan)
        ones: list[float] = []
        autos: list[float] = []
        for _ in range(args.repeat):
            ones.append(measure(planrun_cmd("--verify-only", "-q", "-n", "1", "plans"), croot)[0])
            autos.append(measure(planrun_cmd("--verify-only", "-q", "-n", "auto", "plans"), croot)[0])
        one, auto = med(ones), med(autos)
        rows.append((f"{label}, -n auto", f"{auto:.2f} s", f"-n 1 {one:.2f} s", f"{ratio(ones, autos):.2f}x faster"))

    proot = generate_performed(20)
    ones, autos = [], []
    for _ in range(args.repeat):  # performed (not --verify-only): each run writes the files again
        shutil.rmtree(proot / "out", ignore_errors=True)
        ones.append(measure(planrun_cmd("-q", "-n", "1", "plans"), proot)[0])
        shutil.rmtree(proot / "out", ignore_errors=True)
        autos.append(measure(planrun_cmd("-q", "-n", "auto", "plans"), proot)[0])
    rows.append(
        (
            "1 plan of 20 performed tasks, -n auto",
            f"{med(autos):.2f} s",
            f"-n 1 {med(ones):.2f} s",
            f"{ratio(ones, autos):.2f}x faster",
        )
    )

    widths = [max(len(r[k]) for r in rows + [("what", "planrun", "baseline (same run)", "ratio")]) for k in range(4)]
    head = ("what", "planrun", "baseline (same run)", "ratio")
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")


if __name__ == "__main__":
    main()
