"""Events the files service publishes; this is their contract.

Ids are integers (untyped); `owner` is the owner's user id.

| routing key                  | payload                                                                         |
|------------------------------|---------------------------------------------------------------------------------|
| files.datafile.created       | datafile_id, owner, section_id (or null), title, size, sha256, parent_datafile, |
|                              | acl                                                                             |
| files.datafile.updated       | datafile_id, owner, section_id, fields (names changed)                          |
| files.datafile.moved         | datafile_id, owner, section_id (new, or null), from_section                     |
| files.datafile.deleted       | datafile_id, owner, section_id                                                  |
| files.conversion.requested   | task_id, datafile_id, user_id, username (the acting user)                       |
| files.conversion.completed   | task_id, datafile_id, owner, conversion_type, extracted_info                    |
| files.conversion.failed      | task_id, datafile_id, owner, state ("failed" or "non_convertible"), reason      |

`acl` is the new datafile's ACL as shared/access.py `acl_of` gives it: {owner, safety_level,
shared_with, readers, writers} (a file uploaded into a section starts with the section's ACL).
The acl service learns the resource tree from these events: a datafile's parent is
`section_<section_id>` (none when `section_id` is null); `files.datafile.moved` changes the
parent but never the ACL (seed 000), `files.datafile.deleted` removes the resource.

`files.conversion.requested` is consumed by the files worker itself (queue `files.conversion`):
it is the conversion task. The metadata service keeps which datafiles a section shows from the
`files.datafile.*` events (`datafile_id`, `section_id`). The files worker also consumes
`acl.permissions.changed` (queue `files.acl`) and `auth.friendship.added|removed` (queue
`files.friendships`): services/files/acl.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

PRODUCER = "files"


@dataclass(frozen=True)
class DatafileCreated:
    routing_key: ClassVar[str] = "files.datafile.created"
    datafile_id: int
    owner: int
    section_id: int | None
    title: str
    size: int
    sha256: str
    parent_datafile: int | None = None
    acl: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatafileUpdated:
    routing_key: ClassVar[str] = "files.datafile.updated"
    datafile_id: int
    owner: int
    section_id: int | None
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DatafileMoved:
    routing_key: ClassVar[str] = "files.datafile.moved"
    datafile_id: int
    owner: int
    section_id: int | None
    from_section: int | None


@dataclass(frozen=True)
class DatafileDeleted:
    routing_key: ClassVar[str] = "files.datafile.deleted"
    datafile_id: int
    owner: int
    section_id: int | None


@dataclass(frozen=True)
class ConversionRequested:
    routing_key: ClassVar[str] = "files.conversion.requested"
    task_id: str
    datafile_id: int
    user_id: int
    username: str


@dataclass(frozen=True)
class ConversionCompleted:
    routing_key: ClassVar[str] = "files.conversion.completed"
    task_id: str
    datafile_id: int
    owner: int
    conversion_type: int | None
    extracted_info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConversionFailed:
    routing_key: ClassVar[str] = "files.conversion.failed"
    task_id: str
    datafile_id: int
    owner: int
    state: str
    reason: str
