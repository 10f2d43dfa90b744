"""The acl service's operations: read and change the ACL of resources, alone, recursively, in bulk.

Every change goes through `commit`: the new ACLs are written as one batch document carrying the
`acl.permissions.changed` events in its outbox (one write), then applied to the records, each
guarded by its version. The resource services apply the same events to their read models.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from services.acl import events
from services.acl.clients import ResourceDirectory, UserDirectory
from services.acl.resources import parse_resource, service_of
from services.acl.rules import AclRequest, Grant, acl_fields, without_user
from services.acl.store import LIVE, AclStore
from shared.access import IN_CHUNK, check_access
from shared.errors import BadRequest, Conflict, NotFound
from shared.events import envelope_for, outbox_fields
from shared.identity import Identity

ACL_KEYS = ("safety_level", "shared_with", "readers", "writers")
SYNC_APPLY_LIMIT = 50  # changes applied to the records before the answer; more go behind it
SETTLE_DELAY_SECONDS = 2.0


@dataclass(frozen=True)
class Limits:
    changes_per_batch: int = 5000
    max_resources: int = 200_000  # resources one request may change (recursion included)


@dataclass(frozen=True)
class AclContext:
    store: AclStore
    users: UserDirectory
    resources: ResourceDirectory
    limits: Limits = field(default_factory=Limits)


def now() -> datetime:
    return datetime.now(timezone.utc)


def acl_view(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"safety_level": record["safety_level"], "shared_with": dict(record.get("shared_with") or {})}


# --- records --------------------------------------------------------------------------------------

DUPLICATE_KEY = 11000


def _record_fields(acl: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "owner": acl.get("owner"),
        "safety_level": int(acl.get("safety_level") or 3),
        "shared_with": dict(acl.get("shared_with") or {}),
        "readers": [int(u) for u in acl.get("readers") or []],
        "writers": [int(u) for u in acl.get("writers") or []],
    }


def _remembered(resource: str, acl: Mapping[str, Any], parents: list[str], version: int,
                created_at: datetime | None) -> UpdateOne:
    return UpdateOne(
        {"_id": resource, **LIVE},
        {"$set": {"parents": parents, "service": service_of(resource)},
         "$setOnInsert": {**_record_fields(acl), "version": int(version), "created_at": created_at or now()}},
        upsert=True,
    )


def remember(store: AclStore, resource: str, *, acl: Mapping[str, Any], parents: list[str],
             version: int = 0, created_at: datetime | None = None) -> None:
    """Record a resource the first time this service hears of it (never over a newer record)."""
    remember_many(store, [(resource, acl, parents)], created_at=created_at, version=version)


def remember_many(store: AclStore, resources: list[tuple[str, Mapping[str, Any], list[str]]], *,
                  created_at: datetime | None = None, version: int = 0) -> None:
    """`remember` for many (resource, acl, parents) in one write."""
    if not resources:
        return
    try:
        store.records.bulk_write([_remembered(r, acl, parents, version, created_at) for r, acl, parents in resources],
                                 ordered=False)
    except BulkWriteError as exc:
        # A duplicate key is a resource deleted already: a late `created` must not bring it back.
        others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others:
            raise


def load_record(ctx: AclContext, resource: str) -> dict[str, Any] | None:
    """The live record of `resource`, asking its owning service when this service has none yet."""
    settle(ctx.store)
    record = ctx.store.records.find_one({"_id": resource})
    if record is not None:
        return None if record.get("deleted") else record
    fetched = ctx.resources.fetch(service_of(resource), resource)
    if fetched is None:
        return None
    remember(ctx.store, resource, acl=fetched, parents=list(fetched.get("parents") or []),
             version=int(fetched.get("acl_version") or 0))
    return ctx.store.records.find_one({"_id": resource, **LIVE})


def _owned_record(ctx: AclContext, identity: Identity, resource: str) -> dict[str, Any]:
    return dict(check_access(load_record(ctx, resource), identity, name=resource, need="owner"))


def descendants(ctx: AclContext, root: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records below `root` in the resource tree that have the same owner (breadth first)."""
    found: list[dict[str, Any]] = []
    seen = {root["_id"]}
    frontier = [root["_id"]]
    projection = {"owner": 1, **{key: 1 for key in ACL_KEYS}}
    while frontier:
        level = {c["_id"]: c for start in range(0, len(frontier), IN_CHUNK)
                 for c in ctx.store.records.find({"parents": {"$in": frontier[start:start + IN_CHUNK]}, **LIVE},
                                                 projection)}
        children = [c for rid, c in level.items() if rid not in seen]
        seen.update(c["_id"] for c in children)
        found.extend(c for c in children if c.get("owner") == root.get("owner"))
        if len(found) > ctx.limits.max_resources:
            raise Conflict(f"{root['_id']} has more than {ctx.limits.max_resources} descendants; "
                           "share parts of it separately.", message_type="too_many_resources")
        frontier = [c["_id"] for c in children]
    return found


