"""Action history (seed 001 "RESOURCE ACTION HISTORY"): who did what, when, from where, with what result.

Each service keeps the history of its own resources in its own `history` collection. One entry
records one action and lists every resource it touched (typed ids such as `analogsignal_12`,
`section_3`, `datafile_9`), so a bulk update of 10,000 objects costs one insert, and
`GET /<type>/<id>/history/` is one indexed query on `resources`.

An entry:

    _id          a string; the id of the event the action published when there is one, so that
                 recording the same action twice (a retried request, a redelivered event) keeps one
    at           when it happened (UTC)
    actor        the acting username, or None for the system
    action       a past-tense verb: created, updated, moved, deleted, permissions_changed,
                 uploaded, conversion_requested, converted, conversion_failed, labelled, unlabelled, ...
    resources    the typed ids it touched
    description  one sentence for people ("created by the conversion of datafile 9")
    source       where it came from: {"kind": "request"} or {"kind": "conversion", "resource": "datafile_9"} ...
    result       what came out of it: {"created": [...]} / {"fields": [...]} / {"shared_with": {...}} ...

The wire form (`wire_entry`) is what both the per-resource and the per-user endpoints return. A
service writes its entry right after the state change it describes (documented gap: a crash between
the two writes loses the entry, never the change).
"""
from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from shared.errors import BadRequest
from shared.envelope import format_datetime

HISTORY_COLLECTION = "history"
# A service acting for a job of its own (the files worker converting datafile 9) tells the service
# it calls why, in this header: "conversion:datafile_9". The gateway drops every x-gnode-* header
# of a client request, so only services can set it.
SOURCE_HEADER = "X-Gnode-Source"
SOURCE_KINDS = {"conversion": "the conversion of", "odml_import": "the odML import of", "export": "the export of"}
# A user-history answer lists at most this many of an entry's resources (a conversion may touch thousands).
RESOURCES_SHOWN = 100
DEFAULT_PAGE = 100
MAX_PAGE = 1000
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M:%S")
_DAY_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")


def ensure_history_indexes(history: Collection) -> None:
    history.create_index([("resources", ASCENDING), ("at", DESCENDING)])
    history.create_index([("actor", ASCENDING), ("at", DESCENDING)])


def now() -> datetime:
    return datetime.now(timezone.utc)


def record_action(
    history: Collection,
    *,
    actor: str | None,
    action: str,
    resources: Iterable[str],
    description: str,
    source: Mapping[str, Any] | None = None,
    result: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    entry_id: str | None = None,
) -> None:
    """Record one action; a second call with the same `entry_id` is a no-op."""
    touched = list(dict.fromkeys(resources))
    if not touched:
        return
    entry = {
        "_id": entry_id or uuid.uuid4().hex,
        "at": at or now(),
        "actor": actor,
        "action": action,
        "resources": touched,
        "description": description,
        "source": dict(source or {"kind": "request"}),
        "result": dict(result or {}),
    }
    try:
        history.insert_one(entry)
    except DuplicateKeyError:
        pass  # already recorded: the same request retried or the same event delivered again


SAFETY_NAMES = {1: "public", 2: "friendly", 3: "private"}
SHARE_NAMES = {1: "read", 2: "read and write"}


def _share_level(level: Any) -> Any:
    """A share level as an int when it is one ("1" -> 1); anything else as it came."""
    try:
        return int(level)
    except (TypeError, ValueError):
        return level


