"""Reading ACL request bodies and computing a resource's new ACL (pure functions, no I/O).

A request says what changes: a `safety_level` and/or a `shared_with` (which replaces the whole
list). `Grant` is one user's share after the usernames are resolved to user ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from shared.access import FRIENDLY, PRIVATE, PUBLIC, READ, SAFETY_LEVELS, WRITE
from shared.errors import BadRequest

STATES = {"public": PUBLIC, "friendly": FRIENDLY, "private": PRIVATE}
ROLES = {"reader": READ, "viewer": READ, "collaborator": WRITE, "writer": WRITE}


@dataclass(frozen=True)
class AclRequest:
    safety_level: int | None = None
    shared_with: dict[str, int] | None = None  # username (as given) -> level

    @property
    def is_empty(self) -> bool:
        return self.safety_level is None and self.shared_with is None


def _integer(value: Any, *, field: str, allowed: tuple[int, ...]) -> int:
    if isinstance(value, bool):
        value = None
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value not in allowed:
        raise BadRequest(f"`{field}` must be one of {', '.join(map(str, allowed))}, got {value!r}.",
                         message_type="invalid_value", details={"field": field})
    return value


def _named(value: Any, *, field: str, names: Mapping[str, int], allowed: tuple[int, ...]) -> int:
    if isinstance(value, str) and value.strip().lower() in names:
        return names[value.strip().lower()]
    try:
        return _integer(value, field=field, allowed=allowed)
    except BadRequest:
        raise BadRequest(f"`{field}` must be one of {', '.join(names)} (or {', '.join(map(str, allowed))}), "
                         f"got {value!r}.", message_type="invalid_value", details={"field": field}) from None


def _shared_with(raw: Any, *, field: str, roles: bool) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise BadRequest(f"`{field}` must be an object of usernames and permissions.",
                         message_type="invalid_value", details={"field": field})
    shares: dict[str, int] = {}
    for username, level in raw.items():
        if not isinstance(username, str) or not username.strip():
            raise BadRequest(f"`{field}` has an empty username.", message_type="invalid_value", details={"field": field})
        name = f"{field}.{username}"
        shares[username.strip()] = (_named(level, field=name, names=ROLES, allowed=(READ, WRITE)) if roles
                                    else _integer(level, field=name, allowed=(READ, WRITE)))
    return shares


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise BadRequest("The body must be a JSON object.", message_type="invalid_body")
    return body


def _no_unknown(body: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}; expected {', '.join(known)}.",
                         message_type="unknown_field", details={"fields": unknown})


def parse_acl_body(body: Any) -> AclRequest:
    """`{"safety_level": 1|2|3, "shared_with": {username: 1|2}}`, both optional, not both absent."""
    body = _object(body)
    _no_unknown(body, ("safety_level", "shared_with"))
    request = AclRequest(
        safety_level=_integer(body["safety_level"], field="safety_level", allowed=SAFETY_LEVELS)
        if body.get("safety_level") is not None else None,
        shared_with=_shared_with(body["shared_with"], field="shared_with", roles=False)
        if body.get("shared_with") is not None else None,
    )
    if request.is_empty:
        raise BadRequest("Give `safety_level` and/or `shared_with`.", message_type="invalid_body")
    return request


def parse_bulk_body(body: Any) -> tuple[list[Any], AclRequest]:
    """`{"resources": [...], "state": "public|friendly|private", "shared_with": {username: role}}`."""
    body = _object(body)
    _no_unknown(body, ("resources", "state", "shared_with"))
    resources = body.get("resources")
    if not isinstance(resources, list) or not resources:
        raise BadRequest("`resources` must be a non-empty list of resource ids.", message_type="invalid_value",
                         details={"field": "resources"})
    request = AclRequest(
        safety_level=_named(body["state"], field="state", names=STATES, allowed=SAFETY_LEVELS)
        if body.get("state") is not None else None,
        shared_with=_shared_with(body["shared_with"], field="shared_with", roles=True)
        if body.get("shared_with") is not None else None,
    )
    if request.is_empty:
        raise BadRequest("Give `state` and/or `shared_with`.", message_type="invalid_body")
    return resources, request


@dataclass(frozen=True)
class Grant:
    user_id: int
    username: str
    level: int


def acl_fields(*, safety_level: int, grants: list[Grant]) -> dict[str, Any]:
    """The stored ACL for a safety level and a list of grants."""
    return {
        "safety_level": safety_level,
        "shared_with": {g.username: g.level for g in grants},
        "readers": sorted({g.user_id for g in grants}),
        "writers": sorted({g.user_id for g in grants if g.level == WRITE}),
    }


def without_user(record: Mapping[str, Any], *, user_id: int, username: str) -> dict[str, Any]:
    """The record's ACL with one user taken out of its shares."""
    name = username.lower()
    return {
        "safety_level": record["safety_level"],
        "shared_with": {u: level for u, level in (record.get("shared_with") or {}).items() if u.lower() != name},
        "readers": [u for u in record.get("readers") or [] if u != user_id],
        "writers": [u for u in record.get("writers") or [] if u != user_id],
    }
