"""The action history of sections, properties and values (docs/metadata.md, History).

The acl consumer's handler is called directly with envelopes, as the worker's consumer would.
"""
from __future__ import annotations

import datetime as dt
import uuid

import odml
import pytest
from odml.tools import ODMLWriter

from services.metadata.acl import acl_handlers
from services.metadata.store import MetadataStore
from shared.history import SOURCE_HEADER
from tests.integration.metadata.conftest import number, only


def history(api, path: str, **params):
    return api.get(f"{path.rstrip('/')}/history", **params)


def entries(api, path: str, **params) -> list[dict]:
    response = history(api, path, **params)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "history"
    return body["history"]


def actions(api, path: str) -> list[str]:
    return [e["action"] for e in entries(api, path)]


def acl_event(changes: list[dict], *, by_username=None, reason="acl") -> dict:
    return {"event_id": uuid.uuid4().hex, "type": "acl.permissions.changed", "occurred_at": "2030-01-01T00:00:00Z",
            "producer": "acl", "payload": {"changes": changes, "by": None, "by_username": by_username, "reason": reason}}


def change(section, owner, version, *, safety_level=3, shared=None) -> dict:
    shared = shared or {}
    return {"resource": section["id"], "owner": owner.user_id, "safety_level": safety_level,
            "shared_with": {u.username: level for u, level in shared.items()},
            "readers": [u.user_id for u in shared], "writers": [u.user_id for u, level in shared.items() if level == 2],
            "version": version}


@pytest.fixture
def permissions_changed(db):
    return acl_handlers(MetadataStore(db))["acl.permissions.changed"]


# --- sections -------------------------------------------------------------------------------------

def test_section_create_update_move_delete_are_recorded_with_actor_and_date(api):
    recordings = api.section("Recording")
    target = api.section("Target")
    assert api.post(f"sections/{number(recordings['id'])}", {"description": "day one"}).status_code == 200
    moved = api.post(f"sections/{number(recordings['id'])}", {"parent_section": target["id"]})
    assert moved.status_code == 200, moved.get_json()

    found = entries(api, f"sections/{number(recordings['id'])}")
    assert [e["action"] for e in found] == ["created", "updated", "moved"]
    assert all(e["user"] == api.username and e["service"] == "metadata" for e in found)
    assert all(e["source"] == {"kind": "request"} for e in found)
    assert found[0]["description"] == f"section 'Recording' created in the root by {api.username}"
    assert found[1]["result"] == {"fields": ["description"]}
    assert found[2]["description"] == f"section 'Recording' moved into section {number(target['id'])} by {api.username}"
    assert found[2]["result"]["to"] == target["id"] and found[2]["result"]["from"] is None
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    assert all(e["date"].startswith(today) for e in found)
    # The target's history shows what moved into it.
    assert actions(api, f"sections/{number(target['id'])}") == ["created", "moved"]

    deleted = api.delete(f"sections/{number(target['id'])}")
    assert deleted.status_code == 200
    # The history of a deleted section is gone with it (as its GET); the entry is in the user's history.
    assert history(api, f"sections/{number(target['id'])}").status_code == 404


def test_a_subtree_delete_is_one_entry_naming_everything_that_went(api, client):
    top = api.section("Top")
    child = api.section("Child", parent=top)
    grandchild = api.section("Grandchild", parent=child)
    prop = api.prop(grandchild, "weight", [1.5, 2.5])
    assert api.delete(f"sections/{number(top['id'])}").status_code == 200

    response = client.get("/internal/history/", query_string={"actor": api.username})
    deletes = [e for e in response.get_json()["history"] if e["action"] == "deleted"]
    assert len(deletes) == 1
    entry = deletes[0]
    assert set(entry["resources"]) == {top["id"], child["id"], grandchild["id"], prop["id"],
                                       *(v["id"] for v in prop["values"])}
    assert entry["result"]["deleted"][-1] == top["id"]  # deepest first
    assert entry["description"] == f"section 'Top' deleted by {api.username}, with 2 subsection(s), 1 propertie(s) and 2 value(s)"


def test_a_copy_is_one_created_entry_with_the_original_in_its_result(api):
    original = api.section("Original")
    api.section("Inside", parent=original)
    response = api.post("sections", query={"source_section_id": original["id"], "mode": "copy", "recursive": "true"})
    assert response.status_code == 201, response.get_json()
    copy = only(response.get_json())
    found = entries(api, f"sections/{number(copy['id'])}")
    assert [e["action"] for e in found] == ["created"]
    assert found[0]["result"]["copied_from"] == original["id"]
    assert len(found[0]["result"]["created"]) == 2
    # The original did not change: its own create and its child's, nothing of the copy.
    assert actions(api, f"sections/{number(original['id'])}") == ["created", "created"]


# --- properties and values -------------------------------------------------------------------------