def permission_entries(
    changes: Iterable[Mapping[str, Any]], *, event_id: str, by_username: str | None, reason: Any
) -> list[dict[str, Any]]:
    """The `record_action` keyword arguments of the `permissions_changed` entries of one
    `acl.permissions.changed` event: one per group of `changes` with identical (safety_level,
    shared_with), in first-seen order, with the ids f"{event_id}:{n}".

    `changes` are the calling service's own (each with `resource`, `safety_level`, `shared_with`).
    Every group is numbered, so a redelivered event gives the same ids; a service that records only
    some resources filters each entry's `resources` afterwards and skips the emptied ones.

        description  "permissions changed by ada: friendly, shared with bob (read)", or
                     "permissions changed by the system (inherited): public" (the reason in
                     parentheses unless it is "acl")
        source       {"kind": "acl", "reason": reason}
        result       {"safety_level": 2, "safety": "friendly", "shared_with": {"bob": 1}, "reason": reason}
    """
    reason = reason if isinstance(reason, str) and reason else "acl"
    actor = by_username if isinstance(by_username, str) and by_username else None
    why = f" ({reason})" if reason != "acl" else ""
    groups: dict[tuple[Any, ...], tuple[int, dict[str, Any], list[str]]] = {}
    for change in changes:
        level = int(change["safety_level"])
        shared = {str(user): _share_level(grant)
                  for user, grant in sorted(dict(change.get("shared_with") or {}).items(), key=lambda s: str(s[0]))}
        key = (level, tuple((user, repr(grant)) for user, grant in shared.items()))
        groups.setdefault(key, (level, shared, []))[2].append(str(change["resource"]))
    entries = []
    for number, (level, shared, resources) in enumerate(groups.values()):
        text = SAFETY_NAMES.get(level, f"safety level {level}")
        if shared:
            text += ", shared with " + ", ".join(
                f"{user} ({SHARE_NAMES.get(grant, grant) if isinstance(grant, int) else grant})"
                for user, grant in shared.items())
        entries.append({
            "entry_id": f"{event_id}:{number}",
            "actor": actor,
            "action": "permissions_changed",
            "resources": resources,
            "description": f"permissions changed by {actor or 'the system'}{why}: {text}",
            "source": {"kind": "acl", "reason": reason},
            "result": {"safety_level": level, "safety": SAFETY_NAMES.get(level, str(level)),
                       "shared_with": dict(shared), "reason": reason},
        })
    return entries


def source_header(kind: str, resource: str) -> dict[str, str]:
    """The header a calling service sends: `{SOURCE_HEADER: "conversion:datafile_9"}`."""
    return {SOURCE_HEADER: f"{kind}:{resource}"}


def source_from_header(value: str | None) -> dict[str, str]:
    """The entry `source` for a request: {"kind": "request"}, or {"kind": "conversion", "resource": "datafile_9"}."""
    kind, _, resource = (value or "").partition(":")
    if kind not in SOURCE_KINDS or not resource:
        return {"kind": "request"}
    return {"kind": kind, "resource": resource}


def describe_source(source: Mapping[str, Any]) -> str:
    """"the conversion of datafile 9" for a conversion source, "" for a plain request."""
    prefix = SOURCE_KINDS.get(source.get("kind", ""))
    if not prefix:
        return ""
    return f"{prefix} {str(source.get('resource', '')).replace('_', ' ')}"


def _parse_moment(raw: str, name: str, *, end: bool) -> datetime:
    text = raw.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    for fmt in _DAY_FORMATS:
        try:
            day = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        # A bare day as end_date includes that whole day.
        start = datetime.combine(day, time.min, tzinfo=timezone.utc)
        return start + timedelta(days=1) - timedelta(microseconds=1) if end else start
    raise BadRequest(
        f"`{name}` must be a date like '2012-03-14', '2012-03-14 17:27:08' or '14/03/2012'; got {raw!r}.",
        message_type="invalid_parameter",
        details={"parameter": name},
    )


