"""Sections: create, read, update, envelope, ids, permissions, delete."""
from tests.integration.metadata.conftest import number, only


def test_create_returns_the_envelope_with_model_fields_and_permalink(api):
    response = api.post("sections", {
        "title": "Stimuli", "description": "This section describes the stimulus", "type": "stimuli",
        "link": "", "repository": "", "mapping": "", "reference": "",
    })
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["logged_in_as"] == api.username
    assert body["message_type"] == "object_created"
    assert body["objects_selected"] == 1 and body["selected_range"] == [0, 0]
    (item,) = body["selected"]
    assert item["model"] == "metadata.section"
    section_id = number(item["fields"]["id"])
    assert item["fields"]["id"] == f"section_{section_id}"
    assert item["permalink"] == f"/metadata/sections/{section_id}"
    assert response.headers["Location"] == f"/metadata/sections/{section_id}/"
    fields = item["fields"]
    assert fields["name"] == fields["title"] == "Stimuli"
    assert fields["description"] == "This section describes the stimulus"
    assert fields["type"] == "stimuli"
    assert fields["parent_section"] is None
    assert fields["owner"] == api.username
    assert fields["safety_level"] == 3
    assert fields["subsections"] == [] and fields["properties"] == [] and fields["datafiles"] == []
    assert len(fields["date_created"]) == 19  # YYYY-MM-DD HH:MM:SS


def test_typed_and_untyped_ids_and_trailing_slashes(api):
    section = api.section("Trial")
    n = number(section["id"])
    for path in (f"/metadata/sections/{n}", f"/metadata/sections/{n}/", f"/metadata/sections/section_{n}/"):
        response = api.client.get(path, headers=api.headers)
        assert response.status_code == 200, path
        assert only(response.get_json())["id"] == section["id"]
    assert api.get(f"sections/property_{n}").status_code == 404
    assert api.get("sections/banana").status_code == 404
    assert api.get("sections/999999999").status_code == 404


def test_parent_section_nests_and_the_parent_lists_its_children_in_order(api):
    top = api.section("Experiment")
    first = api.section("Stimulus", parent=top)
    second = api.section("Subject", parent=number(top["id"]))
    assert first["parent_section"] == top["id"]
    detail = api.fields(f"sections/{top['id']}")
    assert detail["subsections"] == [first["id"], second["id"]]
    assert (first["tree_position"], second["tree_position"]) == (0, 1)


def test_update_changes_only_the_given_fields(api):
    section = api.section("Old", description="keep me", type="t")
    response = api.post(f"sections/{section['id']}", {"title": "New"})
    assert response.status_code == 200, response.get_json()
    fields = only(response.get_json())
    assert fields["name"] == "New" and fields["description"] == "keep me" and fields["type"] == "t"
    assert response.get_json()["message_type"] == "object_updated"
    # a fetched object's fields can be posted back
    response = api.post(f"sections/{section['id']}", {**fields, "description": "changed"})
    assert response.status_code == 200, response.get_json()
    assert only(response.get_json())["description"] == "changed"


def test_bad_bodies_are_400_and_save_nothing(api, counts):
    section = api.section("Target")
    before = counts()
    cases = [
        (api.client.post("/metadata/sections/", data="{not json", headers={**api.headers, "Content-Type": "application/json"}), "invalid_json"),
        (api.client.post("/metadata/sections/", data="", headers=api.headers), "empty_body"),
        (api.post("sections", ["a list"]), "invalid_json"),
        (api.post("sections", {"name": ""}), "invalid_fields"),
        (api.post("sections", {"description": "no name"}), "invalid_fields"),
        (api.post("sections", {"name": "x", "colour": "red"}), "unknown_fields"),
        (api.post("sections", {"name": "x", "title": "y"}), "invalid_fields"),
        (api.post("sections", {"name": "x", "description": 12}), "invalid_fields"),
        (api.post("sections", {"name": "x", "parent_section": "property_3"}), "invalid_fields"),
        (api.post("sections", {"name": "x", "tree_position": -1}), "invalid_fields"),
        (api.post(f"sections/{section['id']}", {}), "empty_update"),
        (api.post(f"sections/{section['id']}", {"name": 5}), "invalid_fields"),
        (api.client.post(f"/metadata/sections/{section['id']}/", data="[", headers={**api.headers, "Content-Type": "application/json"}), "invalid_json"),
    ]
    for response, message_type in cases:
        assert response.status_code == 400, response.get_json()
        assert response.get_json()["message_type"] == message_type, response.get_json()
        assert response.get_json()["message"]
    assert counts() == before


def test_unknown_parent_is_404_and_saves_nothing(api, counts):
    before = counts()
    response = api.post("sections", {"name": "Orphan", "parent_section": "section_987654321"})
    assert response.status_code == 404
    assert response.get_json()["message_type"] == "unknown_section"
    assert counts() == before


def test_sibling_names_are_unique_as_in_odml(api, other):
    top = api.section("Top")
    api.section("Child", parent=top)
    response = api.post("sections", {"name": "Child", "parent_section": top["id"]})
    assert response.status_code == 409
    assert response.get_json()["message_type"] == "name_taken"
    api.section("Child")  # the root is another place
    other.section("Top")  # and every user has their own root
    sibling = api.section("Sibling", parent=top)
    assert api.post(f"sections/{sibling['id']}", {"name": "Child"}).status_code == 409


