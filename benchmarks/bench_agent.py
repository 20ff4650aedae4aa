"""planrun's overhead per agent turn: the ``openai`` executor vs a bare ``openai`` SDK loop, in one run.

Both talk to the scripted server of :mod:`planrun.testing` on 127.0.0.1. First
planrun runs a plan of T tasks, each taking K tool turns (``write_file`` ...,
then ``finish``); every request it sends is recorded. Then a bare loop with one
``openai.OpenAI`` client sends exactly those request bodies, in order, to a
fresh server playing the same script. Prints both wall times, the time per
turn and the ratio. planrun's side includes everything it does per turn:
context, tool calls, progress hooks, redaction, transcripts, criteria.

    python benchmarks/bench_agent.py [--tasks T] [--turns K] [--repeat R]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tools() -> None:
    """The real planrun.agenttools when installed; else the tests' stand-in (same interface)."""
    if importlib.util.find_spec("planrun.agenttools") is None:
        sys.path.insert(0, str(ROOT))
        from tests.test_openai_executor import _standin_agenttools

        sys.modules["planrun.agenttools"] = _standin_agenttools()


def _script(tasks: int, turns: int) -> list:
    from planrun.testing import tool_turn

    script = []
    for t in range(tasks):
        for k in range(turns - 1):
            script.append(tool_turn(("write_file", {"path": f"f{t}.txt", "content": f"task {t} turn {k}\n" * 20})))
        script.append(tool_turn(("finish", {"summary": f"wrote f{t}.txt"})))
    return script


def _plan(tasks: int) -> str:
    lines = ["plan: bench", "id: bench", "overview: Benchmark plan.", "tasks:"]
    for t in range(tasks):
        lines += [
            f"  - id: t{t}",
            f"    name: Write f{t}.txt",
            f"    file: f{t}.txt",
            f"    description: Write f{t}.txt with the text the task gives.",
            "    criteria:",
            f"      - f{t}.txt exists",
        ]
    return "\n".join(lines) + "\n"


def run_planrun(tasks: int, turns: int) -> tuple[float, list]:
    from planrun import main
    from planrun.testing import ScriptedOpenAI

    with tempfile.TemporaryDirectory() as tmp, ScriptedOpenAI(_script(tasks, turns)) as server:
        work = Path(tmp)
        (work / "pyproject.toml").write_text(
            f'[tool.planrun]\nexecutor = "openai"\nmodel = "bench"\nbase_url = "{server.url}"\nmax_turns = 1000\n'
        )
        plan = work / "bench.plan.yaml"
        plan.write_text(_plan(tasks))
        out = io.StringIO()
        start = time.perf_counter()
        with redirect_stdout(out), redirect_stderr(out):
            code = main(["-q", str(plan)])
        elapsed = time.perf_counter() - start
        if code != 0 or len(server.requests) != tasks * turns:
            raise SystemExit(f"planrun run failed (exit {code}, {len(server.requests)} requests):\n{out.getvalue()}")
        return elapsed, [r.body for r in server.requests]


def run_bare(bodies: list, tasks: int, turns: int) -> float:
    import openai

    from planrun.testing import ScriptedOpenAI

    with ScriptedOpenAI(_script(tasks, turns)) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused", timeout=60, max_retries=0)
        start = time.perf_counter()
        for body in bodies:
            response = client.chat.completions.create(**body)
            for call in response.choices[0].message.tool_calls or []:
                _ = call.function.arguments  # type: ignore[union-attr]
        elapsed = time.perf_counter() - start
        client.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--turns", type=int, default=10, help="requests per task, the last one calling finish")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "unused")
    _tools()
    n = args.tasks * args.turns
    planrun_times, bare_times = [], []
    for _ in range(args.repeat):
        elapsed, bodies = run_planrun(args.tasks, args.turns)
        planrun_times.append(elapsed)
        bare_times.append(run_bare(bodies, args.tasks, args.turns))
    p, b = statistics.median(planrun_times), statistics.median(bare_times)
    print(f"{args.tasks} tasks x {args.turns} turns = {n} requests, median of {args.repeat} runs")
    print(f"planrun (openai executor): {p:.3f}s  {p / n * 1000:.2f} ms/turn")
    print(f"bare openai SDK loop:      {b:.3f}s  {b / n * 1000:.2f} ms/turn")
    print(f"overhead per turn: {(p - b) / n * 1000:.2f} ms; ratio planrun/bare: {p / b:.2f}x")


if __name__ == "__main__":
    main()
