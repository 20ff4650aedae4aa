"""The shortcuts of the path work every check does: each gives what the long way gives."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from planrun import CheckContext, CheckFailed
from planrun import types as T

needs_proc = pytest.mark.skipif(not T._USE_PATH, reason="needs O_PATH and /proc/self/fd")


@needs_proc
def test_kernel_realdir_is_realpath_through_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "up").symlink_to("..")
    for path in ("link", "link/deep", "real/up/link/deep/..", "link/"):
        full = os.path.join(str(tmp_path), path)
        assert T._kernel_realdir(full) == os.path.realpath(full)
        T.forget_paths()
        assert T._realdir(full) == os.path.realpath(full)


@needs_proc
def test_kernel_realdir_gives_way_where_it_cannot_tell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("x")
    assert T._kernel_realdir(str(tmp_path / "file")) is None  # not a folder: realpath says
    assert T._kernel_realdir(str(tmp_path / "missing")) is None
    assert T._kernel_realdir("a\0b") is None
    T.forget_paths()
    assert T._realdir(str(tmp_path / "missing" / "x")) == os.path.realpath(tmp_path / "missing" / "x")
    monkeypatch.setattr(T.os, "readlink", lambda path: f"{tmp_path} (deleted)")
    assert T._kernel_realdir(str(tmp_path)) is None  # removed meanwhile: the long way


def test_plain_shortcut_agrees_with_the_long_way() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", ".", "..", "/", "//", "*", "x.txt", "?", "[a]", " ", "\\", "-"]
    patterns = ["", ".", "/", "a", "a/b", "a/b/", "a/./b", "./a", "a/..", "..a", "a..b", ".env", "a/.env", "a//b"]
    patterns += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(3000)]
    for pattern in patterns:
        assert T._plain(pattern) == T._plain_parts(pattern), pattern


def test_workdir_root_is_asked_again_in_each_generation(tmp_path: Path) -> None:
    work, elsewhere = tmp_path / "w", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "f.txt").write_text("here")
    (elsewhere / "f.txt").write_text("there")
    T.forget_paths()
    ctx = CheckContext(work, 5.0)
    assert ctx.read_text("f.txt") == "here"
    assert CheckContext(work, 5.0).glob("f.txt") == (["f.txt"], [])  # the same Path: known for this generation
    work.rename(tmp_path / "w.old")
    work.symlink_to(elsewhere)
    T.forget_paths()  # what the runner does after anything that may change the tree
    with pytest.raises(CheckFailed, match="was replaced"):
        CheckContext(work, 5.0).glob("f.txt")
    with pytest.raises(CheckFailed, match="was replaced"):
        CheckContext(work, 5.0).read_text("f.txt")
