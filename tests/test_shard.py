"""``--shard K/N``: every plan in exactly one part, the same parts on every machine, balanced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.plugins.shard import partition
from planrun.testing import Planrunner

PLAN = """
plan: {name}
tasks:
  - {{id: t, name: T, criteria: [{{file_exists: pyproject.toml}}]}}
"""


def _suite(planrunner: Planrunner, names: list[str]) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    for name in names:
        planrunner.makeplan(name, PLAN.format(name=Path(name).name))


def _ran(output: str) -> list[str]:
    return re.findall(r"^(\S+\.plan\.yaml) \.", output, re.MULTILINE)


NAMES = ["a", "b", "c", "sub/d", "sub/e", "sub/deeper/f", "g", "h", "i", "j", "k"]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 11, 13])
def test_every_plan_runs_in_exactly_one_shard(planrunner: Planrunner, n: int) -> None:
    _suite(planrunner, NAMES)
    seen: list[str] = []
    sizes = []
    for k in range(1, n + 1):
        result = planrunner.run("--shard", f"{k}/{n}", ".")
        assert result.ret in (ExitCode.OK, ExitCode.NO_TESTS_COLLECTED), result
        ran = _ran(result.outstr)
        seen += ran
        sizes.append(len(ran))
        result.stdout.fnmatch_lines([f"shard {k}/{n}: {len(ran)} of 11 plans (balanced by path hash)"])
        if ran:
            assert result.parseoutcomes().get("deselected", 0) == 11 - len(ran)
    assert sorted(seen) == sorted(f"{name}.plan.yaml" for name in NAMES)
    assert max(sizes) - min(sizes) <= 1  # equal plans: counts balanced


def test_the_parts_do_not_depend_on_the_command_line_or_the_invocation_dir(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    _suite(planrunner, NAMES)
    first = _ran(planrunner.run("--shard", "2/3", ".").outstr)
    reordered = _ran(planrunner.run("--shard", "2/3", "sub", "k.plan.yaml", ".", "a.plan.yaml").outstr)
    monkeypatch.chdir(planrunner.path / "sub")
    elsewhere = _ran(planrunner.run("--shard", "2/3", str(planrunner.path)).outstr)
    assert first and sorted(first) == sorted(reordered) == sorted(elsewhere)


def test_shards_and_workers_combine(planrunner: Planrunner) -> None:
    _suite(planrunner, NAMES)
    serial = planrunner.run("--shard", "1/2", ".")
    parallel = planrunner.run("--shard", "1/2", "-n", "2", ".")
    assert re.sub(r"in \d+\.\d+s", "", serial.outstr) == re.sub(r"in \d+\.\d+s", "", parallel.outstr)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0/2", "expected K/N with 1 <= K <= N"),
        ("3/2", "shard 3 of 2 does not exist"),
        ("1/0", "expected K/N"),
        ("a/b", "expected K/N"),
        ("2", "expected K/N"),
        ("-1/2", "expected K/N"),
    ],
)
def test_a_bad_shard_is_a_usage_error(planrunner: Planrunner, value: str, message: str) -> None:
    _suite(planrunner, ["a"])
    result = planrunner.run(f"--shard={value}", ".")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert message in result.errstr and "Traceback" not in result.errstr


def test_partition_balances_by_weight_longest_first() -> None:
    paths = [f"p{i}.plan.yaml" for i in range(7)]
    weights = {"p0.plan.yaml": 10.0, "p1.plan.yaml": 6.0, "p2.plan.yaml": 4.0}
    parts = partition(paths, 2, weights)
    assert sorted(sum(parts, [])) == sorted(paths)
    # unknown plans weigh the median of the known (6): 10+... vs 6+4+...
    totals = [sum(weights.get(p, 6.0) for p in part) for part in parts]
    assert abs(totals[0] - totals[1]) <= 6.0
    assert "p0.plan.yaml" in parts[0]  # the heaviest goes first, to the first part
    assert partition(paths, 2, weights) == parts  # deterministic
    assert partition(list(reversed(paths)), 2, weights) == parts  # whatever the input order


def test_partition_without_weights_is_round_robin_over_a_stable_shuffle() -> None:
    paths = [f"plans/x{i}.plan.yaml" for i in range(10)]
    parts = partition(paths, 3)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert parts == partition(sorted(paths, reverse=True), 3)
    assert parts[0] != sorted(parts[0]) or parts[1] != sorted(parts[1])  # shuffled by hash, not alphabetical


def test_a_plugin_adds_lines_after_the_collected_line_printable(planrunner: Planrunner) -> None:
    _suite(planrunner, ["a"])
    planrunner.makeconftest(
        """
        def planrun_report_collectionfinish(config, items):
            return [f"{len(items)} items chosen", "evil \\x1b[2J here"]
        """
    )
    result = planrunner.run(".")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(["collected 1 item*", "1 items chosen", "evil \\x1b[2J here"])
    assert "\x1b" not in result.outstr
    quiet = planrunner.run("-q", ".")
    assert "items chosen" not in quiet.outstr


def test_recorded_durations_balance_the_parts(planrunner: Planrunner) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    planrunner.makeplan(
        "heavy",
        "plan: heavy\ntasks:\n  - {id: t, name: T, run: 'sleep 1', criteria: [{file_exists: pyproject.toml}]}\n",
    )
    for name in ("l1", "l2", "l3", "l4"):
        planrunner.makeplan(name, PLAN.format(name=name))
    assert planrunner.run(".").ret == ExitCode.OK  # an unsharded run records every plan's duration
    parts = []
    for k in (1, 2):
        result = planrunner.run("--verify-only", "--shard", f"{k}/2", ".")
        result.stdout.fnmatch_lines([f"shard {k}/2: * of 5 plans (balanced by recorded durations)"])
        parts.append(_ran(result.outstr))
    heavy = next(part for part in parts if "heavy.plan.yaml" in part)
    assert heavy == ["heavy.plan.yaml"]  # the slow plan alone; the four quick ones together
    assert sorted(sum(parts, [])) == sorted(
        ["heavy.plan.yaml", "l1.plan.yaml", "l2.plan.yaml", "l3.plan.yaml", "l4.plan.yaml"]
    )
    recorded = planrunner.path / ".planrun" / "cache" / "durations.json"
    before = recorded.read_bytes()
    assert planrunner.run("--shard", "2/2", ".").ret == ExitCode.OK
    assert recorded.read_bytes() == before  # a shard never writes it: it cannot move another shard's plans
    recorded.write_text("{not json")
    without = planrunner.run("--shard", "1/2", ".")
    without.stdout.fnmatch_lines(["shard 1/2: * of 5 plans (balanced by path hash)"])
