"""services/metadata/acl.py without a database: which resources are the metadata service's, and
what an `acl.permissions.changed` event turns into."""
from __future__ import annotations

from dataclasses import dataclass, field

from pymongo import UpdateMany

from services.metadata.acl import acl_handlers, consumer_specs, locator, ours, section_number
from services.metadata.store import MetadataStore


@dataclass
class FakeCollection:
    full_name: str
    ops: list = field(default_factory=list)

    def bulk_write(self, ops, ordered=True):
        self.ops.extend(ops)

        class Result:
            modified_count = len(ops)

        return Result()

    def update_many(self, query, update):
        return self.bulk_write([UpdateMany(query, update)])

    def insert_one(self, document):
        self.ops.append(document)


class FakeDb(dict):
    def __missing__(self, name):
        self[name] = FakeCollection(f"test.{name}")
        return self[name]


def change(resource, version=1, **extra):
    return {"resource": resource, "owner": 7, "safety_level": 1, "shared_with": {"bob": 2}, "readers": [8],
            "writers": [8], "version": version, **extra}


def test_section_number_takes_typed_section_ids_only():
    assert section_number("section_5") == 5
    assert section_number("section_123456789012345678") == 123456789012345678
    for other in ("datafile_5", "segment_5", "property_5", "value_5", "5", 5, None, "", "section_", "section_0",
                  "section_-1", "section_5 ", " section_5", "SECTION_5", "section_1234567890123456789", ["section_5"]):
        assert section_number(other) is None, other


def test_locate_names_the_section_and_its_properties():
    db = FakeDb()
    locate = locator(MetadataStore(db))
    assert locate("section_5") == [(db["sections"], {"_id": 5}), (db["properties"], {"section": 5})]
    assert locate("datafile_5") == [] and locate("garbage") == []


def test_ours_keeps_valid_section_changes_only():
    good = change("section_1")
    kept = ours([good, change("datafile_1"), "text", None, {"resource": "section_2"},
                 change("section_3", safety_level=4), change("section_4", version=0),
                 change("section_5", readers="8"), change("section_6", readers=["x"]),
                 change("section_7", shared_with=["bob"]), change("section_8", safety_level="2")])
    assert kept == [good, change("section_8", safety_level="2")]


def test_the_handler_writes_sections_and_properties_guarded_by_version():
    db = FakeDb()
    handler = acl_handlers(MetadataStore(db))["acl.permissions.changed"]
    handler({"event_id": "e1", "type": "acl.permissions.changed", "payload": {
        "changes": [change("section_5", version=3), change("segment_5")]}})
    update = {"$set": {"safety_level": 1, "shared_with": {"bob": 2}, "readers": [8], "writers": [8], "acl_version": 3}}
    older = {"acl_version": {"$not": {"$gte": 3}}}
    assert db["sections"].ops == [UpdateMany({"_id": {"$in": [5]}, **older}, update)]
    assert db["properties"].ops == [UpdateMany({"section": {"$in": [5]}, **older}, update)]
    handler({"event_id": "e2", "type": "acl.permissions.changed", "payload": {"changes": "not a list"}})
    handler({"event_id": "e3", "type": "acl.permissions.changed"})
    assert len(db["sections"].ops) == 1


def test_consumer_specs():
    specs = consumer_specs(FakeDb())
    assert [s.queue for s in specs] == ["metadata.acl", "metadata.friendships"]
    assert list(specs[0].handlers) == ["acl.permissions.changed"]
    assert sorted(specs[1].handlers) == ["auth.friendship.added", "auth.friendship.removed"]
