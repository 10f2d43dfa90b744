"""Datafiles: upload, list, read, change, move, delete and queue conversions. Every check and write lives here."""
from __future__ import annotations

import logging
import os
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from services.files import events, history
from services.files.clients import ServiceDown
from services.files.context import FilesContext
from services.files.ids import InvalidId, parse_id, parse_optional_section, typed
from services.files.quota import UploadReservation, release_datafile_bytes
from services.files.store import HIDDEN, LIVE
from services.files.upload import FORM_MARGIN, StoredFile, receive
from shared.access import IN_CHUNK, PRIVATE, PUBLIC, acl_of, can_read, can_write, check_access, new_acl, read_filter
from shared.params import parse_flag as flag
from shared.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, ServiceUnavailable
from shared.events import envelope_for, outbox_fields, tombstone_update, with_outbox
from shared.identity import Identity

log = logging.getLogger(__name__)

MODEL = "datafiles.datafile"
# current_state: its name, and the number the historical API used (10 = converted, as in seed 000).
STATES = {"uploaded": 1, "queued": 2, "converting": 3, "converted": 10, "failed": 20, "non_convertible": 30}
ACTIVE_STATES = ("queued", "converting")
TEXT_FIELDS = ("title", "caption", "tags")
UPDATE_FIELDS = (*TEXT_FIELDS, "section", "section_id")
UPLOAD_FIELDS = ("section_id", "section", "convert", "caption", "tags", "title")
LIST_PARAMS = ("section_id", "visibility", "owner", "created_min", "created_max", "q", "max-results", "max_results",
               "offset", "range_start")
VISIBILITIES = ("all", "private", "public", "shared")
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def event(payload: Any) -> dict:
    return envelope_for(payload, producer=events.PRODUCER)




# --- reading ----------------------------------------------------------------------------------------

def path_id(raw: str) -> int:
    try:
        return parse_id(raw, "datafile")
    except InvalidId as exc:
        raise NotFound(f"No such datafile: {exc}.") from None


def find(ctx: FilesContext, datafile_id: int) -> dict[str, Any] | None:
    return ctx.store.datafiles.find_one({"_id": datafile_id, **LIVE}, HIDDEN)


def load(ctx: FilesContext, identity: Identity, datafile_id: int, *, need: str = "read") -> dict[str, Any]:
    """The live datafile if `identity` may `need` ("read", "write", "owner") it (docs/permissions.md):
    404 when there is none, 401 for an anonymous caller, 403 for a signed-in one."""
    return dict(check_access(find(ctx, datafile_id), identity, name=f"datafile_{datafile_id}", need=need))


READABLE_MAX_IDS = 10_000


def readable_datafiles(*, ctx: FilesContext, identity: Identity, body: Any) -> list[int]:
    """`POST /internal/datafiles/readable/` (the metadata service, for a section's files):
    which of `{"datafile_ids": [...]}` exist and `identity` may read, in the order given."""
    raw = body.get("datafile_ids") if isinstance(body, Mapping) else None
    if not isinstance(raw, list) or len(raw) > READABLE_MAX_IDS:
        raise BadRequest(f"Send {{\"datafile_ids\": [ids]}}, at most {READABLE_MAX_IDS} of them.",
                         message_type="invalid_fields")
    try:
        wanted = list(dict.fromkeys(parse_id(item, "datafile") for item in raw))
    except InvalidId as exc:
        raise BadRequest(f"`datafile_ids`: {exc}.", message_type="invalid_id") from None
    readable: set[int] = set()
    for start in range(0, len(wanted), IN_CHUNK):
        query = {"_id": {"$in": wanted[start:start + IN_CHUNK]}, **LIVE, **read_filter(identity)}
        readable.update(doc["_id"] for doc in ctx.store.datafiles.find(query, {"_id": 1}))
    return [i for i in wanted if i in readable]


