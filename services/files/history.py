"""The action history of datafiles (seed 001 "RESOURCE ACTION HISTORY"; shared/history.py).

Every write of the files service records one entry in the files db's `history` collection right
after the change it describes: uploaded, updated, moved, deleted, conversion_requested,
converted, conversion_failed, permissions_changed (and `created` for a file extracted from an
archive). An entry's id is the `event_id` of the event the same write published, so a repeated
record (a redelivered task or acl event) keeps one entry.

`GET /datafiles/<id>/history/` answers whoever may read the datafile (docs/files.md, History).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from pymongo.collection import Collection

from services.files.conversion.detect import CONVERTER_NAMES
from services.files.ids import datafile_number
from shared.errors import BadRequest
from shared.history import permission_entries, record_action, resource_history

SERVICE = "files"
HISTORY_PARAMS = ("start_date", "end_date", "max_results", "max-results", "offset", "range_start")
CONVERSION_SOURCE = "conversion"
# A description names at most this many created things; the result lists them all.
NAMED = 3


def datafile(datafile_id: int) -> str:
    return f"datafile_{datafile_id}"


def _section(section_id: int | None) -> str | None:
    return None if section_id is None else f"section_{section_id}"


def conversion_source(datafile_id: int) -> dict[str, str]:
    """The `source` of what the conversion of a datafile does."""
    return {"kind": CONVERSION_SOURCE, "resource": datafile(datafile_id)}


# --- uploads and changes ------------------------------------------------------------------------------

def record_uploaded(history: Collection, *, doc: Mapping[str, Any], actor: str, entry_id: str) -> None:
    size = int(doc.get("size") or 0)
    record_action(
        history, actor=actor, action="uploaded", resources=[datafile(doc["_id"])], entry_id=entry_id,
        description=f"uploaded {doc.get('title')!r} ({size:,} bytes, sha256 {doc.get('sha256')}) by {actor}",
        result={"size": size, "sha256": doc.get("sha256"), "section": _section(doc.get("section"))},
    )


def record_extracted(history: Collection, *, doc: Mapping[str, Any], actor: str | None, entry_id: str) -> None:
    """A file an archive's conversion extracted: created by that conversion, not uploaded."""
    archive = int(doc["parent_datafile"])
    record_action(
        history, actor=actor, action="created", resources=[datafile(doc["_id"])], entry_id=entry_id,
        description=f"extracted {doc.get('archive_path')!r} ({int(doc.get('size') or 0):,} bytes) "
                    f"by the conversion of datafile {archive}",
        source=conversion_source(archive),
        result={"size": doc.get("size"), "sha256": doc.get("sha256"), "section": _section(doc.get("section")),
                "parent_datafile": datafile(archive), "archive_path": doc.get("archive_path")},
    )


def record_updated(history: Collection, *, datafile_id: int, actor: str, fields: Iterable[str], entry_id: str) -> None:
    names = sorted(fields)
    record_action(
        history, actor=actor, action="updated", resources=[datafile(datafile_id)], entry_id=entry_id,
        description=f"changed {', '.join(names)} by {actor}", result={"fields": names},
    )


def record_moved(history: Collection, *, datafile_id: int, actor: str, from_section: int | None,
                 to_section: int | None, entry_id: str) -> None:
    if to_section is None:
        where = f"out of section {from_section}"
    elif from_section is None:
        where = f"into section {to_section}"
    else:
        where = f"from section {from_section} to section {to_section}"
    record_action(
        history, actor=actor, action="moved", resources=[datafile(datafile_id)], entry_id=entry_id,
        description=f"moved {where} by {actor}",
        result={"from": _section(from_section), "to": _section(to_section)},
    )


def record_deleted(history: Collection, *, datafile_id: int, actor: str, collaborators: list[Any],
                   entry_id: str) -> None:
    forced = f" (shared with {len(collaborators)} other users)" if collaborators else ""
    record_action(
        history, actor=actor, action="deleted", resources=[datafile(datafile_id)], entry_id=entry_id,
        description=f"deleted by {actor}{forced}", result={"collaborators": [str(c) for c in collaborators]},
    )


# --- conversions --------------------------------------------------------------------------------------

def record_conversion_requested(history: Collection, *, datafile_id: int, actor: str | None, task_id: str,
                                trigger: str, entry_id: str, source: Mapping[str, Any] | None = None) -> None:
    """`trigger`: "upload" (convert=1 on upload), "request" (`/convert/` or `?convert=1`) or "archive"
    (a member of an archive being converted). Which conversion type applies is decided by the task
    (from the content), so the converted / conversion_failed entry names it."""
    by = f" by {actor}" if actor else ""
    record_action(
        history, actor=actor, action="conversion_requested", resources=[datafile(datafile_id)], entry_id=entry_id,
        description=f"conversion requested{by} ({'on upload' if trigger == 'upload' else trigger})",
        source=source, result={"task_id": task_id, "trigger": trigger},
    )


