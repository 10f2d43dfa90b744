"""Events the metadata service publishes; this is their contract.

Ids in payloads are integers (the untyped form); `owner` is the owner's user id.

| routing key                 | payload                                                                     |
|-----------------------------|-----------------------------------------------------------------------------|
| metadata.section.created    | section_id, owner, parent_section (id or null), ancestors (root first),     |
|                             | source ("api", "copy", "import", "archive"), copied_from (id or null),       |
|                             | datafile_ids (datafiles linked into the new section by a copy),             |
|                             | acl: the new section's {owner, safety_level, shared_with, readers, writers} |
| metadata.section.updated    | section_id, owner, fields (names changed)                                   |
| metadata.section.moved      | section_id, owner, from_parent, to_parent (ids or null), ancestors (new)    |
| metadata.section.deleted    | section_id, owner, parent_section, property_ids, value_ids, datafile_ids    |
| metadata.property.created   | property_id, section_id, owner, name, value_ids                             |
| metadata.property.updated   | property_id, section_id, fields, value_ids_added, value_ids_removed         |
| metadata.property.deleted   | property_id, section_id, owner, value_ids                                   |
| metadata.value.created      | value_id, property_id, section_id                                           |
| metadata.value.updated      | value_id, property_id, section_id                                           |
| metadata.value.deleted      | value_id, property_id, section_id                                           |

- Deleting a section deletes its whole subtree: one `metadata.section.deleted` per section
  (deepest first), each listing the properties and values that went with it; no separate
  property/value events are sent for them. `datafile_ids` are the datafiles that were shown in that
  section: the files themselves are not deleted (the files service owns them).
- A property created with inline values announces their ids in `metadata.property.created`; the
  `metadata.value.*` events are for values added, changed or removed one by one.
- A moved section carries its subtree along; only the moved section's parent changes, so one
  `metadata.section.moved` describes the whole move (descendants' `ancestors` change accordingly).
- The acl service keeps its resource tree from `parent_section` / `to_parent` (and forgets deleted
  sections); `acl` of `metadata.section.created` is the ACL the section starts with (shared/access.py
  `acl_of`: private at the root, the parent's under a parent, the target's for copies and imports).
  A move does not change any ACL. Properties and values have no ACL of their own: they go with their
  section (`section_<id>` in the acl service). The neo service's labels drop values listed in
  `value_ids` / `value_id` of the deleted events.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

PRODUCER = "metadata"


@dataclass(frozen=True)
class SectionCreated:
    routing_key: ClassVar[str] = "metadata.section.created"
    section_id: int
    owner: int
    parent_section: int | None
    ancestors: list[int]
    source: str = "api"
    copied_from: int | None = None
    datafile_ids: list[int] = field(default_factory=list)
    acl: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SectionUpdated:
    routing_key: ClassVar[str] = "metadata.section.updated"
    section_id: int
    owner: int
    fields: list[str]


@dataclass(frozen=True)
class SectionMoved:
    routing_key: ClassVar[str] = "metadata.section.moved"
    section_id: int
    owner: int
    from_parent: int | None
    to_parent: int | None
    ancestors: list[int]


@dataclass(frozen=True)
class SectionDeleted:
    routing_key: ClassVar[str] = "metadata.section.deleted"
    section_id: int
    owner: int
    parent_section: int | None
    property_ids: list[int] = field(default_factory=list)
    value_ids: list[int] = field(default_factory=list)
    datafile_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class PropertyCreated:
    routing_key: ClassVar[str] = "metadata.property.created"
    property_id: int
    section_id: int
    owner: int
    name: str
    value_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class PropertyUpdated:
    routing_key: ClassVar[str] = "metadata.property.updated"
    property_id: int
    section_id: int
    fields: list[str]
    value_ids_added: list[int] = field(default_factory=list)
    value_ids_removed: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class PropertyDeleted:
    routing_key: ClassVar[str] = "metadata.property.deleted"
    property_id: int
    section_id: int
    owner: int
    value_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ValueCreated:
    routing_key: ClassVar[str] = "metadata.value.created"
    value_id: int
    property_id: int
    section_id: int


@dataclass(frozen=True)
class ValueUpdated:
    routing_key: ClassVar[str] = "metadata.value.updated"
    value_id: int
    property_id: int
    section_id: int


@dataclass(frozen=True)
class ValueDeleted:
    routing_key: ClassVar[str] = "metadata.value.deleted"
    value_id: int
    property_id: int
    section_id: int
