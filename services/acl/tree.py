"""The resource tree and the first ACL of every resource, from the other services' events.

Consumed on the queue `acl.resources`; every handler is idempotent (upserts keyed by the typed
id, deletes kept as tombstones):

| routing key                                       | fields read                                  |
|---------------------------------------------------|----------------------------------------------|
| neo.objects.created                               | owner, objects: [{neo_id, parents, acl}]     |
| neo.object.created (one object, older producers)  | neo_id, parents ({type: neo_id}), acl, owner |
| neo.object.updated                                | neo_id, parents (when given)                 |
| neo.object.deleted                                | neo_id                                       |
| neo.objects.updated                               | parents ({neo_id: parents}, when links moved)|
| metadata.section.created                          | section_id, parent_section, acl, owner       |
| metadata.section.moved                            | section_id, to_parent                        |
| metadata.section.deleted                          | section_id                                   |
| files.datafile.created                            | datafile_id, section_id, acl, owner          |
| files.datafile.moved                              | datafile_id, section_id                      |
| files.datafile.deleted                            | datafile_id                                  |

A child created while its parent was being shared recursively may have copied the parent's old
ACL; when its `created` event arrives after that recursive change, it gets the parent's ACL.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from services.acl.resources import parent_ids
from services.acl.service import ACL_KEYS, AclContext, Plan, commit, remember, remember_many, settle
from services.acl.store import LIVE
from shared.access import IN_CHUNK

log = logging.getLogger(__name__)
QUEUE = "acl.resources"


def typed(kind: str, raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    text = str(raw)
    return f"{kind}_{int(text)}" if text.isdigit() else text


def _occurred_at(envelope: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(envelope["occurred_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return datetime.now(timezone.utc)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def created(ctx: AclContext, envelope: Mapping[str, Any], resource: str, parents: list[str]) -> None:
    payload = envelope.get("payload") or {}
    acl = dict(payload.get("acl") or {})
    acl.setdefault("owner", payload.get("owner"))
    at = _occurred_at(envelope)
    settle(ctx.store)  # a recursive change still being applied must be seen by the check below
    remember(ctx.store, resource, acl=acl, parents=parents, created_at=at)
    inherit_late_recursive_change(ctx, resource, parents, created_at=at)


def objects_created(ctx: AclContext, envelope: Mapping[str, Any]) -> None:
    """`neo.objects.created`: the objects of one create request, remembered in one write."""
    payload = envelope.get("payload") or {}
    at = _occurred_at(envelope)
    settle(ctx.store)
    created_here = []
    for obj in payload.get("objects") or []:
        acl = dict(obj.get("acl") or {})
        acl.setdefault("owner", payload.get("owner"))
        created_here.append((obj["neo_id"], acl, parent_ids(obj.get("parents"))))
    remember_many(ctx.store, created_here, created_at=at)
    shared = _shared_recursively(ctx, {p for _, _, parents in created_here for p in parents})
    for resource, _, parents in created_here:
        if shared.intersection(parents):
            inherit_late_recursive_change(ctx, resource, parents, created_at=at)


def _shared_recursively(ctx: AclContext, parents: set[str]) -> set[str]:
    """The `parents` ever given a recursive change: only their new children need the late check."""
    ordered, found = sorted(parents), set()
    for start in range(0, len(ordered), IN_CHUNK):
        query = {"_id": {"$in": ordered[start:start + IN_CHUNK]}, "recursive_version": {"$exists": True}}
        found.update(doc["_id"] for doc in ctx.store.records.find(query, {"_id": 1}))
    return found


def inherit_late_recursive_change(ctx: AclContext, resource: str, parents: list[str], *, created_at: datetime) -> None:
    if not parents:
        return
    child = ctx.store.records.find_one({"_id": resource, **LIVE})
    parent = ctx.store.records.find_one(
        {"_id": {"$in": parents}, "recursive_version": {"$gt": (child or {}).get("version", 0)}, **LIVE},
        sort=[("recursive_version", -1)],
    )
    if child is None or parent is None or parent.get("owner") != child.get("owner"):
        return
    if _aware(parent["recursive_at"]) <= created_at:
        return  # the child was created after the change, so it copied the new ACL
    plan = Plan()
    plan.add(child, {key: parent.get(key) for key in ACL_KEYS}, recursive=True)
    commit(ctx, plan, by=None, reason="inherited")
    log.info("%s took the ACL of %s, shared recursively while it was being created", resource, parent["_id"])


def set_parents(ctx: AclContext, resource: str, parents: list[str]) -> None:
    ctx.store.records.update_one({"_id": resource, **LIVE}, {"$set": {"parents": parents}})


def deleted(ctx: AclContext, resource: str) -> None:
    ctx.store.records.update_one({"_id": resource}, {"$set": {"deleted": True}}, upsert=True)


def handlers(ctx: AclContext) -> dict[str, Callable[[dict], None]]:
    def payload(envelope):
        return envelope.get("payload") or {}

    def neo_created(envelope):
        p = payload(envelope)
        created(ctx, envelope, p["neo_id"], parent_ids(p.get("parents")))

    def neo_updated(envelope):
        p = payload(envelope)
        if "parents" in p:
            set_parents(ctx, p["neo_id"], parent_ids(p.get("parents")))

    def neo_bulk_updated(envelope):
        for neo_id, parents in (payload(envelope).get("parents") or {}).items():
            set_parents(ctx, neo_id, parent_ids(parents))

    def section_created(envelope):
        p = payload(envelope)
        created(ctx, envelope, typed("section", p["section_id"]), parent_ids(typed("section", p.get("parent_section"))))

    def section_moved(envelope):
        p = payload(envelope)
        set_parents(ctx, typed("section", p["section_id"]), parent_ids(typed("section", p.get("to_parent"))))

    def datafile_created(envelope):
        p = payload(envelope)
        created(ctx, envelope, typed("datafile", p["datafile_id"]), parent_ids(typed("section", p.get("section_id"))))

    def datafile_moved(envelope):
        p = payload(envelope)
        set_parents(ctx, typed("datafile", p["datafile_id"]), parent_ids(typed("section", p.get("section_id"))))

    return {
        "neo.objects.created": lambda e: objects_created(ctx, e),
        "neo.object.created": neo_created,
        "neo.object.updated": neo_updated,
        "neo.object.deleted": lambda e: deleted(ctx, payload(e)["neo_id"]),
        "neo.objects.updated": neo_bulk_updated,
        "metadata.section.created": section_created,
        "metadata.section.moved": section_moved,
        "metadata.section.deleted": lambda e: deleted(ctx, typed("section", payload(e)["section_id"])),
        "files.datafile.created": datafile_created,
        "files.datafile.moved": datafile_moved,
        "files.datafile.deleted": lambda e: deleted(ctx, typed("datafile", payload(e)["datafile_id"])),
    }
