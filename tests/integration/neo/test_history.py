"""Action history (docs/neo.md, *History*): one entry per create, update, bulk update, delete, label,
unlabel and applied permission change, read by `GET /electrophysiology/<type>/<id>/history/` with
the object's read check, and per user by `/internal/history/?actor=`."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.neo.acl import ACL_QUEUE, consumers
from shared.events import make_envelope
from shared.history import HISTORY_COLLECTION, source_header
from tests.integration.neo.conftest import change, later, minimal_body
from tests.integration.neo.test_labels import FakeMetadata

_value_ids = iter(range(70_000, 80_000))


def history(api, neo_id, status=200, **params):
    type_name = neo_id.rsplit("_", 1)[0]
    response = api.get(f"{type_name}/{neo_id}/history", **params)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def entries(api, neo_id, **params) -> list[dict]:
    return history(api, neo_id, **params)["history"]


def actions(api, neo_id) -> list[str]:
    return [entry["action"] for entry in entries(api, neo_id)]


@pytest.fixture
def metadata(neo_app):
    fake = FakeMetadata()
    previous = neo_app.extensions["neo_metadata"]
    neo_app.extensions["neo_metadata"] = fake
    yield fake
    neo_app.extensions["neo_metadata"] = previous


@pytest.fixture
def acl_event(db):
    """`acl_event(*changes, by=api)` -> an `acl.permissions.changed` envelope; `deliver(envelope)` applies it."""

    def build(*changes, by=None, reason="acl"):
        payload = {"changes": list(changes), "by": by.user_id if by else None,
                   "by_username": by.username if by else None, "reason": reason}
        return make_envelope("acl.permissions.changed", payload, producer="acl", occurred_at=later())

    return build


@pytest.fixture
def deliver(db):
    """The worker's handler of `acl.permissions.changed` (the one that records history)."""
    specs = {spec.queue: spec for spec in consumers(db)}
    return specs[ACL_QUEUE].handlers["acl.permissions.changed"]


# --- what is recorded -----------------------------------------------------------------------------

def test_a_create_records_who_created_it_and_when(api):
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    signal = api.create("analogsignal")["neo_id"]
    body = history(api, signal)
    assert body["message_type"] == "history" and body["subject"] == signal and body["object_total"] == 1
    assert body["logged_in_as"] == api.username
    (entry,) = body["history"]
    assert entry["action"] == "created" and entry["user"] == api.username
    assert entry["resources"] == [signal] and entry["resources_total"] == 1 and entry["service"] == "neo"
    assert entry["description"] == f"created by {api.username}"
    assert entry["source"] == {"kind": "request"}
    assert entry["result"]["created"] == [signal]
    assert before <= datetime.fromisoformat(entry["timestamp"]) <= datetime.now(timezone.utc)
    assert entry["date"]


def test_the_entry_id_is_the_created_events_id(api, db):
    signal = api.create("analogsignal")["neo_id"]
    event_id = db["neo_analogsignal"].find_one({"neo_id": signal})["_outbox"][0]["event_id"]
    assert entries(api, signal)[0]["id"] == event_id


def test_a_list_create_is_one_entry_naming_every_object(api, db):
    response = api.post("segment", [minimal_body("segment") for _ in range(5)])
    assert response.status_code == 201, response.get_json()
    created = response.get_json()["selected"]
    found = list(db[HISTORY_COLLECTION].find({"resources": created[0]}))
    assert len(found) == 1 and found[0]["resources"] == created
    assert found[0]["result"]["created_total"] == 5
    assert [e["id"] for e in entries(api, created[-1])] == [found[0]["_id"]]


def test_a_create_from_a_conversion_names_its_source(api, db):
    response = api.post("analogsignal", minimal_body("analogsignal"), headers=source_header("conversion", "datafile_9"))
    assert response.status_code == 201, response.get_json()
    signal = response.get_json()["neo_id"]
    (entry,) = entries(api, signal)
    assert entry["source"] == {"kind": "conversion", "resource": "datafile_9"}
    assert entry["description"] == "created by the conversion of datafile 9"
    assert entry["user"] == api.username
    event = db["neo_analogsignal"].find_one({"neo_id": signal})["_outbox"][0]
    assert event["payload"]["source"] == "datafile_9"  # a string, as services/neo/events.py says


def test_an_unknown_source_header_is_a_plain_request(api, db):
    response = api.post("segment", minimal_body("segment"), headers={"X-Gnode-Source": "nonsense"})
    signal = response.get_json()["neo_id"]
    assert entries(api, signal)[0]["source"] == {"kind": "request"}
    assert db["neo_segment"].find_one({"neo_id": signal})["_outbox"][0]["payload"]["source"] is None


