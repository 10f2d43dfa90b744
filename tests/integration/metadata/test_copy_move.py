"""Copy and move with source_section_id / target_section_id / mode and every flag combination."""
import itertools

import pytest

from services.metadata.links import handlers
from services.metadata.store import MetadataStore
from tests.integration.metadata.conftest import number, only

FLAGS = list(itertools.product([True, False], repeat=3))  # with_properties, with_datafiles, recursive


def snapshot(api, section_id) -> dict:
    """A section and everything below it, by names (ids differ between a source and its copy)."""
    fields = api.fields(f"sections/{section_id}")
    props = {}
    for property_id in fields["properties"]:
        prop = api.fields(f"properties/{property_id}")
        props[prop["name"]] = (prop["dtype"], prop["unit"], [v["value"] for v in prop["values"]])
    return {
        "name": fields["name"],
        "description": fields["description"],
        "properties": props,
        "datafiles": fields["datafiles"],
        "children": [snapshot(api, child) for child in fields["subsections"]],
    }


def link(db, section, datafile_id, event="files.datafile.created"):
    table = handlers(MetadataStore(db))
    table[event]({"payload": {"datafile_id": datafile_id, "section_id": section["id"]}})


@pytest.fixture
def tree(api, db, files):
    source = api.section("Source", description="the original")
    api.prop(source, "colour", ["red", "green"])
    api.prop(source, "duration", [1.5, 2.0], dtype="float", unit="ms")
    first = api.section("First", parent=source)
    api.prop(first, "count", [1, 2, 3], dtype="int")
    grand = api.section("Grand", parent=first)
    api.prop(grand, "position", ["(1;2;3)"], dtype="3-tuple")
    second = api.section("Second", parent=source)
    target = api.section("Target")
    existing = api.section("Existing", parent=target)
    link(db, source, 11)
    link(db, first, 13)
    files.publish(11, 13)
    return {"source": source, "first": first, "grand": grand, "second": second, "target": target,
            "existing": existing}


def expected_copy(original: dict, *, with_properties, with_datafiles, recursive, top=True) -> dict:
    return {
        **original,
        "properties": original["properties"] if with_properties else {},
        "datafiles": original["datafiles"] if with_datafiles else [],
        "children": [expected_copy(c, with_properties=with_properties, with_datafiles=with_datafiles,
                                   recursive=recursive, top=False) for c in original["children"]] if recursive else [],
    }


@pytest.mark.parametrize("with_properties,with_datafiles,recursive", FLAGS)
def test_copy_every_flag_combination(api, tree, with_properties, with_datafiles, recursive, counts):
    original = snapshot(api, tree["source"]["id"])
    assert original["datafiles"] == ["datafile_11"]
    response = api.post("sections", None, query={
        "source_section_id": tree["source"]["id"], "target_section_id": tree["target"]["id"], "mode": "copy",
        "with_properties": str(with_properties).lower(), "with_datafiles": str(with_datafiles).lower(),
        "recursive": str(recursive).lower(),
    })
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "object_copied"
    copy = only(body)
    assert copy["id"] != tree["source"]["id"]
    assert copy["parent_section"] == tree["target"]["id"]
    assert copy["owner"] == api.username
    assert copy["tree_position"] == 1  # after "Existing": sibling order kept, the copy comes last
    assert len(body["sections_created"]) == (4 if recursive else 1)
    assert snapshot(api, copy["id"]) == expected_copy(original, with_properties=with_properties,
                                                      with_datafiles=with_datafiles, recursive=recursive)
    assert snapshot(api, tree["source"]["id"]) == original  # the source is untouched
    assert api.fields(f"sections/{tree['target']['id']}")["subsections"] == [tree["existing"]["id"], copy["id"]]
    if with_properties:
        # new properties and values, not the source's
        copied = api.get("properties", section_id=copy["id"]).get_json()["selected"]
        source_props = api.get("properties", section_id=tree["source"]["id"]).get_json()["selected"]
        assert {p["fields"]["id"] for p in copied}.isdisjoint({p["fields"]["id"] for p in source_props})
        copied_values = {v["id"] for p in copied for v in p["fields"]["values"]}
        assert copied_values.isdisjoint({v["id"] for p in source_props for v in p["fields"]["values"]})
    if recursive:
        # the copied subtree is found by one query on ancestors
        assert sorted(api.names(section_id=copy["id"], recursive="true")) == ["First", "Grand", "Second"]


