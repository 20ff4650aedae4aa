"""``--shard K/N``: this machine runs the K-th of N deterministic parts of the plan suite.

A CI matrix of N jobs, each with ``--shard K/N``, runs every plan exactly
once. The partition depends only on the plans' paths relative to the rootdir
(and on their durations in the last run without ``--shard``, kept in
``.planrun/cache/durations.json``: shards never write it, so they cannot
change each other's partition), never on the machine or the order of the
command line, so every job that sees the same checkout and the same
``.planrun/`` computes the same one. Plans are
taken longest first (by duration where known, else all equal) and each goes
to the part with the least total so far; ties are broken by a SHA-256 of the
plan's path, so equal plans spread round-robin in a stable shuffled order.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from planrun import hookimpl, statestore, write_atomic

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.session import CollectedPlan, Item, Session

_SHARD = re.compile(r"([1-9][0-9]{0,5})/([1-9][0-9]{0,5})")
_STASH = "shard.summary"
_FORMAT = "planrun-durations-1"


def _durations_file(config: Config) -> Path:
    return config.planrun_dir / "cache" / "durations.json"


def recorded_durations(config: Config) -> dict[str, float]:
    """Plan key (its path relative to the rootdir) -> the seconds its items took in the last unsharded run.

    Only runs without ``--shard`` write this file, so the shards of one suite
    never change each other's partition, and every job that restores the
    same ``.planrun/`` reads the same one. Missing or unreadable: ``{}``.
    """
    try:
        data = json.loads(_durations_file(config).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("plans"), dict):
        return {}
    return {
        k: float(v)
        for k, v in data["plans"].items()
        if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e9
    }


def _shard(text: str) -> tuple[int, int]:
    m = _SHARD.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    k, n = int(m.group(1)), int(m.group(2))
    if k > n:
        raise argparse.ArgumentTypeError(f"shard {k} of {n} does not exist: K must be between 1 and N")
    return k, n


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="K/N",
        help="run only the K-th of N deterministic parts of the plans (a CI matrix: one job per part)",
    )


def partition(paths: list[str], n: int, weights: Mapping[str, float] | None = None) -> list[list[str]]:
    """``paths`` split into ``n`` parts, balanced by ``weights`` (default 1 each); deterministic.

    :param paths: plan paths relative to the rootdir (``/``-separated).
    :param weights: path -> recorded seconds; missing paths weigh the
        median of the known ones (1 when none is known).
    """
    weights = weights or {}
    known = sorted(w for p, w in weights.items() if p in set(paths) and w > 0)
    default = known[len(known) // 2] if known else 1.0

    def weight(path: str) -> float:
        w = weights.get(path)
        return w if w is not None and w > 0 else default

    def tiebreak(path: str) -> str:
        return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()

    parts: list[list[str]] = [[] for _ in range(n)]
    totals = [0.0] * n
    for path in sorted(set(paths), key=lambda p: (-weight(p), tiebreak(p))):
        i = min(range(n), key=lambda j: (totals[j], len(parts[j]), j))
        parts[i].append(path)
        totals[i] += weight(path)
    return parts


def _relative(cplan: CollectedPlan, config: Config) -> str:
    return statestore.plan_key(cplan.path, config.rootdir)  # the state store's key: the rootdir-relative path


@hookimpl(trylast=True)
def planrun_collection_modifyitems(session: Session, config: Config, items: list[Item]) -> None:
    shard = config.option.shard
    if shard is None:
        return
    k, n = shard
    plans = {id(item.cplan): item.cplan for item in items}
    paths = {pid: _relative(cplan, config) for pid, cplan in plans.items()}
    recorded = recorded_durations(config)
    balanced = bool(recorded) and any(p in recorded for p in paths.values())
    mine = set(partition(list(paths.values()), n, recorded if balanced else None)[k - 1])
    keep = [item for item in items if paths[id(item.cplan)] in mine]
    dropped = [item for item in items if paths[id(item.cplan)] not in mine]
    if dropped:
        session.deselect(dropped)
        items[:] = keep
    by = "recorded durations" if balanced else "path hash"
    config.stash[_STASH] = f"shard {k}/{n}: {len(mine)} of {len(set(paths.values()))} plans (balanced by {by})"


@hookimpl
def planrun_report_collectionfinish(config: Config) -> str | None:
    return config.stash.get(_STASH)


@hookimpl
def planrun_sessionfinish(session: Session) -> None:
    """After a whole (unsharded) run: each plan's duration, for the next ``--shard``'s balance."""
    config = session.config
    if config.option.shard is not None or session.interrupted or not session.reports:
        return
    if config.getoption("collectonly"):
        return
    keys = {cplan.display: _relative(cplan, config) for cplan in session.plans}
    totals: dict[str, float] = {}
    for report in session.reports:
        key = keys.get(report.plan)
        if key is not None and math.isfinite(report.duration) and report.duration >= 0:
            totals[key] = totals.get(key, 0.0) + report.duration
    if not totals:
        return
    plans = {**recorded_durations(config), **{k: max(round(v, 3), 0.001) for k, v in totals.items()}}
    try:
        write_atomic(_durations_file(config), json.dumps({"format": _FORMAT, "plans": plans}, sort_keys=True))
    except OSError as exc:
        config.warnings.append(f"cannot record plan durations for --shard: {exc.strerror or exc}")