def test_an_update_lists_the_fields(api):
    signal = api.create("analogsignal")["neo_id"]
    response = api.post(f"analogsignal/{signal}", {"name": "Renamed", "description": "new"})
    assert response.status_code == 200, response.get_json()
    created, updated = entries(api, signal)
    assert created["action"] == "created"
    assert updated["action"] == "updated" and updated["user"] == api.username
    assert updated["result"] == {"fields": ["description", "name"]}
    assert updated["description"] == f"updated by {api.username}: description, name"


def test_a_bulk_update_is_one_entry_for_all_objects(api, db):
    segments = [api.create("segment")["neo_id"] for _ in range(3)]
    response = api.post("segment/bulk_update", {"apply_to": segments, "update": {"name": "Same"}})
    assert response.status_code == 200, response.get_json()
    found = list(db[HISTORY_COLLECTION].find({"action": "updated", "resources": segments[0]}))
    assert len(found) == 1 and found[0]["resources"] == segments
    assert found[0]["result"] == {"fields": ["name"]}
    for segment in segments:
        assert actions(api, segment) == ["created", "updated"]


def test_a_delete_is_recorded_and_kept(api, db):
    block = api.create("block")["neo_id"]
    segment = api.create("segment", block=block)["neo_id"]
    response = api.delete(f"block/{block}", cascade="true")
    assert response.status_code == 200, response.get_json()
    (entry,) = db[HISTORY_COLLECTION].find({"action": "deleted", "resources": block})
    assert entry["resources"] == [block, segment] and entry["actor"] == api.username
    assert entry["description"] == f"deleted by {api.username} with its 1 descendant(s)"
    history(api, block, status=404)  # the object is gone; its entries stay for the user history


def test_labels_record_labelled_and_unlabelled_once_per_request(api, client, db, metadata):
    value_id = next(_value_ids)
    metadata.add(value_id, owner=api.user_id)
    signals = [api.create("analogsignal")["neo_id"] for _ in range(3)]
    response = client.post("/labels/", json={"value_id": f"value_{value_id}", "apply_to": signals}, headers=api.headers)
    assert response.status_code == 201, response.get_json()
    label_id = response.get_json()["label_id"]
    (labelled,) = db[HISTORY_COLLECTION].find({"action": "labelled", "resources": signals[0]})
    assert labelled["resources"] == signals
    assert labelled["description"] == f"labelled with value {value_id} by {api.username}"
    assert labelled["result"]["value"] == f"value_{value_id}" and labelled["result"]["label"] == label_id
    response = client.delete(f"/labels/{label_id}/", json={"apply_to": signals[:1]}, headers=api.headers)
    assert response.status_code == 200, response.get_json()
    assert actions(api, signals[0]) == ["created", "labelled", "unlabelled"]
    assert actions(api, signals[1]) == ["created", "labelled"]
    response = client.delete(f"/labels/{label_id}/", headers=api.headers)
    assert response.status_code == 200, response.get_json()
    last = entries(api, signals[1])[-1]
    assert last["action"] == "unlabelled" and last["resources"] == signals[1:] and last["result"]["label_deleted"]


# --- permission changes ---------------------------------------------------------------------------

def test_an_acl_event_applied_twice_records_one_entry(api, other, db, acl_event, deliver):
    block = api.create("block")["neo_id"]
    segments = [api.create("segment", block=block)["neo_id"] for _ in range(2)]
    version = 900_000 + next(_value_ids)
    envelope = acl_event(*(change(r, api, 1, {other: 1}, version=version) for r in [block, *segments]),
                         change("section_4", api, 1, {other: 1}, version=version), by=api)
    deliver(envelope)
    deliver(envelope)  # redelivered
    found = list(db[HISTORY_COLLECTION].find({"action": "permissions_changed", "resources": block}))
    assert len(found) == 1
    (entry,) = found
    assert entry["_id"] == f"{envelope['event_id']}:0"
    assert entry["resources"] == [block, *segments]  # not section_4: not a neo object
    assert entry["actor"] == api.username
    assert entry["description"] == f"permissions changed by {api.username}: public, shared with {other.username} (read)"
    assert entry["result"] == {"safety_level": 1, "safety": "public", "shared_with": {other.username: 1}, "reason": "acl"}
    assert entry["source"] == {"kind": "acl", "reason": "acl"}