def _conversion_result(info: Mapping[str, Any], conversion_type: int | None) -> dict[str, Any]:
    """{created: top-level NEO ids, objects: how many NEO objects, sections, datafiles, conversion_type}."""
    result: dict[str, Any] = {
        "created": list(info.get("blocks") or []),
        "objects": sum((info.get("objects") or {}).values()),
        "conversion_type": conversion_type,
        "converter": CONVERTER_NAMES.get(conversion_type),
    }
    for key, name in (("section_ids", "sections"), ("datafile_ids", "datafiles")):
        if info.get(key):
            result[name] = list(info[key])
    return result


def _named(ids: list[str], total: int, noun: str) -> str:
    """"block_3 and 57 more objects": the first few ids, then how many more of `total`."""
    shown = ", ".join(ids[:NAMED]) or f"{total} {noun}"
    more = total - min(len(ids), NAMED)
    return f"{shown} and {more} more {noun}" if ids and more > 0 else shown


def _converted_description(result: Mapping[str, Any]) -> str:
    parts = []
    if result["objects"]:
        parts.append(f"converted to NEO: {_named(result['created'], result['objects'], 'objects')}")
    if result.get("datafiles"):
        parts.append(f"extracted {len(result['datafiles'])} datafiles: "
                     f"{_named(result['datafiles'], len(result['datafiles']), 'datafiles')}")
    if result.get("sections"):
        verb = "into" if result.get("datafiles") else "imported into the metadata:"
        parts.append(f"{verb} {_named(result['sections'], len(result['sections']), 'sections')}")
    return "; ".join(parts) or "converted; nothing to create"


def record_converted(history: Collection, *, datafile_id: int, actor: str | None, task_id: str,
                     conversion_type: int | None, info: Mapping[str, Any] | None, entry_id: str) -> None:
    result = {**_conversion_result(info or {}, conversion_type), "task_id": task_id}
    record_action(
        history, actor=actor, action="converted", resources=[datafile(datafile_id)], entry_id=entry_id,
        description=_converted_description(result), source=conversion_source(datafile_id), result=result,
    )


def record_conversion_failed(history: Collection, *, datafile_id: int, actor: str | None, task_id: str, state: str,
                             reason: str, entry_id: str) -> None:
    what = "not convertible" if state == "non_convertible" else "conversion failed"
    record_action(
        history, actor=actor, action="conversion_failed", resources=[datafile(datafile_id)], entry_id=entry_id,
        description=f"{what}: {reason[:300]}", source=conversion_source(datafile_id),
        result={"state": state, "reason": reason, "task_id": task_id},
    )


# --- permissions (the acl service's changes, applied by the files worker) -------------------------------

def _occurred_at(envelope: Mapping[str, Any]) -> datetime | None:
    """When the acl service made the change (a late delivery still lands at the right moment)."""
    try:
        moment = datetime.fromisoformat(str(envelope.get("occurred_at")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def record_permissions_changed(history: Collection, *, datafiles: Collection, envelope: Mapping[str, Any]) -> int:
    """One entry per group of identical new permissions among the datafiles of an
    `acl.permissions.changed` event (shared/history.py `permission_entries`; entry ids
    `<event_id>:<n>`, numbered over all the datafiles' groups before anything is looked up, so a
    redelivery numbers them alike). Returns how many entries it wrote."""
    payload = envelope.get("payload") or {}
    changes = []
    for change in payload.get("changes") or []:
        number = datafile_number(change.get("resource"))
        if number is not None:  # not another service's resource
            changes.append({**change, "resource": datafile(number)})
    if not changes:
        return 0
    entries = permission_entries(changes, event_id=str(envelope.get("event_id")),
                                 by_username=payload.get("by_username"), reason=payload.get("reason"))
    # Only files that exist here: a change for a file deleted meanwhile is nothing to show.
    numbers = sorted({datafile_number(change["resource"]) for change in changes})
    present = {datafile(d["_id"]) for d in datafiles.find({"_id": {"$in": numbers}, "_tombstone": {"$ne": True}},
                                                          {"_id": 1})}
    at = _occurred_at(envelope)
    written = 0
    for entry in entries:
        entry["resources"] = [r for r in entry["resources"] if r in present]
        if entry["resources"]:
            record_action(history, **entry, at=at)
            written += 1
    return written


# --- reading ------------------------------------------------------------------------------------------

def answer(history: Collection, *, datafile_id: int, args: Mapping[str, str], logged_in_as: str | None) -> dict[str, Any]:
    """The body of `GET /datafiles/<id>/history/` (the caller's read access is checked before)."""
    unknown = [key for key in args if key not in HISTORY_PARAMS]
    if unknown:
        raise BadRequest(f"Unknown parameter {unknown[0]!r}; the parameters are {', '.join(HISTORY_PARAMS)}.",
                         message_type="invalid_parameter", details={"parameter": unknown[0]})
    return resource_history(history, resource=datafile(datafile_id), args=args, service=SERVICE,
                            logged_in_as=logged_in_as)
