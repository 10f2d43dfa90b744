"""The acl service's collections.

- `records`: one per resource (`_id` its typed id): `service`, `owner`, the ACL (`safety_level`,
  `shared_with` {username: level}, `readers`, `writers` user ids), `version` (of the last change),
  `parents` (typed ids: the resource tree, from the other services' events), `created_at`,
  `recursive_version` / `recursive_at` (the last change given to the whole subtree),
  `deleted` (kept as a tombstone so a late `created` event cannot bring it back).
- `batches`: one per ACL change (`_id` = its version, a global sequence): the `changes` it makes,
  `applied` once the records have them, and the `acl.permissions.changed` events in its outbox.
  A batch is written first, with its events, then applied to the records; the worker re-applies
  a batch left unapplied (a crash between the two writes), guarded by each record's version.
- `counters`: the batch sequence.
- `friendships`: shared/friends.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from pymongo.collection import Collection
from pymongo.database import Database

from shared.events import ensure_outbox_indexes
from shared.friends import ensure_friendship_indexes
from shared.mongo import next_sequence

OUTBOX_COLLECTIONS = ("batches",)
LIVE = {"deleted": {"$ne": True}}


@dataclass(frozen=True)
class AclStore:
    db: Database

    @property
    def records(self) -> Collection:
        return self.db["records"]

    @property
    def batches(self) -> Collection:
        return self.db["batches"]

    def next_version(self, count: int = 1) -> int:
        """Reserve `count` consecutive versions; returns the first."""
        return next_sequence(self.db, "batch", count) - count + 1

    def ensure_indexes(self) -> None:
        for field in ("parents", "owner", "readers"):
            self.records.create_index(field)
        self.batches.create_index("applied")
        ensure_outbox_indexes(self.db, OUTBOX_COLLECTIONS)
        ensure_friendship_indexes(self.db)
