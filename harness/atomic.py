"""Files that are either the old or the new content, never half: temp file, fsync, rename."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

#: Temp files carry this suffix, so a crashed writer's leftovers can be found and removed.
TEMP_SUFFIX = ".planrun-tmp"


def temp_name(name: str) -> str:
    """A hidden temporary name beside ``name`` (``.NAME.RANDOM.planrun-tmp``), within the 255 bytes a name may have.

    ``name`` is cut to 200 bytes of its encoding (whole characters), not 200
    characters: a name of 127 ``é`` is 254 bytes and valid, and so must its
    temporary name be.
    """
    head = name
    while len(head.encode("utf-8", "surrogateescape")) > 200:
        head = head[:-1]
    return f".{head}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def read_upto(read: Callable[[int], bytes], limit: int, size: int | None = None) -> bytes:
    """At most ``limit + 1`` bytes from ``read`` (``os.read`` of a descriptor, a file's ``read``), so a caller
    sees whether there was more than ``limit``.

    In chunks of at most 1 MiB (of ``size + 1``, the file's size, when known,
    and 64 KiB at least: a file that reports no size may hold some): a read
    asks for no buffer of the limit's size, so a huge ``--max-plan-bytes`` or
    ``--max-file-bytes`` costs nothing.
    """
    step = 1 << 20 if size is None else min(1 << 20, max(size + 1, 1 << 16))
    chunks, left = [], limit + 1
    while left > 0:
        chunk = read(min(left, step))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def opened(fd: int) -> tuple[BinaryIO | None, os.stat_result]:
    """``(file, status)`` of open descriptor ``fd``: a binary file when it is a regular file, else ``None`` (closed).

    What was opened is checked before it is wrapped: ``open(fd)`` itself
    refuses a directory (``IsADirectoryError``) before any check could say
    "not a regular file".
    """
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None, st
    return open(fd, "rb"), st


def write_atomic(
    path: os.PathLike[str] | str,
    data: bytes | str | Iterable[bytes | memoryview],
    *,
    mode: int = 0o644,
    replace: bool = True,
) -> None:
    """Replace ``path`` with ``data`` atomically (a reader sees the old file or the new one, whole).

    The data goes to a temp file in the same folder (created with
    ``O_EXCL``, never following a link, ``mode`` less the umask), is fsynced,
    renamed over ``path``, and the folder is fsynced so the rename survives a
    power loss. Missing parent folders are created. A ``str`` is written as
    UTF-8; an iterable of byte chunks is written chunk by chunk (never joined
    in memory). With ``replace=False`` an existing ``path`` is never replaced: the
    temp file is hard-linked into place, and :exc:`FileExistsError` is raised
    if ``path`` exists (also if it appeared meanwhile).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    chunks: Iterable[bytes | memoryview]
    if isinstance(data, str):
        chunks = [data.encode("utf-8")]
    elif isinstance(data, (bytes, bytearray, memoryview)):
        chunks = [data]
    else:
        chunks = data
    tmp = target.parent / temp_name(target.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        if replace:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # FileExistsError if it is there: never replaced
    finally:
        tmp.unlink(missing_ok=True)  # gone after a rename; the extra name after a link
    try:
        dfd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def remove_stale_temps(folder: os.PathLike[str] | str) -> list[str]:
    """Remove the temp files a killed :func:`write_atomic` left in ``folder``; their names."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.endswith(TEMP_SUFFIX) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(entry.name)
            except OSError:
                pass
    return removed


def ignored_folder(folder: os.PathLike[str] | str) -> Path:
    """``folder``, made if missing, with a ``.gitignore`` of ``*``: git never shows or adds it (as ``.pytest_cache``).

    For ``.planrun/`` and what is under it. An existing ``.gitignore`` (or a
    link by that name) is left alone.
    """
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    ignore = path / ".gitignore"
    if not os.path.lexists(ignore):
        write_atomic(ignore, "# Created by planrun: its state, caches and transcripts stay out of git.\n*\n")
    return path