@pytest.mark.parametrize("with_properties,with_datafiles,recursive", FLAGS)
def test_move_every_flag_combination_moves_everything(api, tree, with_properties, with_datafiles, recursive):
    """The copy flags mean nothing to a move (seed: "in copy mode"): the whole subtree moves, with
    its properties, values and datafile links, and keeps its ids."""
    original = snapshot(api, tree["source"]["id"])
    response = api.post("sections", {}, query={
        "source_section_id": tree["source"]["id"], "target_section_id": tree["target"]["id"], "mode": "move",
        "with_properties": str(with_properties).lower(), "with_datafiles": str(with_datafiles).lower(),
        "recursive": str(recursive).lower(),
    })
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["message_type"] == "object_moved"
    moved = only(response.get_json())
    assert moved["id"] == tree["source"]["id"]
    assert moved["parent_section"] == tree["target"]["id"]
    assert moved["tree_position"] == 1
    assert snapshot(api, moved["id"]) == original
    assert "Source" not in api.names()  # no longer at the root
    assert sorted(api.names(section_id=tree["target"]["id"], recursive="true")) == [
        "Existing", "First", "Grand", "Second", "Source"]
    props = api.get("properties", section_id=tree["target"]["id"], recursive="true").get_json()["selected"]
    assert sorted(p["fields"]["name"] for p in props) == ["colour", "count", "duration", "position"]


def test_move_is_the_default_mode(api, tree):
    response = api.post("sections", None, query={"source_section_id": tree["second"]["id"],
                                                 "target_section_id": tree["target"]["id"]})
    assert response.status_code == 200
    assert only(response.get_json())["parent_section"] == tree["target"]["id"]
    assert api.fields(f"sections/{tree['source']['id']}")["subsections"] == [tree["first"]["id"]]


def test_move_to_the_root_and_by_updating_parent_section(api, tree, db):
    response = api.post("sections", None, query={"source_section_id": tree["first"]["id"]})
    assert response.status_code == 200
    assert only(response.get_json())["parent_section"] is None
    assert "First" in api.names()
    grand = db["sections"].find_one({"_id": number(tree["grand"]["id"])})
    assert grand["ancestors"] == [number(tree["first"]["id"])] and grand["depth"] == 1
    response = api.post(f"sections/{tree['first']['id']}", {"parent_section": tree["target"]["id"], "description": "moved"})
    assert response.status_code == 200, response.get_json()
    assert only(response.get_json())["description"] == "moved"
    grand = db["sections"].find_one({"_id": number(tree["grand"]["id"])})
    assert grand["ancestors"] == [number(tree["target"]["id"]), number(tree["first"]["id"])]
    prop = db["properties"].find_one({"section": number(tree["grand"]["id"])})
    assert prop["ancestors"] == [*grand["ancestors"], number(tree["grand"]["id"])]
    doc = db["sections"].find_one({"_id": number(tree["first"]["id"])})
    moves = [e["payload"] for e in doc["_outbox"] if e["type"] == "metadata.section.moved"]
    assert moves[-1] == {"section_id": number(tree["first"]["id"]), "owner": api.user_id, "from_parent": None,
                         "to_parent": number(tree["target"]["id"]),
                         "ancestors": [number(tree["target"]["id"])]}


@pytest.mark.parametrize("target", ["source", "first", "grand"])
def test_a_move_that_would_make_a_cycle_is_400_and_changes_nothing(api, tree, target, counts):
    before = counts()
    response = api.post("sections", None, query={"source_section_id": tree["source"]["id"],
                                                 "target_section_id": tree[target]["id"]})
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "cycle"
    response = api.post(f"sections/{tree['source']['id']}", {"parent_section": tree[target]["id"]})
    assert response.status_code == 400
    assert counts() == before


