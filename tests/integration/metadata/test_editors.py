"""Collaborators (share level 2) edit the owner's properties and values but cannot take them away
(docs/permissions.md, "Properties and values"): deleting or moving a property, or removing a value,
is for the section's owner or for whoever owns what goes; a move never changes an owner.

Each hostile attempt is answered 403 and changes nothing (documents, versions and id counters)."""
from __future__ import annotations

import pytest

from services.metadata.acl import acl_handlers
from services.metadata.store import MetadataStore
from tests.integration.metadata.conftest import number, only
from tests.integration.metadata.test_permissions import change, envelope


@pytest.fixture
def share(db):
    """`share(section, owner, {api: level}, version)`: the acl service's change, applied as the worker would."""
    handler = acl_handlers(MetadataStore(db))["acl.permissions.changed"]

    def send(section, owner, users, version=1):
        handler(envelope("acl.permissions.changed", {"changes": [change(section, owner, version, shared=users)],
                                                     "by": None, "reason": "acl"}))

    return send


@pytest.fixture
def editor(users):
    return users()


@pytest.fixture
def shared(api, editor, share):
    """The owner's section, shared with `editor` for writing, holding the owner's property (two values)."""
    section = api.section("Experiment")
    prop = api.prop(section, "colour", ["red", "green"])
    share(section, api, {editor: 2})
    return {"section": section, "prop": prop, "red": prop["values"][0], "green": prop["values"][1]}


def property_doc(db, prop) -> dict:
    return db["properties"].find_one({"_id": number(prop["id"])}, {"_outbox": 0, "_outbox_pending": 0})


def refused(response) -> None:
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["message_type"] == "forbidden"


def test_an_editor_cannot_delete_or_move_the_owners_property_or_value_and_nothing_changes(
        api, editor, shared, share, db, counts):
    theirs = editor.section("Editor's own")
    also_shared = api.section("Another of the owner's")
    share(also_shared, api, {editor: 2})
    before, stored = counts(), property_doc(db, shared["prop"])
    path = f"properties/{shared['prop']['id']}"
    refused(editor.delete(path))
    refused(editor.post(path, {"section_id": theirs["id"]}))  # into the editor's own section
    refused(editor.post(path, {"section_id": also_shared["id"], "name": "renamed"}))  # into one they may write
    refused(editor.delete(f"values/{shared['red']['id']}"))
    # `values` replaces the list: dropping the owner's value, or replacing it, removes it
    refused(editor.post(path, {"values": ["red"]}))
    refused(editor.post(path, {"values": ["red", "blue"]}))
    refused(editor.post(path, {"values": []}))
    response = editor.post(path, {"values": ["red", "green"], "section_id": theirs["id"]})
    refused(response)
    assert counts() == before and property_doc(db, shared["prop"]) == stored
    fields = api.fields(path)
    assert (fields["section_id"], fields["owner"], [v["value"] for v in fields["values"]]) == \
        (shared["section"]["id"], api.username, ["red", "green"])


def test_an_editor_still_edits_the_owners_property_and_values(api, editor, shared):
    path = f"properties/{shared['prop']['id']}"
    assert editor.post(path, {"unit": "nm", "description": "edited"}).status_code == 200
    assert editor.post(f"values/{shared['red']['id']}", {"value": "crimson", "position": 1}).status_code == 200
    # reordering and adding keep the owner's values (equal values keep their ids and owners)
    response = editor.post(path, {"values": ["green", "crimson", "blue"]})
    assert response.status_code == 200, response.get_json()
    values = only(response.get_json())["values"]
    assert [v["id"] for v in values[:2]] == [shared["green"]["id"], shared["red"]["id"]]
    owners = [api.fields(f"values/{v['id']}")["owner"] for v in values]
    assert owners == [api.username, api.username, editor.username]
    assert api.fields(path)["owner"] == api.username


def test_an_editor_creates_deletes_and_moves_their_own(api, editor, shared, db):
    mine = editor.prop(shared["section"], "added by the editor", ["a", "b"])
    assert mine["owner"] == editor.username and mine["safety_level"] == shared["section"]["safety_level"]
    added = only(editor.post("values", {"property_id": shared["prop"]["id"], "value": "teal"}).get_json())
    assert added["owner"] == editor.username
    assert editor.delete(f"values/{added['id']}").status_code == 200  # their value in the owner's property
    theirs = editor.section("Editor's own")
    moved = editor.post(f"properties/{mine['id']}", {"section_id": theirs["id"]})
    assert moved.status_code == 200, moved.get_json()
    assert only(moved.get_json())["owner"] == editor.username
    assert api.get(f"properties/{mine['id']}").status_code == 403  # it left the owner's section
    back = editor.post(f"properties/{mine['id']}", {"section_id": shared["section"]["id"]})
    assert back.status_code == 200 and only(back.get_json())["owner"] == editor.username
    assert editor.delete(f"properties/{mine['id']}").status_code == 200


