"""Opening what a sandbox wrote, from outside it, without being led astray.

The child may write anything into its scratch folder, symbolic links included: a link named like
an expected output (or a folder on its path replaced by one) would make the unconfined worker read,
move or overwrite a file the child could never touch itself. Every output is opened here, one path
component at a time from the scratch folder's own descriptor, never following a link, and only
when it is a regular file (a FIFO would block the worker forever).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


class UnsafeOutput(OSError):
    """An output that is missing, a link, not a regular file, or too large."""


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _parts(relative: str) -> list[str]:
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts):
        raise UnsafeOutput(f"{relative!r} is not a plain relative path")
    return parts


def open_folder(folder: Path, relative: str = "") -> int:
    """A descriptor of `folder/relative`, every component a real directory; the caller closes it."""
    fd = os.open(folder, _DIRECTORY)
    try:
        for part in _parts(relative) if relative else []:
            next_fd = os.open(part, _DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except OSError as exc:
        os.close(fd)
        raise UnsafeOutput(f"{relative!r} is not a folder of the sandbox's own: {exc.strerror}") from None
    return fd


def open_output(folder: Path, relative: str, *, max_bytes: int | None = None) -> BinaryIO:
    """`folder/relative` opened for reading, if it is a regular file (of at most `max_bytes`)."""
    *parents, name = _parts(relative)
    directory = open_folder(folder, "/".join(parents))
    try:
        fd = os.open(name, _FILE, dir_fd=directory)
    except OSError as exc:
        raise UnsafeOutput(f"{relative!r} cannot be opened safely: {exc.strerror}") from None
    finally:
        os.close(directory)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (max_bytes is not None and info.st_size > max_bytes):
        os.close(fd)
        raise UnsafeOutput(f"{relative!r} is not a regular file" if not stat.S_ISREG(info.st_mode)
                           else f"{relative!r} is larger than {max_bytes} bytes")
    return os.fdopen(fd, "rb")


def regular_file_in(directory_fd: int, name: str) -> os.stat_result:
    """The status of `name` in an opened folder, if it is a regular file (not a link)."""
    if "/" in name or name in ("", ".", ".."):
        raise UnsafeOutput(f"{name!r} is not a plain file name")
    try:
        info = os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
    except OSError as exc:
        raise UnsafeOutput(f"{name!r}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeOutput(f"{name!r} is not a regular file")
    return info