# --- users ----------------------------------------------------------------------------------------

def resolve_grants(ctx: AclContext, shared_with: Mapping[str, int], *, owner_id: int) -> list[Grant]:
    if not shared_with:
        return []
    users = ctx.users.by_username(shared_with)
    unknown = sorted(name for name in shared_with if name.lower() not in users)
    if unknown:
        raise BadRequest(f"No such user(s): {', '.join(unknown)}.", message_type="unknown_user",
                         details={"usernames": unknown})
    grants = [Grant(user_id=int(users[name.lower()]["id"]), username=users[name.lower()]["username"], level=level)
              for name, level in shared_with.items()]
    if any(g.user_id == owner_id for g in grants):
        raise BadRequest("The owner cannot be in their own `shared_with`.", message_type="invalid_value",
                         details={"field": "shared_with"})
    return grants


def changed_acl(record: Mapping[str, Any], request: AclRequest, grants: list[Grant] | None) -> dict[str, Any]:
    """`record`'s ACL after `request` (grants: the resolved `shared_with`, None to keep the shares)."""
    level = request.safety_level if request.safety_level is not None else record["safety_level"]
    if grants is None:
        return {"safety_level": level, **{k: record.get(k) or ({} if k == "shared_with" else []) for k in ACL_KEYS[1:]}}
    return acl_fields(safety_level=level, grants=grants)


# --- the plan of one request and its commit -------------------------------------------------------

@dataclass
class Plan:
    """The ACL each resource gets, in request order; a later entry for a resource wins."""

    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    granted: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: Mapping[str, Any], acl: Mapping[str, Any], *, recursive: bool = False) -> None:
        self.changes.pop(record["_id"], None)
        self.changes[record["_id"]] = {"resource": record["_id"], "owner": record.get("owner"), **acl,
                                       "recursive": recursive}


def plan_request(ctx: AclContext, plan: Plan, record: Mapping[str, Any], request: AclRequest,
                 grants: list[Grant] | None, *, recursive: bool, notify: bool, owner: Identity) -> None:
    acl = changed_acl(record, request, grants)
    plan.add(record, acl, recursive=recursive)
    if recursive:
        for child in descendants(ctx, record):
            plan.add(child, changed_acl(child, request, grants), recursive=True)
    added = [g for g in grants or [] if g.username not in (record.get("shared_with") or {})]
    if notify and added:
        plan.granted.append(envelope_for(events.ShareGranted(
            resource=record["_id"], owner_id=owner.user_id, owner_username=owner.username or "",
            grantees=[{"user_id": g.user_id, "username": g.username, "level": g.level} for g in added],
            notify=True), producer=events.PRODUCER))


def _event_change(change: Mapping[str, Any], version: int) -> dict[str, Any]:
    return {key: change[key] for key in ("resource", "owner", *ACL_KEYS)} | {"version": version}


def commit(ctx: AclContext, plan: Plan, *, by: int | None, reason: str, by_username: str | None = None) -> int:
    """Write the plan as batches (with their events), then apply them to the records."""
    changes = list(plan.changes.values())
    if len(changes) > ctx.limits.max_resources:
        raise Conflict(f"One request may change at most {ctx.limits.max_resources} resources.",
                       message_type="too_many_resources")
    size = ctx.limits.changes_per_batch
    chunks = [changes[i:i + size] for i in range(0, len(changes), size)]
    if not chunks:
        return 0
    first = ctx.store.next_version(len(chunks))
    for number, chunk in enumerate(chunks):
        version = first + number
        per_event = events.MAX_CHANGES_PER_EVENT
        envelopes = [envelope_for(events.PermissionsChanged(
            changes=[_event_change(c, version) for c in chunk[i:i + per_event]], by=by, by_username=by_username,
            reason=reason),
            producer=events.PRODUCER) for i in range(0, len(chunk), per_event)]
        if number == 0:
            envelopes.extend(plan.granted)
        ctx.store.batches.insert_one({"_id": version, "changes": chunk, "by": by, "reason": reason,
                                      "applied": False, "created_at": now(), **outbox_fields(*envelopes)})
    # The events are out of our hands now (the relay publishes the batches). A big change is
    # applied to the records behind the answer, while the other services apply it too; whatever
    # reads the records next settles what is left first (`settle`).
    if len(changes) <= SYNC_APPLY_LIMIT:
        settle(ctx.store)
    else:
        # A moment later: the resource services' writes of the same change come first (they are
        # what the users wait for), and a reader of the records in between settles it itself.
        timer = threading.Timer(SETTLE_DELAY_SECONDS, settle, args=(ctx.store,))
        timer.daemon = True
        timer.start()
    return len(changes)


