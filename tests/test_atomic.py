"""write_atomic: whole files or the old ones, no temp left behind, never through a link."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from planrun import write_atomic
from planrun.atomic import TEMP_SUFFIX, remove_stale_temps


def test_writes_bytes_and_text_and_creates_parents(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a" / "b" / "x.json", "héllo")
    write_atomic(tmp_path / "y.bin", b"\x00\xff")
    assert (tmp_path / "a" / "b" / "x.json").read_bytes() == "héllo".encode()
    assert (tmp_path / "y.bin").read_bytes() == b"\x00\xff"
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def test_replacing_a_symlink_replaces_the_link_not_its_target(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "state.json").symlink_to(outside)
    write_atomic(tmp_path / "d" / "state.json", "new")
    assert outside.read_text() == "keep"
    assert not (tmp_path / "d" / "state.json").is_symlink()
    assert (tmp_path / "d" / "state.json").read_text() == "new"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    target.write_text("old")

    with pytest.raises(TypeError):
        write_atomic(target, 12345)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["s.json"]


def test_remove_stale_temps_removes_only_temps(tmp_path: Path) -> None:
    (tmp_path / f".s.json.abcd{TEMP_SUFFIX}").write_text("half")
    (tmp_path / "s.json").write_text("whole")
    (tmp_path / f"dir{TEMP_SUFFIX}").mkdir()
    assert remove_stale_temps(tmp_path) == [f".s.json.abcd{TEMP_SUFFIX}"]
    assert sorted(os.listdir(tmp_path)) == [f"dir{TEMP_SUFFIX}", "s.json"]
    assert remove_stale_temps(tmp_path / "missing") == []


def test_without_replace_an_existing_file_is_kept_and_no_temp_is_left(tmp_path: Path) -> None:
    target = tmp_path / "plan.yaml"
    write_atomic(target, "first", replace=False)
    assert target.read_text() == "first"
    with pytest.raises(FileExistsError):
        write_atomic(target, "second", replace=False)
    assert target.read_text() == "first"
    assert os.listdir(tmp_path) == ["plan.yaml"]
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):  # a dangling link is there too: never written through
        write_atomic(tmp_path / "link", "x", replace=False)
    assert not (tmp_path / "nowhere").exists()


def test_ignored_folder_makes_git_ignore_it_and_keeps_an_existing_gitignore(tmp_path: Path) -> None:
    from planrun import ignored_folder

    folder = ignored_folder(tmp_path / "a" / ".planrun")
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    (folder / ".gitignore").write_text("mine\n")
    ignored_folder(folder)
    assert (folder / ".gitignore").read_text() == "mine\n"


def test_chunks_are_written_in_order_and_a_failing_producer_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "pack"
    write_atomic(target, (bytes([n]) * 3 for n in range(4)))
    assert target.read_bytes() == b"\x00\x00\x00\x01\x01\x01\x02\x02\x02\x03\x03\x03"
    write_atomic(target, [b"ab", memoryview(b"xcdx")[1:3]])
    assert target.read_bytes() == b"abcd"

    def broken() -> Iterator[bytes]:
        yield b"new"
        raise OSError("the producer failed")

    with pytest.raises(OSError, match="the producer failed"):
        write_atomic(target, broken())
    assert target.read_bytes() == b"abcd"
    assert [p.name for p in tmp_path.iterdir()] == ["pack"]  # no temp file left
