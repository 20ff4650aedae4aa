"""``--shard K/N``: this machine runs the K-th of N deterministic parts of the plan suite.

A CI matrix of N jobs, each with ``--shard K/N``, runs every plan exactly
once. The partition depends only on the plans' paths relative to the rootdir
(and, when given, their recorded durations), never on the machine or the
order of the command line, so every job computes the same one. Plans are
taken longest first (by duration where known, else all equal) and each goes
to the part with the least total so far; ties are broken by a SHA-256 of the
plan's path, so equal plans spread round-robin in a stable shuffled order.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from planrun import hookimpl

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.session import CollectedPlan, Item, Session

_SHARD = re.compile(r"([1-9][0-9]{0,5})/([1-9][0-9]{0,5})")
_STASH = "shard.summary"


def recorded_durations(config: Config) -> dict[str, float]:
    """Plan path relative to the rootdir -> seconds its last run took, from the state store (none yet)."""
    return {}


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
    import os

    try:
        return os.path.relpath(os.path.realpath(cplan.path), os.path.realpath(config.rootdir)).replace(os.sep, "/")
    except ValueError:
        return str(cplan.path)


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
