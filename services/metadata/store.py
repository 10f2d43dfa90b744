"""The metadata service's collections and their indexes.

- `sections`: one document per section, with `parent_section`, `ancestors` (ids from the root down
  to the parent: a subtree is one indexed query `{"ancestors": id}`), `depth`, `tree_position`
  (order among siblings), the permission read model (shared/access.py) and `search_text`.
- `properties`: one document per property, holding its values (`values: [{"id", "value", "text"}]`,
  in order), its section's read model (copied, so that listing is one query), the section's
  `ancestors` plus the section itself, and the owners of the property and its values (owners.py).
  The acl service's changes of a section go to both (services/metadata/acl.py).
- `datafile_links`: which datafiles appear in which section (`kind` "home" from the files service's
  events, "copy" from copies with `with_datafiles`).
- `counters`: one integer sequence per kind (section, property, value).
- `history`: the action history of all three (shared/history.py, services/metadata/history.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from shared.access import ensure_acl_indexes
from shared.events import ensure_outbox_indexes
from shared.friends import ensure_friendship_indexes
from shared.history import HISTORY_COLLECTION, ensure_history_indexes
from shared.mongo import next_sequence

# Live documents only: deleted ones wait as tombstones until their event is published.
LIVE = {"_tombstone": {"$ne": True}}
OUTBOX_COLLECTIONS = ("sections", "properties")
HIDDEN = {"_outbox": 0, "_outbox_pending": 0, "_outbox_lease": 0}


@dataclass(frozen=True)
class MetadataStore:
    db: Database

    @property
    def sections(self) -> Collection:
        return self.db["sections"]

    @property
    def properties(self) -> Collection:
        return self.db["properties"]

    @property
    def links(self) -> Collection:
        return self.db["datafile_links"]

    @property
    def history(self) -> Collection:
        return self.db[HISTORY_COLLECTION]

    def next_ids(self, kind: str, count: int = 1) -> list[int]:
        if count <= 0:
            return []
        last = next_sequence(self.db, kind, count)
        return list(range(last - count + 1, last + 1))

    def ensure_indexes(self) -> None:
        ensure_acl_indexes(self.sections)  # owner, readers, writers, safety_level
        ensure_acl_indexes(self.properties)
        for key in ("ancestors", "date_created", "author", "search_text"):
            self.sections.create_index([(key, ASCENDING)])
        self.sections.create_index([("parent_section", ASCENDING), ("tree_position", ASCENDING)])
        self.sections.create_index([("parent_section", ASCENDING), ("name", ASCENDING)])
        for key in ("ancestors", "search_text", "values.id"):
            self.properties.create_index([(key, ASCENDING)])
        self.properties.create_index([("section", ASCENDING), ("tree_position", ASCENDING)])
        self.properties.create_index([("section", ASCENDING), ("name", ASCENDING)])
        self.links.create_index([("section", ASCENDING)])
        self.links.create_index([("datafile", ASCENDING)])
        ensure_friendship_indexes(self.db)
        ensure_outbox_indexes(self.db, OUTBOX_COLLECTIONS)
        ensure_history_indexes(self.history)
        self.record_property_owners()

    def record_property_owners(self) -> None:
        """Properties stored before they had owners of their own (owners.py) get their section's owner,
        so that listing by owner finds them too."""
        self.properties.update_many({"property_owner": {"$exists": False}},
                                    [{"$set": {"property_owner": "$owner", "property_owner_name": "$author"}}])
