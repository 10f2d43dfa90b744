"""services/neo/history.py's pure parts: grouping permission changes and the sentences describing them."""
from __future__ import annotations

from services.neo.history import acl_groups, describe_acl, record_permission_changes


class FakeHistory:
    def __init__(self):
        self.inserted: list[dict] = []

    def insert_one(self, entry):
        self.inserted.append(entry)


def test_changes_that_set_the_same_acl_are_one_group_in_event_order():
    changes = [
        {"resource": "block_1", "safety_level": 1, "shared_with": {"bob": 1}},
        {"resource": "segment_2", "safety_level": 3, "shared_with": {}},
        {"resource": "segment_3", "safety_level": 1, "shared_with": {"bob": 1}},
    ]
    assert acl_groups(changes) == [(1, {"bob": 1}, ["block_1", "segment_3"]), (3, {}, ["segment_2"])]


def test_describe_acl():
    assert describe_acl(1, {"bob": 1, "amy": 2}) == "public, shared with amy (read and write), bob (read)"
    assert describe_acl(3, {}) == "private, not shared"


def test_only_applied_resources_are_recorded_with_stable_numbers():
    history = FakeHistory()
    owned = [{"resource": "block_1", "safety_level": 1, "shared_with": {}},
             {"resource": "block_2", "safety_level": 2, "shared_with": {}}]
    payload = {"by_username": "ada", "reason": "acl"}
    record_permission_changes(history, event_id="e1", payload=payload, owned=owned, applied={"block_2"})
    (entry,) = history.inserted
    assert entry["_id"] == "e1:1" and entry["resources"] == ["block_2"] and entry["actor"] == "ada"
    assert entry["description"] == "permissions changed by ada: friendly, not shared"
