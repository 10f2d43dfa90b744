"""The worker's side of the parse: run parse.py in the sandbox and read back what it answered.

The scratch folder lives under `FILES_DIR/tmp/` (so that extracted archive members can be moved
into place without a copy) and is removed when the task is done with it. Everything the sandbox
hands back is checked as untrusted (it ran on hostile bytes).
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from services.files.context import Limits
from services.files.conversion.detect import CONVERTER_NAMES, Candidate
from services.files.conversion.errors import ConversionError
from services.files.conversion.parse import CANDIDATE_MARK, DETECTED_MARK, ENTRY, PLAN_FOLDER
from services.files.conversion.source import ParseLimits
from shared.sandbox import SandboxFailed, run_sandboxed
from shared.sandbox.outputs import open_output

if TYPE_CHECKING:
    from services.files.conversion.job import Job

_IO_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_EXTENSION = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MAX_FAILURES = 64
# Not secret, read by libraries in the sandbox: pynwb would otherwise pickle a cache of its types.
PARSE_ENV = {"PYNWB_NO_CACHE_DIR": "1"}


class ParseStopped(Exception):
    """The sandbox ended without an answer (a limit, a crash): `reason` says which, `label` names
    the converter that was running (or "detection")."""

    def __init__(self, reason: str, *, kind: str, candidates: list[Candidate], running: int | None):
        super().__init__(reason)
        self.reason, self.kind, self.candidates, self.running = reason, kind, candidates, running

    @property
    def candidate(self) -> Candidate | None:
        if self.running is not None and 0 <= self.running < len(self.candidates):
            return self.candidates[self.running]
        return None


@dataclass
class Parsed:
    folder: Path  # the plan's folder
    candidates: list[Candidate]
    failures: list[tuple[int, str]] = field(default_factory=list)
    chosen: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    objects: int = 0
    members: int = 0

    @property
    def candidate(self) -> Candidate | None:
        return None if self.chosen is None else self.candidates[self.chosen]

    @property
    def kind(self) -> str:
        return str(self.info.get("kind") or "objects")


def _invalid(what: str) -> ConversionError:
    return ConversionError(f"the parser's answer is not valid ({what})")


def _candidate(raw: Any) -> Candidate:
    if not isinstance(raw, dict) or raw.get("conversion_type") not in CONVERTER_NAMES:
        raise _invalid("candidate")
    io_name, extension = raw.get("io_name"), raw.get("extension")
    if io_name is not None and not (isinstance(io_name, str) and _IO_NAME.match(io_name)):
        raise _invalid("reader name")
    if extension is not None and not (isinstance(extension, str) and _EXTENSION.match(extension)):
        raise _invalid("extension")
    return Candidate(int(raw["conversion_type"]), io_name, extension)


def _candidates(raw: Any) -> list[Candidate]:
    if not isinstance(raw, list) or len(raw) > 256:
        raise _invalid("candidates")
    return [_candidate(item) for item in raw]


def _count(raw: Any, what: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
        raise _invalid(what)
    return raw


def read_answer(value: Any, folder: Path) -> Parsed:
    if not isinstance(value, dict):
        raise _invalid("not an object")
    candidates = _candidates(value.get("candidates"))
    failures = []
    raw_failures = value.get("failures")
    if not isinstance(raw_failures, list) or len(raw_failures) > MAX_FAILURES:
        raise _invalid("failures")
    for item in raw_failures:
        if not isinstance(item, dict) or not isinstance(item.get("reason"), str):
            raise _invalid("failure")
        index = _count(item.get("index"), "failure index")
        if index >= len(candidates):
            raise _invalid("failure index")
        failures.append((index, item["reason"][:1000]))
    parsed = Parsed(folder=folder, candidates=candidates, failures=failures)
    chosen = value.get("chosen")
    if chosen is None:
        return parsed
    parsed.chosen = _count(chosen, "chosen")
    if parsed.chosen >= len(candidates):
        raise _invalid("chosen")
    info = value.get("info")
    if not isinstance(info, dict) or info.get("kind") not in ("objects", "archive", "odml"):
        raise _invalid("info")
    parsed.info = info
    parsed.objects = _count(value.get("objects", 0), "objects")
    parsed.members = _count(value.get("members", 0), "members")
    return parsed


def _marker(scratch: Path, name: str, max_bytes: int) -> bytes:
    with open_output(scratch, name, max_bytes=max_bytes) as f:
        return f.read()


def _markers(scratch: Path) -> tuple[list[Candidate], int | None]:
    """What the stopped sandbox had detected and which candidate it was trying (best effort)."""
    try:
        candidates = _candidates(json.loads(_marker(scratch, DETECTED_MARK, 100_000)))
    except (OSError, ValueError, ConversionError):
        return [], None
    try:
        running = int(_marker(scratch, CANDIDATE_MARK, 20))
    except (OSError, ValueError):
        running = None
    return candidates, running


SCRATCH_PREFIX = "parse-"


def sweep_stale_scratch(tmp_dir: Path, *, older_than_seconds: float) -> int:
    """Remove scratch folders a dead worker left behind (only those older than any live parse can be,
    since several workers may share FILES_DIR); returns how many."""
    removed = 0
    cutoff = time.time() - older_than_seconds
    for folder in tmp_dir.glob(f"{SCRATCH_PREFIX}*"):
        try:
            if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def scratch_folder(job: "Job") -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{job.datafile_id}-", dir=job.ctx.store.tmp_dir()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def parse_limits(limits: Limits) -> ParseLimits:
    """The limits the parse applies to the upload's content, from the service's."""
    return ParseLimits(csv_max_bytes=limits.csv_max_bytes, odml_max_bytes=limits.odml_max_bytes,
                       hdf5_max_dataset_bytes=limits.hdf5_max_dataset_bytes,
                       archive_max_members=limits.archive_max_members, archive_max_bytes=limits.archive_max_bytes,
                       archive_max_ratio=limits.archive_max_ratio, archive_max_depth=limits.archive_max_depth)


def parse(job: "Job", scratch: Path, *, start: int = 0, params: dict[str, Any] | None = None) -> Parsed:
    """Run the parse in the sandbox, from candidate `start`; ParseStopped when it gave no answer."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    orders = {"title": job.title, "options": job.doc.get("options") or {}, "start": start,
              "limits": parse_limits(job.ctx.limits).to_params(), **(params or {})}
    try:
        value = run_sandboxed(ENTRY, input_path=job.path, scratch=scratch, params=orders, settings=job.ctx.sandbox,
                              on_tick=job.heartbeat, env=PARSE_ENV)
    except SandboxFailed as exc:
        candidates, running = _markers(scratch)
        raise ParseStopped(exc.message, kind=exc.kind, candidates=candidates, running=running) from None
    return read_answer(value, scratch / PLAN_FOLDER)