_settling = threading.Lock()


def settle(store: AclStore) -> int:
    """Apply every batch not applied to the records yet, oldest first. In one process, a second
    caller waits for the first rather than applying the same batch again."""
    with _settling:
        count = 0
        for batch in store.batches.find({"applied": False}, {"changes": 1}).sort("_id", 1):
            apply_batch(store, batch["_id"], batch["changes"])
            count += 1
        return count


def apply_batch(store: AclStore, version: int, changes: Iterable[Mapping[str, Any]]) -> None:
    """Write a batch's changes to the records; the same ACL for many records is one write."""
    at = now()
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for change in changes:
        fields = {key: change[key] for key in ACL_KEYS} | {"version": version}
        if change.get("recursive"):
            fields.update(recursive_version=version, recursive_at=at)
        groups.setdefault(repr(sorted(fields.items())), (fields, []))[1].append(change["resource"])
    for fields, resources in groups.values():
        for start in range(0, len(resources), IN_CHUNK):
            store.records.update_many({"_id": {"$in": resources[start:start + IN_CHUNK]}, "version": {"$lt": version}},
                                      {"$set": fields})
    store.batches.update_one({"_id": version}, {"$set": {"applied": True}})


# --- the public operations ------------------------------------------------------------------------

def get_acl(*, ctx: AclContext, identity: Identity, resource: str) -> dict[str, Any]:
    return acl_view(check_access(load_record(ctx, resource), identity, name=resource))


def set_acl(*, ctx: AclContext, identity: Identity, resource: str, request: AclRequest,
            recursive: bool = False, notify: bool = False) -> dict[str, Any]:
    record = _owned_record(ctx, identity, resource)
    grants = resolve_grants(ctx, request.shared_with, owner_id=identity.user_id) if request.shared_with is not None else None
    plan = Plan()
    plan_request(ctx, plan, record, request, grants, recursive=recursive, notify=notify, owner=identity)
    commit(ctx, plan, by=identity.user_id, by_username=identity.username, reason="acl")
    return acl_view(plan.changes[resource])


def set_acl_bulk(*, ctx: AclContext, identity: Identity, resources: list[Any], request: AclRequest,
                 recursive: bool = False, notify: bool = False) -> tuple[list[dict[str, Any]], int]:
    """Every resource is checked before anything changes; then the changes apply in the given order."""
    ids = [parse_resource(raw) for raw in resources]
    records = {rid: _owned_record(ctx, identity, rid) for rid in dict.fromkeys(ids)}
    grants = resolve_grants(ctx, request.shared_with, owner_id=identity.user_id) if request.shared_with is not None else None
    plan = Plan()
    for rid in ids:
        plan_request(ctx, plan, records[rid], request, grants, recursive=recursive, notify=notify, owner=identity)
    changed = commit(ctx, plan, by=identity.user_id, by_username=identity.username, reason="bulk")
    listed = [{"resource": rid, **acl_view(plan.changes[rid])} for rid in dict.fromkeys(ids)]
    return listed, changed


def _remove_from(ctx: AclContext, query: Mapping[str, Any], *, user_id: int, username: str,
                 by: int | None, reason: str, by_username: str | None = None) -> int:
    settle(ctx.store)
    plan = Plan()
    projection = {"owner": 1, **{key: 1 for key in ACL_KEYS}}
    for record in ctx.store.records.find({**query, **LIVE}, projection):
        plan.add(record, without_user(record, user_id=user_id, username=username))
    return commit(ctx, plan, by=by, by_username=by_username, reason=reason)


def remove_user_from_shares(*, ctx: AclContext, identity: Identity, username: str) -> int:
    """The caller takes `username` out of every resource the caller owns."""
    user = ctx.users.by_username([username]).get(username.lower())
    if user is None:
        raise NotFound(f"No such user: {username}.", message_type="unknown_user")
    return _remove_from(ctx, {"owner": identity.user_id, "readers": int(user["id"])}, user_id=int(user["id"]),
                        username=user["username"], by=identity.user_id, by_username=identity.username,
                        reason="remove_user")


def leave_shares(*, ctx: AclContext, identity: Identity) -> int:
    """The caller leaves every resource shared with them."""
    return _remove_from(ctx, {"readers": identity.user_id}, user_id=identity.user_id,
                        username=identity.username or "", by=identity.user_id, by_username=identity.username,
                        reason="leave")


def forget_deactivated_user(*, ctx: AclContext, user_id: int, username: str) -> int:
    """A deactivated user loses every share (docs/permissions.md, "Deleted users")."""
    return _remove_from(ctx, {"readers": user_id}, user_id=user_id, username=username, by=None,
                        reason="user_deactivated")
