"""Conversion types 6 (ZIP) and 7 (TAR), the worker's side: folders become sections, the members
the sandbox extracted become datafiles (the checks and the extraction: converters/archive.py).

- The upload's archives share one budget, however deep they nest: the bytes and members all of
  them extract together stay under ARCHIVE_MAX_TOTAL_BYTES / ARCHIVE_MAX_TOTAL_MEMBERS (collection
  `archive_budgets`, one document per uploaded file, counting each archive once even when its task
  is repeated). A nested archive is parsed with what is left of it.
- Folders are made with the metadata service's `mkdir -p` under the archive's section (or at the
  root); new ones start with the archive datafile's permissions.
- Members go into the section of their folder but start with the archive datafile's permissions,
  never the broader ones of the section they land in; each becomes a datafile whose conversion is
  queued in turn. Their bytes are moved (not copied) from the scratch folder into
  `FILES_DIR/objects/<id>`.
- Members count against the uploader's datafile quota (services/files/quota.py): an archive whose
  members cannot fit is refused before anything is stored.
- A member already extracted by an earlier attempt of the same archive is reused (`members`
  collection), never duplicated.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.files import events, history
from services.files.conversion.archive_rules import safe_parts
from services.files.conversion.errors import ConversionError, TaskGone
from services.files.conversion.job import Job
from services.files.conversion.plan import member_file, members_folder, read_plan
from services.files.conversion.sandboxed import Parsed
from services.files.quota import QuotaExceeded, datafile_quota, release_datafile_bytes, reserve_datafile_bytes
from services.files.service import new_document
from services.files.store import LIVE
from services.files.upload import StoredFile
from shared.access import acl_of
from shared.events import envelope_for, outbox_fields


def archive_root(doc: dict[str, Any]) -> int:
    """The uploaded file an archive (or an archive inside it) came from."""
    return int(doc.get("archive_root") or doc["_id"])


def remaining_budget(job: Job) -> int:
    """Bytes the upload's archives may still extract (what a nested archive is parsed with)."""
    used = job.ctx.store.archive_budgets.find_one({"_id": archive_root(job.doc)}, {"bytes": 1}) or {}
    return max(0, job.ctx.limits.archive_max_total_bytes - int(used.get("bytes") or 0))


def reserve_budget(job: Job, *, nbytes: int, members: int) -> None:
    """Count this archive's extraction against its upload's budget, once (a repeated task reuses it)."""
    budgets, limits = job.ctx.store.archive_budgets, job.ctx.limits
    root, archive = archive_root(job.doc), job.datafile_id
    if budgets.find_one({"_id": root}, {"_id": 1}) is None:
        try:
            budgets.insert_one({"_id": root, "bytes": 0, "members": 0, "archives": []})
        except DuplicateKeyError:
            pass
    result = budgets.update_one(
        {"_id": root, "archives": {"$ne": archive}, "bytes": {"$lte": limits.archive_max_total_bytes - nbytes},
         "members": {"$lte": limits.archive_max_total_members - members}},
        {"$inc": {"bytes": nbytes, "members": members}, "$push": {"archives": archive}})
    if result.modified_count == 1 or budgets.find_one({"_id": root, "archives": archive}, {"_id": 1}):
        return
    raise ConversionError(f"the archives of datafile_{root} would extract more than {limits.archive_max_total_bytes} "
                          f"bytes or {limits.archive_max_total_members} members in all (archives nested in archives "
                          "share one budget)")


def _sections(job: Job, folders: list[tuple[str, ...]]) -> dict[tuple[str, ...], dict | None]:
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
        answer = job.ctx.metadata.make_path(job.identity, base, list(folder), acl=acl_of(job.doc))
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


def _folders(job: Job, parsed: Parsed) -> list[tuple[str, ...]]:
    """The folders to make, checked again (names that cannot escape, no more than the members allowed)."""
    raw = parsed.info.get("folders") or []
    if not isinstance(raw, list) or len(raw) > job.ctx.limits.archive_max_members \
            or not all(isinstance(f, list) and all(isinstance(p, str) for p in f) for f in raw):
        raise ConversionError("the parser's answer is not valid (folders)")
    folders = [safe_parts("/".join(f)) for f in raw if f]
    if any(list(folder) != f for folder, f in zip(folders, (f for f in raw if f))):
        raise ConversionError("the parser's answer is not valid (folder names)")
    return folders


def _member_parts(path: str) -> tuple[str, ...]:
    return safe_parts(path)  # checked again: the sandbox's answer is not trusted


def _claim_member(job: Job, member: str) -> tuple[int, bool]:
    """(datafile id, already extracted) of the archive member `member`."""
    store = job.ctx.store
    key = f"{job.datafile_id}:{member}"
    record = store.members.find_one({"_id": key})
    if record is None:
        try:
            child_id = store.next_id()
            store.members.insert_one({"_id": key, "datafile": child_id, "archive": job.datafile_id})
            return child_id, False
        except DuplicateKeyError:
            record = store.members.find_one({"_id": key})
    child_id = int(record["datafile"])
    return child_id, store.datafiles.find_one({"_id": child_id}, {"_id": 1}) is not None