def test_an_acl_event_makes_one_entry_per_distinct_acl(api, other, db, acl_event, deliver):
    first, second = api.create("segment")["neo_id"], api.create("segment")["neo_id"]
    envelope = acl_event(change(first, api, 1), change(second, api, 3, {other: 2}), by=api)
    deliver(envelope)
    ids = sorted(e["_id"] for e in db[HISTORY_COLLECTION].find(
        {"action": "permissions_changed", "resources": {"$in": [first, second]}}))
    assert ids == [f"{envelope['event_id']}:0", f"{envelope['event_id']}:1"]
    assert entries(api, second)[-1]["description"].endswith(f"private, shared with {other.username} (read and write)")


def test_a_late_or_inherited_change(api, db, acl_event, deliver):
    segment = api.create("segment")["neo_id"]
    deliver(acl_event(change(segment, api, 1, version=50)))
    deliver(acl_event(change(segment, api, 3, version=49)))  # late: not applied, not recorded
    deliver(acl_event(change(segment, api, 2, version=51), reason="inherited"))
    recorded = [e for e in entries(api, segment) if e["action"] == "permissions_changed"]
    assert [e["result"]["safety_level"] for e in recorded] == [1, 2]
    assert recorded[1]["user"] is None
    assert recorded[1]["description"] == "permissions changed by the system (inherited): friendly"
    assert recorded[1]["result"]["reason"] == "inherited" and recorded[1]["source"] == {"kind": "acl", "reason": "inherited"}


# --- reading: dates, paging, access ---------------------------------------------------------------

def test_dates_filter_and_bad_dates_are_400(api):
    signal = api.create("analogsignal")["neo_id"]
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert len(entries(api, signal, start_date=today, end_date=today)) == 1
    assert entries(api, signal, start_date="2999-01-01") == []
    assert entries(api, signal, end_date="2000-01-01 00:00:00") == []
    bad = history(api, signal, status=400, start_date="yesterday")
    assert "start_date" in bad["message"] and bad["details"] == {"parameter": "start_date"}
    assert "end_date" in history(api, signal, status=400, end_date="13/13/2012")["message"]
    reversed_range = history(api, signal, status=400, start_date="2020-01-02", end_date="2020-01-01")
    assert "after" in reversed_range["message"]


def test_paging(api):
    segment = api.create("segment")["neo_id"]
    for name in ("a", "b", "c"):
        assert api.post(f"segment/{segment}", {"name": name}).status_code == 200
    body = history(api, segment, max_results=2, offset=1)
    assert body["object_total"] == 4 and body["selected_range"] == [1, 2]
    assert [e["action"] for e in body["history"]] == ["updated", "updated"]
    history(api, segment, status=400, max_results=0)


def test_who_may_read_the_history(api, other, users, anonymous, acl_event, deliver):
    private = api.create("segment")["neo_id"]
    history(other, private, status=403)
    history(anonymous, private, status=401)
    history(api, "segment_999999999", status=404)
    history(api, "segment_garbage", status=404)
    reader = users()
    shared = api.create("segment")["neo_id"]
    deliver(acl_event(change(shared, api, 3, {reader: 1}), by=api))
    assert [e["action"] for e in entries(reader, shared)] == ["created", "permissions_changed"]
    response = api.get(f"nosuchtype/{shared}/history")
    assert response.status_code == 404


def test_the_internal_user_history_lists_the_users_entries_only(api, other, client):
    mine = api.create("segment")["neo_id"]
    theirs = other.create("segment")["neo_id"]
    response = client.get("/internal/history/", query_string={"actor": api.username})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["total"] == 1 and [e["resources"] for e in body["history"]] == [[mine]]
    assert all(e["user"] == api.username for e in body["history"])
    assert theirs not in str(body)
    assert client.get("/internal/history/").status_code == 400


def test_saved_selections_have_an_owner_only_history(api, other, client):
    api.create("segment", name="Chosen")
    body = {"obj_type": "segment", "querysets": [{"filter": {"name": "Chosen"}}], "save_as": "mine"}
    response = client.post("/selections/", json=body, headers=api.headers)
    assert response.status_code == 201, response.get_json()
    selection = response.get_json()["selection_id"]
    answer = client.get(f"/selections/{selection}/history/", headers=api.headers)
    assert answer.status_code == 200, answer.get_json()
    assert [e["action"] for e in answer.get_json()["history"]] == ["selection_saved"]
    assert client.get(f"/selections/{selection}/history/", headers=other.headers).status_code == 403
