"""Permissions in the neo service: the acl service's changes and the internal ACL lookup.

docs/permissions.md is the contract. The acl service owns every resource's ACL; the neo service
keeps the read model on its own documents (`safety_level`, `shared_with`, `readers`, `writers`,
`acl_version`) from `acl.permissions.changed` (queue `neo.acl`) and a copy of who counts whom as a
friend from `auth.friendship.*` (queue `neo.friendships`, shared/friends.py). The checks
themselves are shared/access.py's.
"""
from __future__ import annotations

from typing import Any

from pymongo.collection import Collection

from services.neo.ids import InvalidId, parse_typed
from services.neo.relations import parent_ids
from services.neo.schema import NEO_TYPES
from services.neo.store import LIVE, NeoStore
from shared.access import acl_of, apply_acl_changes
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


def apply_permission_changes(store: NeoStore, payload: dict[str, Any]) -> int:
    """Write the `changes` of one `acl.permissions.changed` payload; repeats and late ones change nothing."""
    return apply_acl_changes(payload.get("changes") or [], lambda resource: locate(store, resource))


def acl_handlers(store: NeoStore) -> dict[str, Any]:
    """The consumer handler table of queue `neo.acl`: handlers take the whole envelope."""
    def handle(envelope: dict) -> None:
        apply_permission_changes(store, envelope.get("payload") or {})

    return {PERMISSIONS_CHANGED: handle}


def consumers(db) -> list[ConsumerSpec]:
    """The neo worker's queues (services/neo/worker.py)."""
    return [
        ConsumerSpec(queue=ACL_QUEUE, handlers=acl_handlers(NeoStore(db))),
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