def _store_member(job: Job, op: dict[str, Any], members: int, sections: dict, depth: int) -> None:
    parts = _member_parts(op["path"])
    if not parts:
        raise ConversionError("the parser's answer is not valid (member path)")
    child_id, done = _claim_member(job, "/".join(parts))
    if done:
        job.record_datafile(child_id)
        job.advance()
        return
    source, size = member_file(members, op)
    owner = job.identity.user_id
    try:
        reserve_datafile_bytes(job.ctx, owner, size)
    except QuotaExceeded as exc:
        raise ConversionError(f"member {'/'.join(parts)!r}: {exc.message}") from None
    try:
        stored = _move_member(job, members, source, child_id, parts, sections, depth)
    except BaseException:
        release_datafile_bytes(job.ctx, owner, size)
        raise
    if not stored:
        release_datafile_bytes(job.ctx, owner, size)  # an earlier attempt stored and counted it
    job.record_datafile(child_id)
    job.advance()


def _hashed(path: Path) -> tuple[int, str]:
    """Size and sha256 as the worker reads them (the parser's word is not taken for them)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def _move_member(job: Job, members: int, source: str, child_id: int, parts: tuple[str, ...], sections: dict,
                 depth: int) -> bool:
    """The member's bytes in place and its datafile recorded; False when an earlier attempt had."""
    target = job.ctx.store.path_of(child_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target, src_dir_fd=members)  # from the opened folder: no link on the way is followed
    size, sha256 = _hashed(target)
    section = sections.get(parts[:-1])
    stored = StoredFile(path=target, filename=parts[-1], content_type=None, size=size, sha256=sha256)
    # The member's permissions are the archive datafile's; the section only says where it appears.
    doc = new_document(datafile_id=child_id, identity=job.identity, stored=stored, title=parts[-1],
                       caption=f"from {job.title}: {'/'.join(parts)}", section=None, inherited=job.doc,
                       parent_datafile=job.datafile_id, archive_path="/".join(parts), archive_depth=depth + 1)
    doc["section"] = section["section_id"] if section else None
    doc["archive_root"] = archive_root(job.doc)
    return _insert_member(job, doc)


def _insert_member(job: Job, doc: dict[str, Any]) -> bool:
    child_id = doc["_id"]
    task_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"gnode:{job.task_id}:{child_id}"))
    doc.update({"current_state": "queued", "last_task_id": task_id, "conversion": {
        "task_id": task_id, "attempts": 0, "requested_at": doc["date_created"],
        "user_id": job.identity.user_id, "username": job.identity.username}})
    created = events.DatafileCreated(datafile_id=child_id, owner=doc["owner"], section_id=doc["section"],
                                     title=doc["title"], size=doc["size"], sha256=doc["sha256"],
                                     parent_datafile=job.datafile_id, acl=acl_of(doc))
    requested = events.ConversionRequested(task_id=task_id, datafile_id=child_id, user_id=job.identity.user_id,
                                           username=job.identity.username)
    created_event = envelope_for(created, producer=events.PRODUCER)
    requested_event = envelope_for(requested, producer=events.PRODUCER)
    try:
        job.ctx.store.datafiles.insert_one({**doc, **outbox_fields(created_event, requested_event)})
    except DuplicateKeyError:
        return False  # inserted by an earlier attempt, which recorded its history too
    store = job.ctx.store
    source = history.conversion_source(job.datafile_id)
    history.record_extracted(store.history, doc=doc, actor=job.identity.username, entry_id=created_event["event_id"])
    history.record_conversion_requested(store.history, datafile_id=child_id, actor=job.identity.username,
                                        task_id=task_id, trigger="archive", source=source,
                                        entry_id=requested_event["event_id"])
    return True


def _check_quota(job: Job, expanded: int) -> None:
    """Refuse before anything is stored when the members cannot fit the uploader's quota."""
    remaining = datafile_quota(job.ctx).remaining(job.identity.user_id)
    if remaining is not None and expanded > remaining:
        raise ConversionError(f"the members need {expanded} bytes and {remaining} are left of your datafile storage "
                              "quota")


def apply_archive(job: Job, parsed: Parsed) -> dict[str, Any]:
    """Sections for the folders, datafiles for the members; returns the extracted_info."""
    folders = _folders(job, parsed)
    expanded = parsed.info.get("expanded_bytes")
    if not isinstance(expanded, int) or expanded < 0:
        raise ConversionError("the parser's answer is not valid (expanded_bytes)")
    if job.attempt == 1:  # a repeated attempt has stored (and counted) members already
        _check_quota(job, expanded)
    reserve_budget(job, nbytes=expanded, members=parsed.members)
    job.expect(parsed.members + len(folders), "extracting the archive")
    sections = _sections(job, folders)
    depth = int(job.doc.get("archive_depth") or 0)
    members = members_folder(parsed.folder) if parsed.members else None
    try:
        for op in read_plan(parsed.folder):
            if op["op"] != "member" or members is None:
                raise ConversionError("the parser's answer is not valid (an archive plan holds only members)")
            _store_member(job, op, members, sections, depth)
    finally:
        if members is not None:
            os.close(members)
    if job.ctx.store.datafiles.count_documents({"_id": job.datafile_id, **LIVE}) == 0:
        raise TaskGone(f"datafile_{job.datafile_id} was deleted")
    return job.extracted_info(members=parsed.members, folders=len(folders))
