"""The neo service's collections (one per type, plus `selections`, `labels`, `history`, `friendships`,
`counters` and `array_quota`, services/neo/quota.py) and their indexes."""
from __future__ import annotations

from dataclasses import dataclass

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from services.neo.schema import NEO_TYPES, NeoType
from shared.access import ensure_acl_indexes
from shared.events import ensure_outbox_indexes
from shared.friends import ensure_friendship_indexes
from shared.history import HISTORY_COLLECTION, ensure_history_indexes
from shared.mongo import next_sequence

# Live documents only: deleted ones wait as tombstones until their event is published.
LIVE = {"_tombstone": {"$ne": True}}


@dataclass(frozen=True)
class NeoStore:
    db: Database

    def collection(self, neo_type: NeoType | str) -> Collection:
        name = neo_type if isinstance(neo_type, str) else neo_type.name
        return self.db[NEO_TYPES[name].collection]

    def next_ids(self, type_name: str, count: int = 1) -> list[int]:
        last = next_sequence(self.db, type_name, count)
        return list(range(last - count + 1, last + 1))

    @property
    def selections(self) -> Collection:
        """Saved selections (services/neo/selections.py), private to their owner."""
        return self.db["selections"]

    @property
    def labels(self) -> Collection:
        """Labels (services/neo/labels.py): a metadata value and the neo ids it is applied to."""
        return self.db["labels"]

    @property
    def history(self) -> Collection:
        """Action history entries (services/neo/history.py, shared/history.py)."""
        return self.db[HISTORY_COLLECTION]

    @property
    def outbox_collections(self) -> list[str]:
        return [t.collection for t in NEO_TYPES.values()]

    def ensure_indexes(self) -> None:
        for neo_type in NEO_TYPES.values():
            collection = self.collection(neo_type)
            ensure_acl_indexes(collection)  # owner, readers, writers, safety_level
            for key in ("date_created", "labels", *neo_type.parents):
                collection.create_index([(key, ASCENDING)])
            for attribute in neo_type.attributes:
                collection.create_index([(attribute.name, ASCENDING)])
        self.selections.create_index([("owner", ASCENDING), ("_id", ASCENDING)])
        for key in ("owner", "value_id", "objects"):
            self.labels.create_index([(key, ASCENDING)])
        ensure_outbox_indexes(self.db, self.outbox_collections)
        ensure_friendship_indexes(self.db)
        ensure_history_indexes(self.history)
