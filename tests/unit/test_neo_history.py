"""The permission entries of the action history: shared/history.py `permission_entries` (grouping the
changes and the sentences describing them) and services/neo/history.py recording the applied ones."""
from __future__ import annotations

from services.neo.history import record_permission_changes
from shared.history import permission_entries


class FakeHistory:
    def __init__(self):
        self.inserted: list[dict] = []

    def insert_one(self, entry):
        self.inserted.append(entry)


def test_changes_that_set_the_same_acl_are_one_entry_in_event_order():
    changes = [
        {"resource": "block_1", "safety_level": 1, "shared_with": {"bob": 1}},
        {"resource": "segment_2", "safety_level": 3, "shared_with": {}},
        {"resource": "segment_3", "safety_level": 1, "shared_with": {"bob": 1}},
    ]
    entries = permission_entries(changes, event_id="e1", by_username="ada", reason="acl")
    assert [(e["entry_id"], e["resources"]) for e in entries] == [("e1:0", ["block_1", "segment_3"]),
                                                                   ("e1:1", ["segment_2"])]
    first = entries[0]
    assert first["actor"] == "ada" and first["action"] == "permissions_changed"
    assert first["source"] == {"kind": "acl", "reason": "acl"}
    assert first["result"] == {"safety_level": 1, "safety": "public", "shared_with": {"bob": 1}, "reason": "acl"}


def test_descriptions():
    shared = [{"resource": "block_1", "safety_level": 2, "shared_with": {"bob": 1, "amy": 2}}]
    (entry,) = permission_entries(shared, event_id="e", by_username="ada", reason="acl")
    assert entry["description"] == "permissions changed by ada: friendly, shared with amy (read and write), bob (read)"
    private = [{"resource": "block_1", "safety_level": 3, "shared_with": {}}]
    (entry,) = permission_entries(private, event_id="e", by_username="ada", reason=None)
    assert entry["description"] == "permissions changed by ada: private" and entry["result"]["reason"] == "acl"
    public = [{"resource": "block_1", "safety_level": 1, "shared_with": None}]
    (entry,) = permission_entries(public, event_id="e", by_username=None, reason="inherited")
    assert entry["actor"] is None
    assert entry["description"] == "permissions changed by the system (inherited): public"
    assert entry["source"] == {"kind": "acl", "reason": "inherited"}


def test_the_same_shares_in_another_order_are_one_group():
    changes = [{"resource": "block_1", "safety_level": 2, "shared_with": {"bob": 1, "amy": 2}},
               {"resource": "block_2", "safety_level": 2, "shared_with": {"amy": 2, "bob": 1}}]
    (entry,) = permission_entries(changes, event_id="e", by_username="ada", reason="acl")
    assert entry["resources"] == ["block_1", "block_2"]


def test_only_applied_resources_are_recorded_with_stable_numbers():
    history = FakeHistory()
    owned = [{"resource": "block_1", "safety_level": 1, "shared_with": {}},
             {"resource": "block_2", "safety_level": 2, "shared_with": {}}]
    payload = {"by_username": "ada", "reason": "acl"}
    record_permission_changes(history, event_id="e1", payload=payload, owned=owned, applied={"block_2"})
    (entry,) = history.inserted
    assert entry["_id"] == "e1:1" and entry["resources"] == ["block_2"] and entry["actor"] == "ada"
    assert entry["description"] == "permissions changed by ada: friendly"
    assert entry["result"] == {"safety_level": 2, "safety": "friendly", "shared_with": {}, "reason": "acl"}