def date_range(args: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """(start, end) from `start_date` / `end_date`, both optional; a 400 when unreadable or reversed."""
    start = _parse_moment(args["start_date"], "start_date", end=False) if args.get("start_date") else None
    end = _parse_moment(args["end_date"], "end_date", end=True) if args.get("end_date") else None
    if start and end and start > end:
        raise BadRequest("`start_date` is after `end_date`.", message_type="invalid_parameter")
    return start, end


def _query(*, resource: str | None, actor: str | None, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if resource is not None:
        query["resources"] = resource
    if actor is not None:
        query["actor"] = actor
    when: dict[str, Any] = {}
    if start is not None:
        when["$gte"] = start
    if end is not None:
        when["$lte"] = end
    if when:
        query["at"] = when
    return query


def find_entries(
    history: Collection,
    *,
    resource: str | None = None,
    actor: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    offset: int = 0,
    limit: int = DEFAULT_PAGE,
) -> tuple[int, list[dict[str, Any]]]:
    """(total, page) of raw entries, oldest first, for one resource or one actor within the dates."""
    query = _query(resource=resource, actor=actor, start=start, end=end)
    total = history.count_documents(query)
    cursor = history.find(query).sort([("at", ASCENDING), ("_id", ASCENDING)]).skip(offset).limit(limit)
    return total, list(cursor)


def wire_entry(entry: Mapping[str, Any], *, service: str) -> dict[str, Any]:
    resources = list(entry.get("resources") or [])
    return {
        "id": entry["_id"],
        "date": format_datetime(_aware(entry["at"])),
        "timestamp": _aware(entry["at"]).isoformat(),
        "user": entry.get("actor"),
        "action": entry["action"],
        "description": entry["description"],
        "source": entry.get("source") or {"kind": "request"},
        "result": entry.get("result") or {},
        "resources": resources[:RESOURCES_SHOWN],
        "resources_total": len(resources),
        "service": service,
    }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def paging(args: Mapping[str, str]) -> tuple[int, int]:
    """(offset, limit) of a history page; a 400 outside 0.. and 1..MAX_PAGE."""
    from shared.params import parse_paging

    limit, offset = parse_paging(args, default_page=DEFAULT_PAGE, max_page=MAX_PAGE)
    return offset, limit


def history_body(
    *, subject: str, total: int, entries: list[dict[str, Any]], offset: int, logged_in_as: str | None
) -> dict[str, Any]:
    """The history envelope: the subject (resource or user), its entries oldest first, and paging."""
    return {
        "message": f"Here is the action history of {subject}.",
        "message_type": "history",
        "logged_in_as": logged_in_as,
        "subject": subject,
        "history": entries,
        "object_total": total,
        "selected_range": [offset, offset + len(entries) - 1] if entries else None,
    }


def register_internal_history(app, *, service: str) -> None:
    """`GET /internal/history/?actor=<username>&start_date=&end_date=&limit=` for the auth service's
    user history: this service's entries by that user, oldest first (internal, never routed)."""
    from flask import request

    from shared.app import service_db
    from shared.envelope import json_response

    def internal_history():
        args = request.args
        actor = args.get("actor", "").strip()
        if not actor:
            raise BadRequest("`actor` (a username) is required.", message_type="invalid_parameter")
        start, end = date_range(args)
        offset, limit = paging(args)
        total, entries = find_entries(
            service_db(app)[HISTORY_COLLECTION], actor=actor, start=start, end=end, offset=offset, limit=limit
        )
        return json_response({"total": total, "history": [wire_entry(e, service=service) for e in entries]})

    app.add_url_rule("/internal/history/", "internal_history", internal_history, methods=["GET"])


def resource_history(
    history: Collection, *, resource: str, args: Mapping[str, str], service: str, logged_in_as: str | None
) -> dict[str, Any]:
    """The answer of `GET /<type>/<id>/history/` (the caller's read access is checked before)."""
    start, end = date_range(args)
    offset, limit = paging(args)
    total, entries = find_entries(history, resource=resource, start=start, end=end, offset=offset, limit=limit)
    return history_body(
        subject=resource,
        total=total,
        entries=[wire_entry(entry, service=service) for entry in entries],
        offset=offset,
        logged_in_as=logged_in_as,
    )
