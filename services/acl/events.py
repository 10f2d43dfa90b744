"""Events the acl service publishes; this is their contract.

| routing key              | payload                                                                     |
|--------------------------|-----------------------------------------------------------------------------|
| acl.permissions.changed  | changes: [{resource, owner, safety_level, shared_with, readers, writers,    |
|                          | version}], by (acting user id or null), by_username (or null),              |
|                          | reason ("acl", "bulk",                                                      |
|                          | "remove_user", "leave", "user_deactivated", "inherited")                    |
| acl.share.granted        | resource, owner_id, owner_username, grantees: [{user_id, username, level}], |
|                          | notify (bool): users newly added to a resource's shared_with                |

- `resource` is a typed id: `section_5`, `datafile_9`, `segment_3` (any NEO type). `shared_with`
  maps usernames to 1 (read) or 2 (read and write); `readers` are the user ids that may read by
  share (levels 1 and 2), `writers` those with level 2. `version` grows by one with every change
  of a resource: a consumer applies a change only over an older one (shared/access.py
  `apply_acl_changes`), so repeats and late deliveries change nothing.
- One change of many resources (a recursive share, a bulk request) is sent as several events of at
  most `MAX_CHANGES_PER_EVENT` changes each.
- The resource services (neo, metadata, files) consume `acl.permissions.changed` on their queue
  `<service>.acl` and apply the changes for resources they own. The acl worker itself consumes
  `acl.share.granted` (queue `acl.notifications`) and e-mails the grantees when `notify` is true.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

PRODUCER = "acl"
MAX_CHANGES_PER_EVENT = 500


@dataclass(frozen=True)
class PermissionsChanged:
    routing_key: ClassVar[str] = "acl.permissions.changed"
    changes: list[dict[str, Any]]
    by: int | None = None
    reason: str = "acl"
    by_username: str | None = None


@dataclass(frozen=True)
class ShareGranted:
    routing_key: ClassVar[str] = "acl.share.granted"
    resource: str
    owner_id: int
    owner_username: str
    grantees: list[dict[str, Any]] = field(default_factory=list)
    notify: bool = False
