"""The neo service's side of permissions without a database: which ids it owns, what the
`neo.acl` handler writes, and the worker's queues."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from pymongo import UpdateMany

from services.neo.acl import acl_handlers, consumers, locate
from services.neo.schema import NEO_TYPES
from services.neo.store import NeoStore


class FakeCollection:
    def __init__(self, name):
        self.name = self.full_name = name
        self.writes = []

    def bulk_write(self, ops, ordered=True):
        self.writes.append(ops)
        return SimpleNamespace(modified_count=len(ops))

    def update_many(self, query, update):
        return self.bulk_write([UpdateMany(query, update)])


class FakeDb(dict):
    def __missing__(self, name):
        self[name] = FakeCollection(name)
        return self[name]


@pytest.mark.parametrize("type_name", sorted(NEO_TYPES))
def test_every_neo_type_is_located_in_its_collection(type_name):
    db = FakeDb()
    [(collection, query)] = locate(NeoStore(db), f"{type_name}_3")
    assert collection is db[f"neo_{type_name}"]
    assert query == {"_id": 3}


@pytest.mark.parametrize("resource", [
    "section_3", "datafile_3", "value_3", "property_3", "garbage", "", "3", "segment", "segment_", "segment_x",
    "_3", "segment_3_4",
])
def test_ids_the_service_does_not_own_are_not_located(resource):
    assert locate(NeoStore(FakeDb()), resource) == []


def test_the_handler_writes_one_guarded_bulk_per_collection():
    db = FakeDb()
    handle = acl_handlers(NeoStore(db))["acl.permissions.changed"]
    change = {"owner": 1, "safety_level": "2", "shared_with": {"bob": 1}, "readers": ["7"], "writers": []}
    handle({
        "event_id": "e1", "type": "acl.permissions.changed", "occurred_at": "2030-01-01T00:00:00.000+00:00",
        "producer": "acl", "payload": {"changes": [
            {**change, "resource": "segment_3", "version": 5},
            {**change, "resource": "section_3", "version": 5},
            {**change, "resource": "segment_4", "version": 6},
            {**change, "resource": "block_1", "version": 6},
        ], "by": 1, "reason": "acl"},
    })
    assert set(db) == {"neo_segment", "neo_block"}
    ops = [op for write in db["neo_segment"].writes for op in write]
    assert [op._filter for op in ops] == [
        {"_id": {"$in": [3]}, "acl_version": {"$not": {"$gte": 5}}},
        {"_id": {"$in": [4]}, "acl_version": {"$not": {"$gte": 6}}},
    ]
    assert ops[0]._doc == {"$set": {"safety_level": 2, "shared_with": {"bob": 1}, "readers": [7], "writers": [],
                                    "acl_version": 5}}


def test_the_worker_consumes_two_queues():
    specs = consumers(FakeDb())
    assert [spec.queue for spec in specs] == ["neo.acl", "neo.friendships"]
    assert list(specs[0].handlers) == ["acl.permissions.changed"]
    assert sorted(specs[1].handlers) == ["auth.friendship.added", "auth.friendship.removed"]