def test_property_history_shows_its_create_update_and_its_values_changes(api):
    section = api.section("Subject")
    prop = api.prop(section, "weight", [7.5])
    assert api.post(f"properties/{number(prop['id'])}", {"unit": "kg"}).status_code == 200
    added = api.post("values", {"property_id": prop["id"], "value": 8.0})
    assert added.status_code == 201
    value = only(added.get_json())
    assert api.post(f"values/{number(value['id'])}", {"value": 8.25}).status_code == 200

    found = entries(api, f"properties/{number(prop['id'])}")
    assert [e["action"] for e in found] == ["created", "updated", "created", "updated"]
    assert found[0]["result"]["created"] == [prop["id"], prop["values"][0]["id"]]
    assert found[1]["result"]["fields"] == ["unit"]
    assert [e["action"] for e in entries(api, f"values/{number(value['id'])}")] == ["created", "updated"]
    assert entries(api, f"values/{number(value['id'])}")[1]["result"] == {"fields": ["value"]}
    # The inline value's history is its property's create.
    assert actions(api, f"values/{number(prop['values'][0]['id'])}") == ["created"]
    # The section sees the property created in it.
    assert actions(api, f"sections/{number(section['id'])}") == ["created", "created"]

    assert api.delete(f"values/{number(value['id'])}").status_code == 200
    assert actions(api, f"properties/{number(prop['id'])}")[-1] == "deleted"


def test_a_property_moved_to_another_section_names_both(api):
    first, second = api.section("First"), api.section("Second")
    prop = api.prop(first, "colour", ["red"])
    assert api.post(f"properties/{number(prop['id'])}", {"section_id": second["id"]}).status_code == 200
    entry = entries(api, f"properties/{number(prop['id'])}")[-1]
    assert entry["action"] == "moved"
    assert {first["id"], second["id"], prop["id"]} <= set(entry["resources"])
    assert actions(api, f"sections/{number(second['id'])}")[-1] == "moved"


# --- odML import and the source header --------------------------------------------------------------

def _document() -> str:
    doc = odml.Document(author="Ada")
    experiment = odml.Section(name="Experiment", parent=doc)
    odml.Property(name="species", values=["Macaca mulatta"], dtype="string", parent=experiment)
    odml.Section(name="Stimulus", parent=experiment)
    odml.Section(name="Subject", parent=doc)
    return ODMLWriter("XML").to_string(doc)


def test_an_odml_import_is_one_entry_with_its_source_from_the_header(api, client):
    response = client.post("/internal/import/", query_string={"format": "xml"}, data=_document(),
                           headers={**api.headers, SOURCE_HEADER: "odml_import:datafile_9"})
    assert response.status_code == 201, response.get_json()
    created = response.get_json()["sections_created"]
    assert len(created) == 3

    listed = client.get("/internal/history/", query_string={"actor": api.username}).get_json()
    assert listed["total"] == 1
    entry = listed["history"][0]
    assert entry["action"] == "imported"
    assert entry["source"] == {"kind": "odml_import", "resource": "datafile_9"}
    assert "the odML import of datafile 9" in entry["description"]
    assert entry["result"]["created"] == created
    for section_id in created:
        assert entries(api, f"sections/{number(section_id)}") == [entry]


def test_a_create_names_the_job_it_was_made_for(api):
    response = api.post("sections", {"name": "From conversion"})
    plain = only(response.get_json())
    headers = {**api.headers, SOURCE_HEADER: "conversion:datafile_4"}
    converted = api.client.post("/metadata/properties/", json={"section_id": plain["id"], "name": "rate"},
                                headers=headers)
    assert converted.status_code == 201
    entry = entries(api, f"properties/{number(only(converted.get_json())['id'])}")[0]
    assert entry["source"] == {"kind": "conversion", "resource": "datafile_4"}
    assert entry["description"].endswith("for the conversion of datafile 4 with 0 value(s)")
    # An unknown or malformed source is a plain request.
    odd = api.client.post("/metadata/sections/", json={"name": "Odd"}, headers={**api.headers, SOURCE_HEADER: "nonsense"})
    assert entries(api, f"sections/{number(only(odd.get_json())['id'])}")[0]["source"] == {"kind": "request"}


def test_make_path_records_the_sections_it_creates_once(api, client):
    response = client.post("/internal/sections/", json={"path": "a/b/c"},
                           headers={**api.headers, SOURCE_HEADER: "odml_import:datafile_2"})
    assert response.status_code == 201, response.get_json()
    again = client.post("/internal/sections/", json={"path": "a/b/c"}, headers=api.headers)
    assert again.status_code == 200
    listed = client.get("/internal/history/", query_string={"actor": api.username}).get_json()
    assert [e["action"] for e in listed["history"]] == ["created"]
    assert listed["history"][0]["resources_total"] == 3


# --- permissions ---------------------------------------------------------------------------------