def datafile_history(*, ctx: FilesContext, identity: Identity, raw_id: str, args: Mapping[str, str]) -> dict[str, Any]:
    """`GET /datafiles/<id>/history/`: whoever may read the datafile may read its history."""
    doc = load(ctx, identity, path_id(raw_id))
    return history.answer(ctx.store.history, datafile_id=doc["_id"], args=args, logged_in_as=identity.username)


def fields_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The `fields` of seed 000, plus size, sha256, section, owner and the conversion's progress."""
    state = doc.get("current_state", "uploaded")
    return {
        "id": typed("datafile", doc["_id"]),
        "title": doc.get("title"),
        "caption": doc.get("caption", ""),
        "tags": doc.get("tags", ""),
        "current_state": state,
        "current_state_code": STATES.get(state),
        "operations_log": doc.get("operations_log", ""),
        "operations": doc.get("operations", []),
        "last_task_id": doc.get("last_task_id"),
        "conversion_type": doc.get("conversion_type"),
        "detected_format": doc.get("detected_format"),
        "extracted_info": doc.get("extracted_info"),
        "progress": doc.get("progress"),
        "safety_level": doc.get("safety_level"),
        "shared_with": doc.get("shared_with") or {},
        "date_created": doc.get("date_created"),
        "last_modified": doc.get("last_modified"),
        "size": doc.get("size"),
        "sha256": doc.get("sha256"),
        "content_type": doc.get("content_type"),
        "section": typed("section", doc.get("section")),
        "owner": doc.get("author"),
        "parent_datafile": typed("datafile", doc.get("parent_datafile")),
        "archive_path": doc.get("archive_path"),
    }


def permalink(fields: Mapping[str, Any]) -> str:
    return f"/datafiles/{fields['id'].rsplit('_', 1)[1]}"


