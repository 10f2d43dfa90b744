"""The neo service's collections (one per type) and their indexes."""
from __future__ import annotations

from dataclasses import dataclass

from pymongo import ASCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database

from services.neo.schema import NEO_TYPES, NeoType
from shared.events import ensure_outbox_indexes

# Live documents only: deleted ones wait as tombstones until their event is published.
LIVE = {"_tombstone": {"$ne": True}}


@dataclass(frozen=True)
class NeoStore:
    db: Database

    def collection(self, neo_type: NeoType | str) -> Collection:
        name = neo_type if isinstance(neo_type, str) else neo_type.name
        return self.db[NEO_TYPES[name].collection]

    def next_ids(self, type_name: str, count: int = 1) -> list[int]:
        counter = self.db["counters"].find_one_and_update(
            {"_id": type_name}, {"$inc": {"seq": count}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        last = int(counter["seq"])
        return list(range(last - count + 1, last + 1))

    @property
    def outbox_collections(self) -> list[str]:
        return [t.collection for t in NEO_TYPES.values()]

    def ensure_indexes(self) -> None:
        for neo_type in NEO_TYPES.values():
            collection = self.collection(neo_type)
            for key in ("owner", "readers", "safety_level", "date_created", *neo_type.parents):
                collection.create_index([(key, ASCENDING)])
            for attribute in neo_type.attributes:
                collection.create_index([(attribute.name, ASCENDING)])
        ensure_outbox_indexes(self.db, self.outbox_collections)
