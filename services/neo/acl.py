"""Permissions in the neo service: the acl service's changes and the internal ACL lookup.

docs/permissions.md is the contract. The acl service owns every resource's ACL; the neo service
keeps the read model on its own documents (`safety_level`, `shared_with`, `readers`, `writers`,
`acl_version`) from `acl.permissions.changed` (queue `neo.acl`) and a copy of who counts whom as a
friend from `auth.friendship.*` (queue `neo.friendships`, shared/friends.py). The checks
themselves are shared/access.py's. Each applied change is recorded in the action history
(services/neo/history.py): one `permissions_changed` entry per group of changes that set the same
ACL, with ids `{event_id}:{n}` so that a redelivered event records nothing twice.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from pymongo.collection import Collection

from services.neo import history
from services.neo.ids import InvalidId, neo_id, parse_typed
from services.neo.relations import parent_ids
from services.neo.schema import NEO_TYPES
from services.neo.store import LIVE, NeoStore
from shared.access import IN_CHUNK, acl_of, apply_acl_changes, newer_than
from shared.errors import NotFound
from shared.events import ConsumerSpec
from shared.friends import friendship_handlers

ACL_QUEUE = "neo.acl"
FRIENDSHIPS_QUEUE = "neo.friendships"
PERMISSIONS_CHANGED = "acl.permissions.changed"


def _typed(resource: object) -> tuple[str, int] | None:
    """(NEO type, id) of a typed id this service owns (`segment_3`); None for any other."""
    try:
        return parse_typed(resource)
    except InvalidId:
        return None


def locate(store: NeoStore, resource: str) -> list[tuple[Collection, dict[str, Any]]]:
    """Where a resource's document lives: `segment_3` -> [(neo_segment, {"_id": 3})]; [] for ids of
    other services (section_*, datafile_*) or anything that is not a NEO id."""
    typed = _typed(resource)
    if typed is None:
        return []
    type_name, object_id = typed
    return [(store.collection(type_name), {"_id": object_id})]


def _owned(changes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in changes if _typed(c.get("resource")) is not None]


def pending(store: NeoStore, changes: Iterable[Mapping[str, Any]]) -> set[str]:
    """The live objects among `changes` that the changes would still change (not holding that
    `acl_version` or a newer one): read before applying, so that only changes that took effect
    are recorded, and a repeated or late event records nothing."""
    wanted: dict[tuple[str, int], list[int]] = defaultdict(list)
    for change in changes:
        type_name, object_id = _typed(change["resource"])
        wanted[(type_name, int(change["version"]))].append(object_id)
    found: set[str] = set()
    for (type_name, version), ids in wanted.items():
        collection = store.collection(type_name)
        for start in range(0, len(ids), IN_CHUNK):
            query = {"_id": {"$in": ids[start:start + IN_CHUNK]}, **LIVE, **newer_than(version)}
            found.update(neo_id(type_name, doc["_id"]) for doc in collection.find(query, {"_id": 1}))
    return found


def apply_permission_changes(store: NeoStore, payload: dict[str, Any], *, event_id: str | None = None) -> int:
    """Write the `changes` of one `acl.permissions.changed` payload; repeats and late ones change
    nothing. With the event's id, the changes that took effect are recorded in the history too."""
    changes = payload.get("changes") or []
    owned = _owned(changes)
    applying = pending(store, owned) if event_id and owned else set()
    applied = apply_acl_changes(changes, lambda resource: locate(store, resource))
    if applying:
        history.record_permission_changes(store.history, event_id=event_id, payload=payload, owned=owned,
                                          applied=applying)
    return applied


def acl_handlers(store: NeoStore, *, record_history: bool = False) -> dict[str, Any]:
    """The consumer handler table of queue `neo.acl`: handlers take the whole envelope. The worker's
    (`consumers`) also record the history; without `record_history` only the read model is written
    (one bulk write per collection, nothing else read or written)."""
    def handle(envelope: dict) -> None:
        event_id = envelope.get("event_id") if record_history else None
        apply_permission_changes(store, envelope.get("payload") or {}, event_id=event_id)

    return {PERMISSIONS_CHANGED: handle}


def consumers(db) -> list[ConsumerSpec]:
    """The neo worker's queues (services/neo/worker.py)."""
    return [
        ConsumerSpec(queue=ACL_QUEUE, handlers=acl_handlers(NeoStore(db), record_history=True)),
        ConsumerSpec(queue=FRIENDSHIPS_QUEUE, handlers=friendship_handlers(db)),
    ]


def acl_record(store: NeoStore, resource: str) -> dict[str, Any]:
    """What `GET /internal/acl/<resource>/` answers: the object's ACL and its parents; 404 when the
    object does not exist (or is deleted) or the id is not a NEO one."""
    typed = _typed(resource)
    if typed is None:
        raise NotFound(f"{resource!r} is not a NEO object id.")
    type_name, object_id = typed
    neo_type = NEO_TYPES[type_name]
    projection = {"owner": 1, "safety_level": 1, "shared_with": 1, "readers": 1, "writers": 1,
                  "acl_version": 1, **{p: 1 for p in neo_type.parents}}
    doc = store.collection(neo_type).find_one({"_id": object_id, **LIVE}, projection)
    name = f"{type_name}_{object_id}"
    if doc is None:
        raise NotFound(f"There is no {name}.")
    return {
        "resource": name,
        **acl_of(doc),
        "acl_version": int(doc.get("acl_version", 0)),
        "parents": list(parent_ids(neo_type, doc).values()),
    }
