"""The permission read model every resource document carries (DESIGN.md section 4).

`owner` (user id), `safety_level` (1 public, 2 friendly, 3 private), `shared_with`
({username: 1 read | 2 read+write}) and the denormalised `readers` / `writers` user-id lists that
let list and query endpoints filter inside MongoDB with an index. `acl_version` orders the changes
the acl service sends (see `apply_acl_changes`). The acl service is the source of truth.

Friendly (level 2) resources are readable by the owner's friends: the caller's
`Identity.befriended_by` (the owners who count the caller as a friend, kept by shared/friends.py
from the auth service's events) turns that into one more index-backed clause.

The answers every service gives (docs/permissions.md): 404 when the resource does not exist,
401 when an anonymous caller may not read it, 403 when a signed-in caller may not read it, may
read but not write it, or is not its owner where the owner alone may act.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from pymongo import UpdateMany

from shared.errors import Forbidden, NotAuthenticated, NotFound
from shared.identity import Identity

PUBLIC, FRIENDLY, PRIVATE = 1, 2, 3
SAFETY_LEVELS = (PUBLIC, FRIENDLY, PRIVATE)
READ, WRITE = 1, 2
ACL_FIELDS = ("safety_level", "shared_with", "readers", "writers")
ACL_INDEXES = ("owner", "readers", "writers", "safety_level")
# `$in` lists are cut into pieces of this size: the MongoDB stand-in matches them in quadratic time.
IN_CHUNK = 50


def new_acl(*, owner: int, owner_name: str | None = None, inherited: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ACL of a new resource: private, or a copy of its parent's when it is created under one.

    A collaborator (level 2) creating inside someone else's parent becomes the child's owner; the
    parent's owner (named by the parent's `author`) keeps read and write access to it, so nothing
    in one's own tree is hidden from one, and the new owner is never in their own shares.
    """
    acl: dict[str, Any] = {"owner": owner, "safety_level": PRIVATE, "shared_with": {}, "readers": [], "writers": []}
    if not inherited:
        return acl
    acl.update({key: inherited[key] for key in ACL_FIELDS if key in inherited})
    shared_with = {name: level for name, level in dict(acl["shared_with"] or {}).items() if name != owner_name}
    readers = [u for u in acl["readers"] or [] if u != owner]
    writers = [u for u in acl["writers"] or [] if u != owner]
    parent_owner = inherited.get("owner")
    if parent_owner not in (None, owner):
        readers += [] if parent_owner in readers else [parent_owner]
        writers += [] if parent_owner in writers else [parent_owner]
        if inherited.get("author"):
            shared_with[inherited["author"]] = WRITE
    acl.update(shared_with=shared_with, readers=readers, writers=writers)
    return acl


