"""Events the neo service publishes; this is their contract.

| routing key          | payload                                                              |
|----------------------|----------------------------------------------------------------------|
| neo.objects.created  | type, owner, source, objects: [{neo_id, parents ({type: neo_id}),    |
|                      | acl}]: one create request, CREATED_PER_EVENT (500) objects at most   |
| neo.object.updated   | neo_id, type, fields (names changed), parents (after the change)     |
| neo.object.deleted   | neo_id, type, owner                                                  |
| neo.objects.updated  | type, neo_ids, fields, parents ({neo_id: parents after the change},  |
|                      | when the update changes parent links, else {}): one bulk update      |

- `acl` is the new object's ACL (shared/access.py `acl_of`): {owner, safety_level, shared_with
  ({username: 1|2}), readers, writers (user ids)}; an object created under a parent starts with
  that parent's ACL, otherwise private.
- `source` is the resource whose job made the object (`datafile_9` for a conversion), from the
  `X-Gnode-Source` header of the calling service (shared/history.py `SOURCE_HEADER`), or null for
  a plain request; the kind of job is in the history entry, not here.
- `parents` maps each linked parent type to its neo_id; the acl service keeps its resource tree
  from `parents` (`created`, `updated`, `objects.updated`) and learns of deletions from
  `deleted`. The neo service's own action history (services/neo/history.py) uses the event's
  id as its entry's id. ACL changes themselves are the acl service's
  (`acl.permissions.changed`), never neo events.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

PRODUCER = "neo"


CREATED_PER_EVENT = 500


@dataclass(frozen=True)
class ObjectsCreated:
    routing_key: ClassVar[str] = "neo.objects.created"
    type: str
    owner: int
    source: str | None = None
    objects: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectUpdated:
    routing_key: ClassVar[str] = "neo.object.updated"
    neo_id: str
    type: str
    fields: list[str]
    parents: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectDeleted:
    routing_key: ClassVar[str] = "neo.object.deleted"
    neo_id: str
    type: str
    owner: int


@dataclass(frozen=True)
class ObjectsUpdated:
    routing_key: ClassVar[str] = "neo.objects.updated"
    type: str
    neo_ids: list[str]
    fields: list[str]
    parents: dict[str, dict[str, str]] = field(default_factory=dict)
