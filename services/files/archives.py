"""Conversion types 6 (ZIP) and 7 (TAR): folders become sections, files become datafiles.

Everything is checked before anything is made; an archive that breaks a rule fails as a whole,
with the reason in `operations_log`:

- a member name that is absolute, has a drive letter, a `..` component or a NUL byte;
- a symbolic or hard link, a device, a FIFO (TAR), a link or special file (ZIP mode bits);
- encrypted ZIP members;
- more than ARCHIVE_MAX_MEMBERS members, more than ARCHIVE_MAX_BYTES once expanded, or an
  expansion ratio above ARCHIVE_MAX_RATIO (per ZIP member above 1 MiB, and overall), or an
  archive nested more than ARCHIVE_MAX_DEPTH levels inside archives.

Member names never become paths on disk: each file is streamed (counted, hashed, stopped at its
declared size and at the limits) into `FILES_DIR/objects/<id>` like an upload. Folders are made
with the metadata service's `mkdir -p` under the archive's section (or at the root), files go
into the section of their folder with its permissions (the archive's own when it has no section),
and each becomes a datafile whose conversion is queued in turn. A member already extracted by an
earlier attempt of the same archive is reused (`members` collection), never duplicated.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from pymongo.errors import DuplicateKeyError

from services.files import detect as detection
from services.files import events, history
from services.files.store import LIVE
from services.files.upload import StoredFile
from shared.access import acl_of
from shared.events import envelope_for, outbox_fields

if TYPE_CHECKING:
    from services.files.convert import Job, Outcome

RATIO_FLOOR_BYTES = 1024 * 1024  # small members compress very well legitimately
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Member:
    parts: tuple[str, ...]  # the normalised path
    size: int
    is_dir: bool
    handle: object  # ZipInfo or TarInfo

    @property
    def path(self) -> str:
        return "/".join(self.parts)


def _error(message: str):
    from services.files.convert import ConversionError

    return ConversionError(message)


def safe_parts(name: str) -> tuple[str, ...]:
    """The path components of a member name; raises ConversionError for a name that could escape."""
    if "\x00" in name:
        raise _error(f"member {name!r} has a NUL byte in its name")
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise _error(f"member {name!r} has an absolute path")
    parts = tuple(p for p in text.split("/") if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise _error(f"member {name!r} escapes the archive ('..')")
    if any(len(p) > 255 for p in parts) or len(parts) > 64:
        raise _error(f"member {name[:100]!r} has too long a path")
    return parts


class _Budget:
    def __init__(self, job: "Job", compressed_size: int):
        limits = job.ctx.limits
        self.max_members, self.max_bytes, self.max_ratio = limits.archive_max_members, limits.archive_max_bytes, limits.archive_max_ratio
        self.compressed = max(compressed_size, 1)
        self.members = 0
        self.total = 0

    def add(self, member_name: str, size: int) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise _error(f"more than {self.max_members} members")
        self.total += size
        if self.total > self.max_bytes:
            raise _error(f"expands past the limit of {self.max_bytes} bytes (at member {member_name!r})")
        if self.total > RATIO_FLOOR_BYTES and self.total / self.compressed > self.max_ratio:
            raise _error(f"expands more than {self.max_ratio:g} times its size (a compression bomb?)")


def zip_members(job: "Job") -> list[Member]:
    try:
        archive = zipfile.ZipFile(job.path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _error(f"not a readable ZIP archive: {exc}") from None
    budget = _Budget(job, job.path.stat().st_size)
    members = []
    with archive:
        for info in archive.infolist():
            parts = safe_parts(info.filename)
            mode = (info.external_attr >> 16) & 0xFFFF
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                raise _error(f"member {info.filename!r} is a symbolic link")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise _error(f"member {info.filename!r} is a special file")
            if info.flag_bits & 0x1:
                raise _error(f"member {info.filename!r} is encrypted")
            budget.add(info.filename, info.file_size)
            if info.file_size > RATIO_FLOOR_BYTES and info.file_size / max(info.compress_size, 1) > budget.max_ratio:
                raise _error(f"member {info.filename!r} expands {info.file_size // max(info.compress_size, 1)} times "
                             "(a compression bomb?)")
            if parts:
                members.append(Member(parts, info.file_size, info.is_dir(), info))
    return members


def tar_members(job: "Job") -> list[Member]:
    budget = _Budget(job, job.path.stat().st_size)
    members = []
    try:
        with tarfile.open(job.path, "r:*") as archive:
            for info in archive:
                parts = safe_parts(info.name)
                if info.issym() or info.islnk():
                    raise _error(f"member {info.name!r} is a link (to {info.linkname!r})")
                if not (info.isfile() or info.isdir()):
                    raise _error(f"member {info.name!r} is a device, FIFO or other special file")
                budget.add(info.name, info.size if info.isfile() else 0)
                if parts:
                    members.append(Member(parts, info.size if info.isfile() else 0, info.isdir(), info))
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise _error(f"not a readable TAR archive: {exc}") from None
    return members


def _copy(source: BinaryIO, target, *, limit: int, name: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    while True:
        data = source.read(CHUNK)
        if not data:
            return size, digest.hexdigest()
        size += len(data)
        if size > limit:
            raise _error(f"member {name!r} holds more than it declares")
        digest.update(data)
        target.write(data)


def _sections(job: "Job", folders: list[tuple[str, ...]]) -> dict[tuple[str, ...], dict | None]:
    """Each folder's section record (mkdir -p under the archive's section)."""
    base = job.doc.get("section")
    found: dict[tuple[str, ...], dict | None] = {(): None}
    records: dict[int, dict | None] = {}
    if base is not None:
        found[()] = job.ctx.metadata.section(job.identity, base)
    made: list[int] = []
    for folder in sorted(folders, key=lambda f: (len(f), f)):
        if folder in found:
            continue
        answer = job.ctx.metadata.make_path(job.identity, base, list(folder))
        for depth, item in enumerate(answer["sections"], start=1):
            key = folder[:depth]
            section_id = int(item["section_id"])
            if item.get("created"):
                made.append(section_id)
            if key not in found:
                if section_id not in records:
                    records[section_id] = job.ctx.metadata.section(job.identity, section_id)
                found[key] = records[section_id]
        job.advance()
    job.record_sections(made, undo_on_retry=False)
    return found


def convert_archive(job: "Job", candidate) -> "Outcome":
    from services.files.convert import Outcome
    from services.files.service import new_document

    limits = job.ctx.limits
    depth = int(job.doc.get("archive_depth") or 0)
    if depth >= limits.archive_max_depth:
        raise _error(f"archives nested more than {limits.archive_max_depth} levels deep are not extracted")
    is_zip = candidate.conversion_type == detection.ZIP
    members = zip_members(job) if is_zip else tar_members(job)
    files = [m for m in members if not m.is_dir]
    folders = {m.parts for m in members if m.is_dir} | {m.parts[:-1] for m in files}
    folders.discard(())
    job.expect(len(files) + len(folders), "extracting the archive")
    sections = _sections(job, sorted(folders))
    archive_id = job.datafile_id
    opened = zipfile.ZipFile(job.path) if is_zip else tarfile.open(job.path, "r:*")
    store = job.ctx.store
    try:
        for member in files:
            key = f"{archive_id}:{member.path}"
            record = store.members.find_one({"_id": key})
            if record is None:
                try:
                    child_id = store.next_id()
                    store.members.insert_one({"_id": key, "datafile": child_id, "archive": archive_id})
                except DuplicateKeyError:
                    record = store.members.find_one({"_id": key})
            if record is not None:
                child_id = int(record["datafile"])
                if store.datafiles.find_one({"_id": child_id}, {"_id": 1}) is not None:
                    job.record_datafile(child_id)
                    job.advance()
                    continue  # extracted by an earlier attempt
            path = store.path_of(child_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            if is_zip:
                source = opened.open(member.handle)
            else:
                source = opened.extractfile(member.handle)
                if source is None:
                    raise _error(f"member {member.path!r} cannot be read")
            try:
                with source, open(path, "wb") as target:
                    size, sha256 = _copy(source, target, limit=member.size, name=member.path)
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                if isinstance(exc, OSError) and not isinstance(exc, EOFError) and exc.errno is not None:
                    raise
                raise _error(f"member {member.path!r} cannot be read: {exc}") from None
            section = sections.get(member.parts[:-1])
            stored = StoredFile(path=path, filename=member.parts[-1], content_type=None, size=size, sha256=sha256)
            doc = new_document(datafile_id=child_id, identity=job.identity, stored=stored, title=member.parts[-1],
                               caption=f"from {job.title}: {member.path}", section=section,
                               inherited=None if section else job.doc, parent_datafile=archive_id,
                               archive_path=member.path, archive_depth=depth + 1)
            task_id = _child_task(job, child_id)
            doc.update({"current_state": "queued", "last_task_id": task_id, "conversion": {
                "task_id": task_id, "attempts": 0, "requested_at": doc["date_created"],
                "user_id": job.identity.user_id, "username": job.identity.username}})
            created = events.DatafileCreated(datafile_id=child_id, owner=doc["owner"], section_id=doc["section"],
                                             title=doc["title"], size=size, sha256=sha256, parent_datafile=archive_id,
                                             acl=acl_of(doc))
            requested = events.ConversionRequested(task_id=task_id, datafile_id=child_id, user_id=job.identity.user_id,
                                                   username=job.identity.username)
            created_event = envelope_for(created, producer=events.PRODUCER)
            requested_event = envelope_for(requested, producer=events.PRODUCER)
            try:
                store.datafiles.insert_one({**doc, **outbox_fields(created_event, requested_event)})
            except DuplicateKeyError:
                pass  # inserted by an earlier attempt, which recorded its history too
            else:
                _record_member(job, doc, created_event=created_event, requested_event=requested_event)
            job.record_datafile(child_id)
            job.advance()
    finally:
        opened.close()
    if store.datafiles.count_documents({"_id": archive_id, **LIVE}) == 0:
        from services.files.convert import TaskGone

        raise TaskGone(f"datafile_{archive_id} was deleted")
    return Outcome(job.extracted_info(members=len(files), folders=len(folders)))


def _record_member(job: "Job", doc: dict, *, created_event: dict, requested_event: dict) -> None:
    """A member's history starts with its extraction by this conversion and the conversion it queued."""
    store = job.ctx.store
    source = history.conversion_source(job.datafile_id)
    history.record_extracted(store.history, doc=doc, actor=job.identity.username, entry_id=created_event["event_id"])
    history.record_conversion_requested(store.history, datafile_id=doc["_id"], actor=job.identity.username,
                                        task_id=doc["last_task_id"], trigger="archive", source=source,
                                        entry_id=requested_event["event_id"])


def _child_task(job: "Job", child_id: int) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gnode:{job.task_id}:{child_id}"))
