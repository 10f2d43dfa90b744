"""Conversion types 6 (ZIP) and 7 (TAR), the parse: check every member, then extract them.

Everything is checked before anything is extracted; an archive that breaks a rule fails as a
whole, with the reason in `operations_log`:

- a member name that is absolute, has a drive letter, a `..` component or a NUL byte;
- a symbolic or hard link, a device, a FIFO, a sparse file (TAR), a link or special file (ZIP
  mode bits); encrypted ZIP members;
- more than `archive_max_members` members, more than the expansion budget once expanded (the
  smaller of `archive_max_bytes` and what is left of the upload's total budget across nested
  archives), or an expansion ratio above `archive_max_ratio` (per ZIP member above 1 MiB, and
  overall); TAR extension headers (PAX, GNU long names) count against the same budget and each is
  limited to MAX_HEADER_BYTES before Python's tarfile reads it into memory (a small compressed
  TAR can declare a 4 GB header);
- an archive nested more than `archive_max_depth` levels inside archives.

Member names never become paths: each file is streamed (counted, hashed, stopped at its declared
size) into `members/<n>` of the scratch folder; the worker turns them into datafiles
(archive_members.py).
"""
from __future__ import annotations

import tarfile
import zipfile
from typing import Any

from services.files.conversion import detect
from services.files.conversion.archive_rules import Budget, open_tar, tar_members, zip_members
from services.files.conversion.errors import ConversionError


def _budget(source, params: dict[str, Any]) -> Budget:
    limits = source.limits
    remaining = params.get("archive_remaining_bytes")
    max_bytes = limits.archive_max_bytes if remaining is None else min(limits.archive_max_bytes, int(remaining))
    return Budget(max_members=limits.archive_max_members, max_bytes=max_bytes, max_ratio=limits.archive_max_ratio,
                  compressed_size=source.path.stat().st_size,
                  total_limited=remaining is not None and int(remaining) < limits.archive_max_bytes)


def _parents(parts: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every folder a member lies in: a/b/c.csv is in a and in a/b."""
    return [parts[:depth] for depth in range(1, len(parts))]


def parse_archive(source, plan, candidate) -> dict[str, Any]:
    """Check, then extract every file member into the plan; returns the folders for the worker."""
    depth = int(source.params.get("archive_depth") or 0)
    if depth >= source.limits.archive_max_depth:
        raise ConversionError(f"archives nested more than {source.limits.archive_max_depth} levels deep are not extracted")
    is_zip = candidate.conversion_type == detect.ZIP
    budget = _budget(source, source.params)
    members = zip_members(source.path, budget) if is_zip else tar_members(source.path, budget)
    files = [m for m in members if not m.is_dir]
    folders = {m.parts for m in members if m.is_dir} | {parent for m in files for parent in _parents(m.parts)}
    folders.discard(())
    if len(folders) > source.limits.archive_max_members:
        raise ConversionError(f"more than {source.limits.archive_max_members} folders (each becomes a section)")
    opened = zipfile.ZipFile(source.path) if is_zip else open_tar(source.path, budget)
    try:
        for member in files:
            handle = opened.open(member.handle) if is_zip else opened.extractfile(member.handle)
            if handle is None:
                raise ConversionError(f"member {member.path!r} cannot be read")
            try:
                with handle:
                    plan.member(member.path, handle, limit=member.size)
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno is not None:
                    raise
                raise ConversionError(f"member {member.path!r} cannot be read: {exc}") from None
    finally:
        opened.close()
    return {"kind": "archive", "folders": sorted([list(f) for f in folders], key=lambda f: (len(f), f)),
            "members": len(files), "expanded_bytes": sum(m.size for m in files)}
