"""The permission read model every resource document carries (DESIGN.md section 4).

`owner` (user id), `safety_level` (1 public, 2 friendly, 3 private), `shared_with`
({username: 1 read | 2 read+write}) and the denormalised `readers` / `writers` user-id lists that
let list and query endpoints filter inside MongoDB with an index. The acl service is the source of
truth and keeps these fields up to date through events.
"""
from __future__ import annotations

from typing import Any, Mapping

from shared.identity import Identity

PUBLIC, FRIENDLY, PRIVATE = 1, 2, 3
ACL_FIELDS = ("safety_level", "shared_with", "readers", "writers")


def new_acl(*, owner: int, inherited: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ACL of a new resource: private, or a copy of its parent's when it is created under one."""
    acl = {"owner": owner, "safety_level": PRIVATE, "shared_with": {}, "readers": [], "writers": []}
    if inherited:
        acl.update({key: inherited[key] for key in ACL_FIELDS if key in inherited})
    return acl


def read_filter(identity: Identity) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = [{"safety_level": PUBLIC}]
    if identity.is_authenticated:
        clauses[:0] = [{"owner": identity.user_id}, {"readers": identity.user_id}]
    return {"$or": clauses}


def write_filter(identity: Identity) -> dict[str, Any]:
    return {"$or": [{"owner": identity.user_id}, {"writers": identity.user_id}]}


def can_read(doc: Mapping[str, Any], identity: Identity) -> bool:
    return (
        doc.get("safety_level") == PUBLIC
        or doc.get("owner") == identity.user_id
        or identity.user_id in doc.get("readers", ())
    )


def can_write(doc: Mapping[str, Any], identity: Identity) -> bool:
    return identity.is_authenticated and (
        doc.get("owner") == identity.user_id or identity.user_id in doc.get("writers", ())
    )


def is_owner(doc: Mapping[str, Any], identity: Identity) -> bool:
    return identity.is_authenticated and doc.get("owner") == identity.user_id