def test_an_editors_property_holding_the_owners_value_stays_for_the_owner(api, editor, shared, counts):
    mine = editor.prop(shared["section"], "added by the editor", ["a"])
    owners_value = only(api.post("values", {"property_id": mine["id"], "value": "the owner's"}).get_json())
    theirs = editor.section("Editor's own")
    before = counts()
    refused(editor.delete(f"properties/{mine['id']}"))
    refused(editor.post(f"properties/{mine['id']}", {"section_id": theirs["id"]}))
    refused(editor.delete(f"values/{owners_value['id']}"))
    refused(editor.post(f"properties/{mine['id']}", {"values": ["a"]}))
    assert counts() == before
    # the section's owner takes away anything in the section, the editor's things included
    assert api.delete(f"values/{owners_value['id']}").status_code == 200
    assert api.delete(f"properties/{mine['id']}").status_code == 200


def test_a_move_keeps_the_owner(api, editor, shared, share):
    """The owner moves their property into the editor's section (which the owner may write): it
    stays the owner's, values included; the editor, owner of that section, may now take it away."""
    target = editor.section("Editor's, shared back")
    share(target, editor, {api: 2})
    path = f"properties/{shared['prop']['id']}"
    response = api.post(path, {"section_id": target["id"]})
    assert response.status_code == 200, response.get_json()
    moved = only(response.get_json())
    assert (moved["section_id"], moved["owner"]) == (target["id"], api.username)
    assert {api.fields(f"values/{v['id']}")["owner"] for v in moved["values"]} == {api.username}
    assert editor.fields(path)["owner"] == api.username
    # an editor's property moved by the section's owner stays the editor's
    mine = editor.prop(shared["section"], "the editor's", [1])
    other_of_owner = api.section("Owner's other")
    response = api.post(f"properties/{mine['id']}", {"section_id": other_of_owner["id"]})
    assert response.status_code == 200 and only(response.get_json())["owner"] == editor.username
    assert editor.delete(path).status_code == 200  # the section's owner (editor) takes the moved one away


def test_properties_list_by_their_own_owner(api, editor, shared):
    mine = editor.prop(shared["section"], "added by the editor", [1])
    by_editor = api.get("properties", owner=editor.username).get_json()
    assert [item["fields"]["id"] for item in by_editor["selected"]] == [mine["id"]]
    by_owner = api.get("properties", owner=str(api.user_id)).get_json()
    assert [item["fields"]["id"] for item in by_owner["selected"]] == [shared["prop"]["id"]]


def test_a_property_stored_before_owners_belongs_to_its_sections_owner(api, editor, shared, db, counts):
    """Documents from before owners were recorded: the section's owner owns them and their values."""
    db["properties"].update_one({"_id": number(shared["prop"]["id"])},
                                {"$unset": {"property_owner": "", "property_owner_name": "", "values.$[].owner": "",
                                            "values.$[].owner_name": ""}})
    legacy = property_doc(db, shared["prop"])
    assert "property_owner" not in legacy and not any("owner" in entry for entry in legacy["values"])
    before = counts()
    refused(editor.delete(f"properties/{shared['prop']['id']}"))
    refused(editor.delete(f"values/{shared['red']['id']}"))
    assert counts() == before
    assert editor.fields(f"values/{shared['red']['id']}")["owner"] == api.username
    MetadataStore(db).record_property_owners()
    doc = property_doc(db, shared["prop"])
    assert (doc["property_owner"], doc["property_owner_name"]) == (api.user_id, api.username)


def test_sections_an_editor_may_not_move_or_delete_the_owners_but_their_own(api, editor, shared, share):
    """Sections have owners of their own already: a subsection an editor creates is theirs."""
    child = api.section("The owner's child", parent=shared["section"])
    share(child, api, {editor: 2})
    theirs = editor.section("Editor's root")
    refused(editor.delete(f"sections/{child['id']}", force="true"))
    refused(editor.post(f"sections/{child['id']}", {"parent_section": theirs["id"]}))
    refused(editor.post("sections", None, query={"source_section_id": child["id"], "target_section_id": theirs["id"]}))
    sub = editor.section("The editor's sub", parent=shared["section"])
    assert sub["owner"] == editor.username
    moved = editor.post(f"sections/{sub['id']}", {"parent_section": theirs["id"]})
    assert moved.status_code == 200 and only(moved.get_json())["owner"] == editor.username
    assert api.get(f"sections/{sub['id']}").status_code == 200  # a move changes no ACL: the owner still writes it
    assert editor.delete(f"sections/{sub['id']}").status_code == 409  # the owner is a collaborator of it
    assert editor.delete(f"sections/{sub['id']}", force="true").status_code == 200