def test_a_permission_event_applied_twice_records_one_entry_per_group(api, users, permissions_changed):
    bob = users()
    one, two, three = api.section("One"), api.section("Two"), api.section("Three")
    event = acl_event([change(one, api, 1, safety_level=2, shared={bob: 1}),
                       change(two, api, 1, safety_level=2, shared={bob: 1}),
                       change(three, api, 1, safety_level=1)], by_username=api.username)
    permissions_changed(event)
    permissions_changed(event)  # redelivered

    first = [e for e in entries(api, f"sections/{number(one['id'])}") if e["action"] == "permissions_changed"]
    assert len(first) == 1
    assert first[0]["id"] == f"{event['event_id']}:0"
    assert first[0]["user"] == api.username
    assert first[0]["description"] == f"permissions changed by {api.username}: friendly, shared with {bob.username} (read)"
    assert set(first[0]["resources"]) == {one["id"], two["id"]}
    third = [e for e in entries(api, f"sections/{number(three['id'])}") if e["action"] == "permissions_changed"]
    assert [e["id"] for e in third] == [f"{event['event_id']}:1"]
    assert third[0]["result"] == {"safety_level": 1, "safety": "public", "shared_with": {}, "reason": "acl"}
    assert third[0]["source"] == {"kind": "acl", "reason": "acl"}


def test_system_and_late_permission_changes(api, permissions_changed):
    section = api.section("Inherited")
    permissions_changed(acl_event([change(section, api, 2, safety_level=1)], reason="inherited"))
    late = acl_event([change(section, api, 1, safety_level=3)])
    permissions_changed(late)  # older than what is in force: not applied, yet it happened

    found = [e for e in entries(api, f"sections/{number(section['id'])}") if e["action"] == "permissions_changed"]
    assert len(found) == 2 and f"{late['event_id']}:0" in {e["id"] for e in found}
    inherited = next(e for e in found if e["user"] is None)
    assert inherited["description"] == "permissions changed by the system (inherited): public"


def test_other_services_resources_are_not_recorded(api, client, permissions_changed):
    permissions_changed(acl_event([{"resource": "datafile_3", "owner": api.user_id, "safety_level": 1,
                                    "shared_with": {}, "readers": [], "writers": [], "version": 1}],
                                  by_username=api.username))
    assert client.get("/internal/history/", query_string={"actor": api.username}).get_json()["total"] == 0


# --- dates and paging ------------------------------------------------------------------------------

def test_date_filters(api):
    section = api.section("Dated")
    path = f"sections/{number(section['id'])}"
    today = dt.datetime.now(dt.timezone.utc).date()
    assert len(entries(api, path, start_date=str(today), end_date=str(today))) == 1
    assert entries(api, path, start_date=str(today + dt.timedelta(days=1))) == []
    assert entries(api, path, end_date=str(today - dt.timedelta(days=1))) == []

    bad = history(api, path, start_date="yesterday")
    assert bad.status_code == 400
    assert bad.get_json()["message_type"] == "invalid_parameter"
    assert "start_date" in bad.get_json()["message"]
    reversed_ = history(api, path, start_date="2030-01-02", end_date="2030-01-01")
    assert reversed_.status_code == 400
    assert "start_date" in reversed_.get_json()["message"]
    assert history(api, path, max_results="0").status_code == 400


def test_paging(api):
    section = api.section("Paged")
    for n in range(3):
        assert api.post(f"sections/{number(section['id'])}", {"description": f"v{n}"}).status_code == 200
    body = history(api, f"sections/{number(section['id'])}", max_results=2, offset=1).get_json()
    assert body["object_total"] == 4
    assert [e["action"] for e in body["history"]] == ["updated", "updated"]
    assert body["selected_range"] == [1, 2]


# --- who may read it -------------------------------------------------------------------------------

def test_history_needs_read_access(api, users, anonymous, permissions_changed):
    stranger, reader = users(), users()
    section = api.section("Private")
    prop = api.prop(section, "secret", ["x"])
    paths = [f"sections/{number(section['id'])}", f"properties/{number(prop['id'])}",
             f"values/{number(prop['values'][0]['id'])}"]
    for path in paths:
        assert history(api, path).status_code == 200
        assert history(stranger, path).status_code == 403
        assert history(anonymous, path).status_code == 401
        assert history(reader, path).status_code == 403
    permissions_changed(acl_event([change(section, api, 1, shared={reader: 1})], by_username=api.username))
    for path in paths:
        assert history(reader, path).status_code == 200
    assert history(api, "sections/999999999").status_code == 404
    assert history(api, "sections/nonsense").status_code == 404


def test_internal_history_lists_only_that_actor(api, other, client):
    api.section("Mine")
    other.section("Theirs")
    listed = client.get("/internal/history/", query_string={"actor": api.username}).get_json()
    assert listed["total"] == 1
    assert all(e["user"] == api.username for e in listed["history"])
    assert client.get("/internal/history/").status_code == 400