def _parse_date(raw: str, name: str) -> datetime:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(raw.strip(), fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise BadRequest(f"`{name}` must be a date like '2012-03-14 17:27:08' or '2012-03-14'.", message_type="invalid_parameter")


def _int_param(raw: str, name: str, *, minimum: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"`{name}` must be an integer.", message_type="invalid_parameter") from None
    if value < minimum:
        raise BadRequest(f"`{name}` must be at least {minimum}.", message_type="invalid_parameter")
    return value


def list_datafiles(*, ctx: FilesContext, identity: Identity, args: Iterable[tuple[str, str]]) -> tuple[list[dict], int, int]:
    """(page of documents, total, offset) of the datafiles the user may read, filtered, oldest first."""
    pairs: dict[str, str] = {}
    for key, value in args:
        if key not in LIST_PARAMS:
            raise BadRequest(f"Unknown parameter {key!r}; the parameters are {', '.join(LIST_PARAMS)}.",
                             message_type="invalid_parameter")
        pairs[key] = value
    raw_limit = pairs.get("max-results", pairs.get("max_results"))
    limit = ctx.limits.default_page if raw_limit in (None, "") else _int_param(raw_limit, "max-results", minimum=1)
    limit = min(limit, ctx.limits.max_page)
    raw_offset = pairs.get("offset", pairs.get("range_start"))
    offset = 0 if raw_offset in (None, "") else _int_param(raw_offset, "offset", minimum=0)
    clauses: list[dict[str, Any]] = [LIVE, read_filter(identity)]
    if pairs.get("section_id", "").strip():
        try:
            section = parse_optional_section(pairs["section_id"])
        except InvalidId as exc:
            raise BadRequest(f"`section_id`: {exc}.", message_type="invalid_id") from None
        clauses.append({"section": section})
    # Only what the caller may read: public files for an anonymous caller; also their own, those shared
    # with them and their friends' friendly ones when signed in (shared/access.py).
    visibility = pairs.get("visibility", "all").strip().lower() or "all"
    if visibility not in VISIBILITIES:
        raise BadRequest(f"`visibility` must be one of {', '.join(VISIBILITIES)}.", message_type="invalid_parameter")
    if visibility == "private":
        clauses.append({"owner": identity.user_id, "safety_level": PRIVATE, "readers": {"$size": 0}})
    elif visibility == "public":
        clauses.append({"safety_level": PUBLIC})
    elif visibility == "shared":
        clauses.append({"readers": identity.user_id, "owner": {"$ne": identity.user_id}})
    if pairs.get("owner", "").strip():
        owner = pairs["owner"].strip()
        clauses.append({"owner": int(owner)} if owner.isdigit() else {"author": owner})
    if pairs.get("created_min", "").strip():
        clauses.append({"date_created": {"$gte": _parse_date(pairs["created_min"], "created_min")}})
    if pairs.get("created_max", "").strip():
        clauses.append({"date_created": {"$lte": _parse_date(pairs["created_max"], "created_max")}})
    for word in pairs.get("q", "").split():
        pattern = {"$regex": re.escape(word[:200]), "$options": "i"}
        clauses.append({"$or": [{"title": pattern}, {"caption": pattern}, {"tags": pattern}]})
    if not identity.is_authenticated and visibility in ("private", "shared"):
        return [], 0, offset  # nothing is an anonymous caller's own, nothing is shared with them
    query = {"$and": clauses}
    total = ctx.store.datafiles.count_documents(query)
    docs = list(ctx.store.datafiles.find(query, HIDDEN).sort("_id", 1).skip(offset).limit(limit))
    return docs, total, offset


# --- sections ---------------------------------------------------------------------------------------

def resolve_section(ctx: FilesContext, identity: Identity, raw: Any, *, name: str) -> dict[str, Any] | None:
    """The section a file goes into (the caller must be able to write it), or None for no section."""
    try:
        section_id = parse_optional_section(raw)
    except InvalidId as exc:
        raise BadRequest(f"`{name}`: {exc}.", message_type="invalid_id") from None
    if section_id is None:
        return None
    try:
        section = ctx.metadata.section(identity, section_id)
    except ServiceDown as exc:
        raise ServiceUnavailable(f"Cannot check the section: {exc}.", headers={"Retry-After": "5"}) from None
    if section is None:
        raise NotFound(f"`{name}`: there is no section_{section_id}.", message_type="unknown_section")
    if not can_write(section, identity):
        if can_read(section, identity):
            raise Forbidden(f"`{name}`: you may read but not add files to section_{section_id}.")
        raise Forbidden(f"`{name}`: you may not use section_{section_id}.")
    return section


# --- upload -----------------------------------------------------------------------------------------

def new_document(
    *,
    datafile_id: int,
    identity: Identity,
    stored: StoredFile,
    title: str,
    caption: str = "",
    tags: str = "",
    section: Mapping[str, Any] | None,
    inherited: Mapping[str, Any] | None = None,
    parent_datafile: int | None = None,
    archive_path: str | None = None,
    archive_depth: int = 0,
) -> dict[str, Any]:
    """A new datafile: private, or with the ACL of its section (or of `inherited`).

    Its size counts against its owner's quota (`quota_bytes`, given back when it is deleted):
    reserve it first (quota.py `reserve_datafile_bytes`; an upload does it as the bytes arrive)."""
    when = now()
    # A collaborator's file in someone else's section stays visible to the section's owner (new_acl).
    acl = new_acl(owner=identity.user_id, owner_name=identity.username, inherited=section or inherited)
    return {
        "_id": datafile_id,
        "title": title,
        "caption": caption,
        "tags": tags,
        "section": section["section_id"] if section else None,
        "author": identity.username,
        "size": stored.size,
        "quota_bytes": stored.size,
        "sha256": stored.sha256,
        "content_type": stored.content_type,
        "date_created": when,
        "last_modified": when,
        "version": 1,
        "current_state": "uploaded",
        "operations": [],
        "operations_log": "",
        "last_task_id": None,
        "conversion_type": None,
        "detected_format": None,
        "extracted_info": None,
        "progress": None,
        "parent_datafile": parent_datafile,
        "archive_path": archive_path,
        "archive_depth": archive_depth,
        **acl,
    }


class _UploadPlace:
    """Where an upload goes: its section, named in the query string or in a form field sent before
    the file (checked before a byte is stored) or after it, and its new id."""

    def __init__(self, ctx: FilesContext, identity: Identity, args: Mapping[str, str]):
        self.ctx, self.identity = ctx, identity
        self.checked, self.section, self.datafile_id = False, None, None
        self.check_section(args)

    def check_section(self, fields: Mapping[str, str]) -> None:
        raw = fields.get("section_id", fields.get("section"))
        if not self.checked and raw is not None:
            self.section = resolve_section(self.ctx, self.identity, raw, name="section_id")
            self.checked = True

    def start_file(self, fields: Mapping[str, str], filename: str):
        self.check_section(fields)
        self.datafile_id = self.ctx.store.next_id()
        return self.ctx.store.path_of(self.datafile_id)


def upload_datafile(
    *,
    ctx: FilesContext,
    identity: Identity,
    stream,
    mimetype: str,
    boundary: str | None,
    content_length: int | None,
    args: Mapping[str, str],
) -> dict[str, Any]:
    """`POST /datafiles/`: stream the `raw_file` part into the new datafile's storage and record it.

    Before anything is read: the size limit and the uploader's quota against a declared length;
    before the file's first byte is written: the section (write access). The quota is reserved as
    the bytes arrive (quota.py), so a chunked upload stops at the first piece that does not fit.
    A refused or failed upload leaves no bytes and no reservation behind."""
    if mimetype != "multipart/form-data":
        raise BadRequest("Upload with multipart/form-data: the file in a `raw_file` part.", message_type="invalid_upload")
    limit = ctx.limits.max_upload_bytes
    if content_length is not None and content_length > limit + FORM_MARGIN:
        raise PayloadTooLarge(f"Files are limited to {limit} bytes.")
    reservation = UploadReservation(ctx, identity.user_id)
    if content_length is not None:
        reservation.refuse_declared(content_length - FORM_MARGIN)
    place = _UploadPlace(ctx, identity, args)
    try:
        result = receive(stream, boundary, start_file=place.start_file, max_bytes=limit,
                         max_field_bytes=ctx.limits.max_field_bytes, on_file_data=reservation.cover)
    except BaseException:
        reservation.cancel()
        raise
    try:
        place.check_section(result.fields)
        reservation.settle(result.file.size)
        return create_datafile(ctx=ctx, identity=identity, datafile_id=place.datafile_id, stored=result.file,
                               fields=result.fields, args=args, section=place.section)
    except BaseException:
        remove_bytes(ctx, place.datafile_id)
        reservation.cancel()
        raise


def _text(fields: Mapping[str, Any], name: str, default: str = "") -> str:
    value = fields.get(name, default)
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequest(f"`{name}` must be text.", message_type="invalid_fields", details={name: "text"})
    if len(value) > 10_000:
        raise BadRequest(f"`{name}` is limited to 10000 characters.", message_type="invalid_fields")
    return value


def create_datafile(
    *,
    ctx: FilesContext,
    identity: Identity,
    datafile_id: int,
    stored: StoredFile,
    fields: Mapping[str, str],
    args: Mapping[str, str],
    section: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Record an uploaded file (its bytes are at `stored.path`); queue its conversion unless convert=0."""
    unknown = [k for k in fields if k not in UPLOAD_FIELDS]
    if unknown:
        raise BadRequest(f"Unknown field {unknown[0]!r}; the upload takes raw_file, {', '.join(UPLOAD_FIELDS)}.",
                         message_type="invalid_fields")
    convert = flag(fields.get("convert", args.get("convert")), "convert", True)
    doc = new_document(
        datafile_id=datafile_id, identity=identity, stored=stored,
        title=_text(fields, "title", stored.filename) or stored.filename,
        caption=_text(fields, "caption"), tags=_text(fields, "tags"), section=section,
    )
    envelopes = [event(events.DatafileCreated(datafile_id=datafile_id, owner=identity.user_id, section_id=doc["section"],
                                              title=doc["title"], size=doc["size"], sha256=doc["sha256"],
                                              acl=acl_of(doc)))]
    if convert:
        task = _task(identity)
        doc.update(_queued_fields(task, identity, when=doc["date_created"]))
        envelopes.append(_requested(task, datafile_id, identity))
    ctx.store.datafiles.insert_one({**doc, **outbox_fields(*envelopes)})
    history.record_uploaded(ctx.store.history, doc=doc, actor=identity.username, entry_id=envelopes[0]["event_id"])
    if convert:
        history.record_conversion_requested(ctx.store.history, datafile_id=datafile_id, actor=identity.username,
                                            task_id=task, trigger="upload", entry_id=envelopes[1]["event_id"])
    return doc


def _task(identity: Identity) -> str:
    return str(uuid.uuid4())


def _queued_fields(task_id: str, identity: Identity, *, when: datetime) -> dict[str, Any]:
    return {
        "current_state": "queued",
        "last_task_id": task_id,
        "progress": None,
        "conversion": {"task_id": task_id, "attempts": 0, "requested_at": when,
                       "user_id": identity.user_id, "username": identity.username},
    }


def _requested(task_id: str, datafile_id: int, identity: Identity) -> dict:
    return event(events.ConversionRequested(task_id=task_id, datafile_id=datafile_id, user_id=identity.user_id,
                                            username=identity.username))


# --- conversion requests ----------------------------------------------------------------------------

def request_conversion(*, ctx: FilesContext, identity: Identity, raw_id: str) -> dict[str, Any]:
    """Queue a conversion task (or return the one already queued or running); answers at once.

    Whoever may read the datafile sees the task already queued or running (its status); queuing a
    new one needs write access (401 anonymous, 403 signed in)."""
    doc = load(ctx, identity, path_id(raw_id))
    if doc.get("current_state") in ACTIVE_STATES:
        return doc
    check_access(doc, identity, name=f"datafile_{doc['_id']}", need="write")
    if doc.get("current_state") == "converted":
        raise Conflict(f"datafile_{doc['_id']} is converted already; its data is listed in `extracted_info`.",
                       message_type="already_converted", details={"extracted_info": doc.get("extracted_info")})
    task = _task(identity)
    when = now()
    requested = _requested(task, doc["_id"], identity)
    result = ctx.store.datafiles.update_one(
        {"_id": doc["_id"], "current_state": {"$nin": list(ACTIVE_STATES)}, **LIVE},
        with_outbox({"$set": {**_queued_fields(task, identity, when=when), "last_modified": when},
                     "$inc": {"version": 1}}, requested),
    )
    if result.modified_count != 1:
        current = find(ctx, doc["_id"])
        if current is None:
            raise NotFound(f"There is no datafile_{doc['_id']}.")
        return current
    history.record_conversion_requested(ctx.store.history, datafile_id=doc["_id"], actor=identity.username,
                                        task_id=task, trigger="request", entry_id=requested["event_id"])
    return find(ctx, doc["_id"]) or doc


# --- changes ----------------------------------------------------------------------------------------

def update_datafile(*, ctx: FilesContext, identity: Identity, raw_id: str, body: Any) -> dict[str, Any]:
    """Change caption, tags or title; a new `section` moves the file there (its ACL stays as it is)."""
    if not isinstance(body, Mapping):
        raise BadRequest("The body must be a JSON object (or form fields).", message_type="invalid_json")
    unknown = [k for k in body if k not in UPDATE_FIELDS]
    if unknown:
        raise BadRequest(f"Unknown field {unknown[0]!r}; you may change {', '.join(UPDATE_FIELDS)}.",
                         message_type="invalid_fields", details={"unknown": unknown})
    doc = load(ctx, identity, path_id(raw_id), need="write")
    values = {name: _text(body, name) for name in TEXT_FIELDS if name in body}
    if "title" in values and not values["title"].strip():
        raise BadRequest("`title` cannot be empty.", message_type="invalid_fields")
    values = {k: v for k, v in values.items() if doc.get(k) != v}
    moved = None
    section_key = "section" if "section" in body else ("section_id" if "section_id" in body else None)
    if section_key is not None:
        section = resolve_section(ctx, identity, body[section_key], name=section_key)
        target = section["section_id"] if section else None
        if target != doc.get("section"):
            values["section"] = target
            moved = event(events.DatafileMoved(datafile_id=doc["_id"], owner=doc["owner"], section_id=target,
                                               from_section=doc.get("section")))
    if not values:
        return doc
    updated = event(events.DatafileUpdated(datafile_id=doc["_id"], owner=doc["owner"],
                                           section_id=values.get("section", doc.get("section")),
                                           fields=sorted(values)))
    envelopes = [moved, updated] if moved else [updated]
    result = ctx.store.datafiles.update_one(
        {"_id": doc["_id"], "version": doc.get("version", 1), **LIVE},
        with_outbox({"$set": {**values, "last_modified": now()}, "$inc": {"version": 1}}, *envelopes),
    )
    if result.modified_count != 1:
        raise PreconditionFailed(f"datafile_{doc['_id']} was changed by another request at the same time; try again.")
    _record_update(ctx, identity, doc, values, moved=moved, updated=updated)
    return load(ctx, identity, doc["_id"])


def _record_update(ctx: FilesContext, identity: Identity, doc: Mapping[str, Any], values: Mapping[str, Any], *,
                   moved: dict | None, updated: dict) -> None:
    """A move and a change of text fields are two actions (one request may do both)."""
    if moved is not None:
        history.record_moved(ctx.store.history, datafile_id=doc["_id"], actor=identity.username,
                             from_section=doc.get("section"), to_section=values["section"], entry_id=moved["event_id"])
    changed = [name for name in values if name != "section"]
    if changed:
        history.record_updated(ctx.store.history, datafile_id=doc["_id"], actor=identity.username, fields=changed,
                               entry_id=updated["event_id"])


def collaborators(doc: Mapping[str, Any]) -> list[Any]:
    others = {u for u in (doc.get("readers") or []) + (doc.get("writers") or []) if u != doc.get("owner")}
    return sorted(others | set((doc.get("shared_with") or {}).keys()), key=str)


def delete_datafile(*, ctx: FilesContext, identity: Identity, raw_id: str, force: bool) -> dict[str, Any]:
    """Owner only; refused (409) while other users have access unless `force`. Bytes go after the
    document, then the owner's quota gets back what the datafile counted."""
    doc = load(ctx, identity, path_id(raw_id), need="owner")
    others = collaborators(doc)
    if others and not force:
        raise Conflict(f"Other users have access to datafile_{doc['_id']}; delete with force=true to delete anyway.",
                       message_type="has_collaborators", details={"collaborators": others})
    deleted = event(events.DatafileDeleted(datafile_id=doc["_id"], owner=doc["owner"], section_id=doc.get("section")))
    result = ctx.store.datafiles.update_one({"_id": doc["_id"], **LIVE}, tombstone_update(deleted))
    if result.modified_count != 1:
        raise NotFound(f"There is no datafile_{doc['_id']}.")
    history.record_deleted(ctx.store.history, datafile_id=doc["_id"], actor=identity.username, collaborators=others,
                           entry_id=deleted["event_id"])
    remove_bytes(ctx, doc["_id"])
    release_datafile_bytes(ctx, doc["owner"], int(doc.get("quota_bytes") or 0))
    return doc


def remove_bytes(ctx: FilesContext, datafile_id: int) -> None:
    try:
        os.unlink(ctx.store.path_of(datafile_id))
    except FileNotFoundError:
        pass