def test_writes_need_a_logged_in_user_and_anonymous_reads_see_nothing_private(anonymous, api):
    section = api.section("Private")
    for method, path in [("post", "sections"), ("get", f"sections/{section['id']}"),
                         ("delete", f"sections/{section['id']}"), ("post", f"sections/{section['id']}"),
                         ("post", "import"), ("get", f"sections/{section['id']}/export"), ("post", "properties"),
                         ("post", "values")]:
        response = getattr(anonymous, method)(path)
        assert response.status_code == 401, (method, path)
        assert response.get_json()["message_type"] == "not_authenticated"
    for path in ("sections", "properties", "values"):
        response = anonymous.get(path, recursive="true") if path == "sections" else anonymous.get(path)
        assert response.status_code == 200, path
        assert section["id"] not in [item["fields"]["id"] for item in response.get_json()["selected"]]
    assert anonymous.get("export").status_code == 200


def test_others_cannot_read_or_change_a_private_section_but_can_read_a_public_one(api, other, db):
    section = api.section("Mine")
    child_path = f"sections/{section['id']}"
    assert other.get(child_path).status_code == 403
    assert other.post(child_path, {"name": "theirs"}).status_code == 403
    assert other.post("sections", {"name": "inside", "parent_section": section["id"]}).status_code == 403
    assert other.delete(child_path).status_code == 403
    db["sections"].update_one({"_id": number(section["id"])}, {"$set": {"safety_level": 1}})
    assert other.get(child_path).status_code == 200
    assert other.post(child_path, {"name": "theirs"}).status_code == 403


def test_a_writer_may_add_and_the_parent_owner_keeps_access(api, other, db):
    section = api.section("Shared")
    db["sections"].update_one({"_id": number(section["id"])},
                              {"$set": {"shared_with": {other.username: 2}, "readers": [other.user_id], "writers": [other.user_id]}})
    child = other.section("By the collaborator", parent=section)
    assert child["owner"] == other.username
    assert api.fields(f"sections/{child['id']}")["name"] == "By the collaborator"
    assert api.post(f"sections/{child['id']}", {"description": "edited by the parent's owner"}).status_code == 200


def test_delete_removes_the_subtree_with_properties_and_values(api, db):
    top = api.section("Top")
    child = api.section("Child", parent=top)
    grandchild = api.section("Grandchild", parent=child)
    prop = api.prop(grandchild, "colour", ["red", "green"])
    keep = api.section("Keep")
    response = api.delete(f"sections/{top['id']}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "object_deleted"
    assert set(body["deleted"]) == {top["id"], child["id"], grandchild["id"]}
    assert body["deleted"][0] == grandchild["id"]  # deepest first
    assert (body["properties_deleted"], body["values_deleted"]) == (1, 2)
    for path in (f"sections/{top['id']}", f"sections/{grandchild['id']}", f"properties/{prop['id']}",
                 f"values/{prop['values'][0]['id']}"):
        assert api.get(path).status_code == 404, path
    assert api.names() == ["Keep"]
    assert api.get(f"sections/{keep['id']}").status_code == 200
    # the deleted events wait in the outbox of the tombstoned sections
    doc = db["sections"].find_one({"_id": number(grandchild["id"])})
    assert doc["_tombstone"] is True
    (envelope,) = [e for e in doc["_outbox"] if e["type"] == "metadata.section.deleted"]
    assert envelope["payload"]["property_ids"] == [number(prop["id"])]
    assert envelope["payload"]["value_ids"] == [number(v["id"]) for v in prop["values"]]


def test_delete_with_collaborators_needs_force_and_is_for_the_owner_only(api, other, db, counts):
    top = api.section("Top")
    child = api.section("Child", parent=top)
    db["sections"].update_one({"_id": number(child["id"])},
                              {"$set": {"shared_with": {other.username: 2}, "readers": [other.user_id], "writers": [other.user_id]}})
    assert other.delete(f"sections/{child['id']}").status_code == 403
    before = counts()
    response = api.delete(f"sections/{top['id']}")
    assert response.status_code == 409
    assert response.get_json()["message_type"] == "has_collaborators"
    assert response.get_json()["details"]["collaborators"] == [other.user_id]
    assert counts() == before
    assert api.delete(f"sections/{top['id']}", force="maybe").status_code == 400
    response = api.delete(f"sections/{top['id']}", force="true")
    assert response.status_code == 200
    assert set(response.get_json()["deleted"]) == {top["id"], child["id"]}


def test_a_section_made_by_a_collaborator_below_counts_as_collaboration(api, other, db):
    top = api.section("Top")
    db["sections"].update_one({"_id": number(top["id"])},
                              {"$set": {"shared_with": {other.username: 2}, "readers": [other.user_id], "writers": [other.user_id]}})
    other.section("Theirs", parent=top)
    db["sections"].update_one({"_id": number(top["id"])}, {"$set": {"shared_with": {}, "readers": [], "writers": []}})
    response = api.delete(f"sections/{top['id']}")
    assert response.status_code == 409
    assert response.get_json()["details"]["sections_of_others"]
    assert api.delete(f"sections/{top['id']}", force="1").status_code == 200


def test_create_records_the_created_event_in_the_outbox(api, db):
    top = api.section("Top")
    child = api.section("Child", parent=top)
    doc = db["sections"].find_one({"_id": number(child["id"])})
    (envelope,) = doc["_outbox"]
    assert envelope["type"] == "metadata.section.created"
    assert envelope["producer"] == "metadata"
    assert envelope["payload"] == {
        "section_id": number(child["id"]), "owner": api.user_id, "parent_section": number(top["id"]),
        "ancestors": [number(top["id"])], "source": "api", "copied_from": None, "datafile_ids": [],
        "acl": {"owner": api.user_id, "safety_level": 3, "shared_with": {}, "readers": [], "writers": []},
    }