def acl_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The ACL part of a document, as events and the internal API carry it."""
    return {
        "owner": doc.get("owner"),
        "safety_level": doc.get("safety_level", PRIVATE),
        "shared_with": dict(doc.get("shared_with") or {}),
        "readers": list(doc.get("readers") or []),
        "writers": list(doc.get("writers") or []),
    }


def read_filter(identity: Identity) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = [{"safety_level": PUBLIC}]
    if identity.is_authenticated:
        clauses[:0] = [{"owner": identity.user_id}, {"readers": identity.user_id}]
        if identity.befriended_by:
            clauses.append({"safety_level": FRIENDLY, "owner": {"$in": sorted(identity.befriended_by)}})
    return {"$or": clauses}


def write_filter(identity: Identity) -> dict[str, Any]:
    return {"$or": [{"owner": identity.user_id}, {"writers": identity.user_id}]}


def can_read(doc: Mapping[str, Any], identity: Identity) -> bool:
    level = doc.get("safety_level")
    if level == PUBLIC:
        return True
    if not identity.is_authenticated:
        return False
    return (
        doc.get("owner") == identity.user_id
        or identity.user_id in doc.get("readers", ())
        or (level == FRIENDLY and doc.get("owner") in identity.befriended_by)
    )


def can_write(doc: Mapping[str, Any], identity: Identity) -> bool:
    return identity.is_authenticated and (
        doc.get("owner") == identity.user_id or identity.user_id in doc.get("writers", ())
    )


def is_owner(doc: Mapping[str, Any], identity: Identity) -> bool:
    return identity.is_authenticated and doc.get("owner") == identity.user_id


def check_access(doc: Mapping[str, Any] | None, identity: Identity, *, name: str, need: str = "read") -> Mapping[str, Any]:
    """`doc` when `identity` may `need` ("read", "write" or "owner") it; else the error to answer."""
    if doc is None:
        raise NotFound(f"There is no {name}.")
    if not can_read(doc, identity):
        if not identity.is_authenticated:
            raise NotAuthenticated(f"{name} is not public; log in to read it.")
        raise Forbidden(f"You may not read {name}.")
    if need == "write" and not can_write(doc, identity):
        if not identity.is_authenticated:
            raise NotAuthenticated(f"Log in to change {name}.")
        raise Forbidden(f"You may read but not change {name}.")
    if need == "owner" and not is_owner(doc, identity):
        if not identity.is_authenticated:
            raise NotAuthenticated(f"Log in to change {name}.")
        raise Forbidden(f"Only the owner of {name} may do this.")
    return doc


# --- applying the acl service's changes (`acl.permissions.changed`, services/acl/events.py) -------

Locator = Callable[[str], "Iterable[tuple[Any, dict[str, Any]]]"]


def newer_than(version: int) -> dict[str, Any]:
    """Matches documents whose ACL is older than `version` (or never set by the acl service)."""
    return {"acl_version": {"$not": {"$gte": version}}}


def acl_update(change: Mapping[str, Any]) -> dict[str, Any]:
    return {"$set": {
        "safety_level": int(change["safety_level"]),
        "shared_with": dict(change.get("shared_with") or {}),
        "readers": [int(u) for u in change.get("readers") or []],
        "writers": [int(u) for u in change.get("writers") or []],
        "acl_version": int(change["version"]),
    }}


def apply_acl_changes(changes: Iterable[Mapping[str, Any]], locate: Locator) -> int:
    """Apply each change to the documents `locate(resource)` names, unless they hold a newer one.

    `locate` returns (collection, filter) pairs for a resource id it owns, or nothing for one it
    does not (another service's). Applying the same change twice, or an older one after a newer
    one, changes nothing: each write is guarded by `acl_version`. Changes that set the same ACL
    (a recursive share) become one update of many documents: writes are what costs.
    """
    groups: dict[tuple, tuple[Any, str, list[Any], dict[str, Any]]] = {}
    singles: dict[str, tuple[Any, list[UpdateMany]]] = {}
    for change in changes:
        update = acl_update(change)
        for collection, query in locate(str(change["resource"])):
            guarded = {**query, **newer_than(int(change["version"]))}
            if len(query) == 1:
                (field, value), = query.items()
                key = (collection.full_name, field, _fingerprint(update))
                groups.setdefault(key, (collection, field, [], update))[2].append(value)
            else:
                singles.setdefault(collection.full_name, (collection, []))[1].append(UpdateMany(guarded, update))
    applied = 0
    for collection, field, values, update in groups.values():
        version = update["$set"]["acl_version"]
        for start in range(0, len(values), IN_CHUNK):
            query = {field: {"$in": values[start:start + IN_CHUNK]}, **newer_than(version)}
            applied += collection.update_many(query, update).modified_count
    for collection, ops in singles.values():
        applied += collection.bulk_write(ops, ordered=False).modified_count
    return applied


def _fingerprint(update: Mapping[str, Any]) -> str:
    fields = update["$set"]
    return repr((fields["safety_level"], sorted(fields["shared_with"].items()), fields["readers"], fields["writers"],
                 fields["acl_version"]))


def ensure_acl_indexes(collection) -> None:
    for field in ACL_INDEXES:
        collection.create_index(field)