def test_unknown_sections_and_bad_parameters(api, tree, counts):
    before = counts()
    for query, status, message_type in [
        ({"source_section_id": "section_987654", "target_section_id": tree["target"]["id"]}, 404, "unknown_section"),
        ({"source_section_id": tree["source"]["id"], "target_section_id": "987654"}, 404, "unknown_section"),
        ({"source_section_id": tree["source"]["id"], "target_section_id": "987654", "mode": "copy"}, 404, "unknown_section"),
        ({"source_section_id": "value_3"}, 400, "invalid_id"),
        ({"source_section_id": tree["source"]["id"], "mode": "clone"}, 400, "invalid_parameter"),
        ({"source_section_id": tree["source"]["id"], "mode": "copy", "recursive": "perhaps"}, 400, "invalid_parameter"),
        ({"target_section_id": tree["target"]["id"]}, 400, "invalid_parameter"),
        ({"source_section_id": tree["source"]["id"], "colour": "red"}, 400, "invalid_parameter"),
    ]:
        response = api.post("sections", None, query=query)
        assert response.status_code == status, (query, response.get_json())
        assert response.get_json()["message_type"] == message_type, (query, response.get_json())
    response = api.client.post("/metadata/sections/", data="{oops", query_string={"source_section_id": tree["source"]["id"]},
                               headers={**api.headers, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.get_json()["message_type"] == "invalid_json"
    response = api.post("sections", {"parent_section": tree["second"]["id"]},
                        query={"source_section_id": tree["source"]["id"], "target_section_id": tree["target"]["id"]})
    assert response.status_code == 400
    assert counts() == before


def test_body_attributes_go_to_the_copy_and_names_stay_unique(api, tree):
    query = {"source_section_id": tree["source"]["id"], "mode": "copy"}
    response = api.post("sections", {"name": "From template", "description": "a copy"}, query=query)
    assert response.status_code == 201, response.get_json()
    copy = only(response.get_json())
    assert (copy["name"], copy["description"], copy["parent_section"]) == ("From template", "a copy", None)
    # without a name, a copy next to its original is renamed as odML wants unique sibling names
    names = [only(api.post("sections", None, query=query).get_json())["name"] for _ in range(2)]
    assert names == ["Source (2)", "Source (3)"]
    assert api.post("sections", {"name": "Target"}, query=query).status_code == 409
    # the copy parameters may also come in the body
    response = api.post("sections", {"source_section_id": tree["source"]["id"], "mode": "copy",
                                     "target_section_id": tree["target"]["id"], "recursive": True})
    assert response.status_code == 201
    assert len(response.get_json()["sections_created"]) == 4


def test_a_move_onto_a_taken_name_is_409_and_changes_nothing(api, tree, counts):
    api.section("Source", parent=tree["target"])
    before = counts()
    response = api.post("sections", None, query={"source_section_id": tree["source"]["id"],
                                                 "target_section_id": tree["target"]["id"]})
    assert response.status_code == 409
    assert counts() == before


def test_a_recursive_copy_into_its_own_subtree_copies_the_tree_as_it_was(api, tree):
    response = api.post("sections", None, query={"source_section_id": tree["source"]["id"],
                                                 "target_section_id": tree["grand"]["id"], "mode": "copy",
                                                 "recursive": "true"})
    assert response.status_code == 201, response.get_json()
    assert len(response.get_json()["sections_created"]) == 4
    copy = only(response.get_json())
    assert [c["name"] for c in snapshot(api, copy["id"])["children"]] == ["First", "Second"]


def test_others_may_copy_what_they_can_read_but_not_move_it(api, other, tree, db):
    source = tree["source"]
    query = {"source_section_id": source["id"], "mode": "copy", "recursive": "true"}
    assert other.post("sections", None, query=query).status_code == 403
    db["sections"].update_many({"$or": [{"_id": number(source["id"])}, {"ancestors": number(source["id"])}]},
                               {"$set": {"safety_level": 1}})
    db["properties"].update_many({"ancestors": number(source["id"])}, {"$set": {"safety_level": 1}})
    db["sections"].update_one({"_id": number(tree["second"]["id"])}, {"$set": {"safety_level": 3}})
    response = other.post("sections", None, query=query)
    assert response.status_code == 201, response.get_json()
    copy = only(response.get_json())
    assert copy["owner"] == other.username and copy["safety_level"] == 3
    # only what they may read is copied
    assert [c["name"] for c in snapshot(other, copy["id"])["children"]] == ["First"]
    assert other.post("sections", None, query={"source_section_id": source["id"]}).status_code == 403
    assert other.post("sections", None, query={"source_section_id": source["id"], "mode": "copy",
                                                "target_section_id": tree["target"]["id"]}).status_code == 403


def test_copy_size_is_limited(make_app, api, tree, users):
    small = make_app(TREE_MAX_SECTIONS=2).test_client()
    small_api = type(api)(small, api.headers)
    response = small_api.post("sections", None, query={"source_section_id": tree["source"]["id"], "mode": "copy",
                                                       "recursive": "true"})
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "too_many_sections"


def test_datafile_links_follow_the_files_events(api, db, files):
    one, two = api.section("One"), api.section("Two")
    files.publish(5)
    link(db, one, 5)
    link(db, one, 5)  # a repeated event changes nothing
    assert api.fields(f"sections/{one['id']}")["datafiles"] == ["datafile_5"]
    table = handlers(MetadataStore(db))
    table["files.datafile.moved"]({"payload": {"datafile_id": "datafile_5", "section_id": two["id"]}})
    assert api.fields(f"sections/{one['id']}")["datafiles"] == []
    assert api.fields(f"sections/{two['id']}")["datafiles"] == ["datafile_5"]
    response = api.post("sections", None, query={"source_section_id": two["id"], "mode": "copy", "with_datafiles": "1"})
    copy = only(response.get_json())
    assert copy["datafiles"] == ["datafile_5"]
    table["files.datafile.updated"]({"payload": {"datafile_id": 5, "caption": "no section change"}})
    assert api.fields(f"sections/{two['id']}")["datafiles"] == ["datafile_5"]
    table["files.datafile.deleted"]({"payload": {"datafile_id": 5}})
    assert api.fields(f"sections/{two['id']}")["datafiles"] == []
    assert api.fields(f"sections/{copy['id']}")["datafiles"] == []
