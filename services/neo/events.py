"""Events the neo service publishes; this is their contract.

| routing key          | payload                                                              |
|----------------------|----------------------------------------------------------------------|
| neo.object.created   | neo_id, type, owner, parents ({type: neo_id}), source                |
| neo.object.updated   | neo_id, type, fields (names changed), parents (after the change)     |
| neo.object.deleted   | neo_id, type, owner                                                  |
| neo.objects.updated  | type, neo_ids, fields: one bulk update of many objects               |

The acl service keeps its resource tree from `parents`; history records all of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

PRODUCER = "neo"


@dataclass(frozen=True)
class ObjectCreated:
    routing_key: ClassVar[str] = "neo.object.created"
    neo_id: str
    type: str
    owner: int
    parents: dict[str, str] = field(default_factory=dict)
    source: str | None = None


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
