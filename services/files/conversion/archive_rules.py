"""The rules an archive's headers must pass, checked while they are read (see converters/archive.py).

Used by detection too: even telling whether a file is a TAR means reading its first header.
"""
from __future__ import annotations

import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.files.conversion.errors import ConversionError

RATIO_FLOOR_BYTES = 1024 * 1024  # small members compress very well legitimately
MAX_HEADER_BYTES = 1024 * 1024  # one PAX or GNU long-name header


@dataclass(frozen=True)
class Member:
    parts: tuple[str, ...]  # the normalised path
    size: int
    is_dir: bool
    handle: Any  # ZipInfo or TarInfo

    @property
    def path(self) -> str:
        return "/".join(self.parts)


def safe_parts(name: str) -> tuple[str, ...]:
    """The path components of a member name; raises ConversionError for a name that could escape."""
    if "\x00" in name:
        raise ConversionError(f"member {name!r} has a NUL byte in its name")
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise ConversionError(f"member {name!r} has an absolute path")
    parts = tuple(p for p in text.split("/") if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise ConversionError(f"member {name!r} escapes the archive ('..')")
    if any(len(p) > 255 for p in parts) or len(parts) > 64:
        raise ConversionError(f"member {name[:100]!r} has too long a path")
    return parts


class Budget:
    """Members, expanded bytes and ratio of one archive, counted as its headers are read."""

    def __init__(self, *, max_members: int, max_bytes: int, max_ratio: float, compressed_size: int,
                 total_limited: bool = False):
        self.max_members, self.max_bytes, self.max_ratio = max_members, max_bytes, max_ratio
        self.total_limited = total_limited  # max_bytes is what is left of the upload's budget
        self.compressed = max(compressed_size, 1)
        self.members = 0
        self.total = 0

    def _grow(self, size: int, what: str) -> None:
        self.total += size
        if self.total > self.max_bytes:
            if self.total_limited:
                raise ConversionError(f"expands past the {self.max_bytes} bytes left of the upload's budget, which "
                                      f"nested archives share (at {what})")
            raise ConversionError(f"expands past the limit of {self.max_bytes} bytes (at {what})")
        if self.total > RATIO_FLOOR_BYTES and self.total / self.compressed > self.max_ratio:
            raise ConversionError(f"expands more than {self.max_ratio:g} times its size (a compression bomb?)")

    def add(self, member_name: str, size: int) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise ConversionError(f"more than {self.max_members} members")
        self._grow(size, f"member {member_name!r}")

    def header(self, size: int, kind: str) -> None:
        if size > MAX_HEADER_BYTES:
            raise ConversionError(f"a {kind} header declares {size} bytes, more than the {MAX_HEADER_BYTES} "
                                  "allowed for one header")
        self._grow(size, f"a {kind} header")


def bounded_tarinfo(budget: Budget) -> type[tarfile.TarInfo]:
    """A TarInfo whose extension headers are measured before tarfile reads them whole."""

    class BoundedTarInfo(tarfile.TarInfo):
        def _proc_gnulong(self, tarfile_):
            budget.header(self.size, "GNU long-name")
            return super()._proc_gnulong(tarfile_)

        def _proc_pax(self, tarfile_):
            budget.header(self.size, "PAX")
            return super()._proc_pax(tarfile_)

        def _proc_sparse(self, tarfile_):
            raise ConversionError(f"member {self.name!r} is a sparse file; sparse files are refused")

        def _proc_gnusparse_00(self, *args):
            raise ConversionError("a member is a sparse file; sparse files are refused")

        _proc_gnusparse_01 = _proc_gnusparse_10 = _proc_gnusparse_00

    return BoundedTarInfo


def open_tar(path: Path, budget: Budget) -> tarfile.TarFile:
    return tarfile.open(path, "r:*", tarinfo=bounded_tarinfo(budget))


def zip_members(path: Path, budget: Budget) -> list[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ConversionError(f"not a readable ZIP archive: {exc}") from None
    members = []
    with archive:
        for info in archive.infolist():
            parts = safe_parts(info.filename)
            mode = (info.external_attr >> 16) & 0xFFFF
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                raise ConversionError(f"member {info.filename!r} is a symbolic link")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ConversionError(f"member {info.filename!r} is a special file")
            if info.flag_bits & 0x1:
                raise ConversionError(f"member {info.filename!r} is encrypted")
            budget.add(info.filename, info.file_size)
            if info.file_size > RATIO_FLOOR_BYTES and info.file_size / max(info.compress_size, 1) > budget.max_ratio:
                raise ConversionError(f"member {info.filename!r} expands {info.file_size // max(info.compress_size, 1)} "
                                      "times (a compression bomb?)")
            if parts:
                members.append(Member(parts, info.file_size, info.is_dir(), info))
    return members


def tar_members(path: Path, budget: Budget) -> list[Member]:
    members = []
    try:
        with open_tar(path, budget) as archive:
            for info in archive:
                parts = safe_parts(info.name)
                if info.issym() or info.islnk():
                    raise ConversionError(f"member {info.name!r} is a link (to {info.linkname!r})")
                if not (info.isfile() or info.isdir()):
                    raise ConversionError(f"member {info.name!r} is a device, FIFO or other special file")
                budget.add(info.name, info.size if info.isfile() else 0)
                if parts:
                    members.append(Member(parts, info.size if info.isfile() else 0, info.isdir(), info))
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ConversionError(f"not a readable TAR archive: {exc}") from None
    return members
