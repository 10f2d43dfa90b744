"""Bodies, ids, copy/move parameters and search text of the metadata service: no I/O."""
import pytest

from services.metadata.fields import MISSING, parse_property_body, parse_section_body, parse_value_body
from services.metadata.ids import InvalidId, parse_id, parse_optional_section, typed
from services.metadata.search import property_search_text, q_clauses, section_search_text
from services.metadata.sections import check_no_cycle, connected, inherited_acl, parse_copy_move
from services.metadata.serialise import property_fields, section_fields, value_fields
from shared.errors import BadRequest
from shared.identity import Identity


@pytest.mark.parametrize("raw,expected", [("section_12", 12), ("12", 12), (12, 12), (" Section_7 ", 7)])
def test_section_ids(raw, expected):
    assert parse_id(raw, "section") == expected


@pytest.mark.parametrize("raw", ["property_12", "section_", "section_0", 0, -1, True, None, 1.5, "12a", "section-12"])
def test_bad_section_ids(raw):
    with pytest.raises(InvalidId):
        parse_id(raw, "section")


def test_typed_ids_and_the_root():
    assert typed("value", 7) == "value_7" and typed("section", None) is None
    assert parse_id("property_5", "property") == 5 and parse_id("value_7", "value") == 7
    for root in (None, "", "root", "null", 0, "0"):
        assert parse_optional_section(root) is None
    assert parse_optional_section("section_3") == 3


def test_section_body_title_and_name():
    assert parse_section_body({"title": "Stimuli"}, creating=True).fields == {"name": "Stimuli"}
    assert parse_section_body({"name": " Stimuli ", "title": " Stimuli "}, creating=True).fields["name"] == "Stimuli"
    changes = parse_section_body({"name": "S", "parent_section": "section_4", "description": None}, creating=True)
    assert (changes.parent, changes.fields["description"]) == (4, None)
    assert parse_section_body({"name": "S"}, creating=True).parent is MISSING
    assert parse_section_body({"name": "S", "parent_section": None}, creating=True).parent is None
    # what a GET returns may be posted back
    assert parse_section_body({"name": "S", "id": "section_1", "owner": "ada", "date_created": "x"}, creating=False).fields == {"name": "S"}


@pytest.mark.parametrize("body,creating", [
    ({}, True), ({"name": "a", "title": "b"}, True), ({"name": ""}, True), ({"name": "  "}, True),
    ({"name": 3}, True), ({"name": "x" * 1001}, True), ({"name": "a", "colour": "red"}, True),
    ({"name": "a", "type": ["t"]}, True), ({"name": "a", "parent_section": "value_1"}, True),
    ({"name": "a", "tree_position": "1"}, True), ([], True), ("name", True), ({}, False), ({"id": "section_1"}, False),
])
def test_bad_section_bodies(body, creating):
    with pytest.raises(BadRequest):
        parse_section_body(body, creating=creating)


def test_property_body():
    changes = parse_property_body({"section_id": "section_2", "name": "p", "dtype": "Int", "values": ["1", 2],
                                   "uncertainty": "0.5", "unit": "mV"}, creating=True)
    assert (changes.section, changes.dtype, changes.values) == (2, "int", ["1", 2])
    assert changes.fields == {"name": "p", "uncertainty": 0.5, "unit": "mV"}
    assert parse_property_body({"section": 2, "name": "p", "values": "one"}, creating=True).values == ["one"]
    posted_back = parse_property_body({"values": [{"id": "value_1", "value": "x"}]}, creating=False)
    assert posted_back.values == ["x"]
    assert parse_property_body({"values": None}, creating=False).values == []


@pytest.mark.parametrize("body", [
    {"name": "p"}, {"section_id": 1}, {"section_id": "property_1", "name": "p"},
    {"section_id": 1, "name": "p", "dtype": "colour"}, {"section_id": 1, "name": "p", "uncertainty": "big"},
    {"section_id": 1, "name": "p", "uncertainty": True}, {"section_id": 1, "name": "p", "values": {"a": 1}},
    {"section_id": 1, "section": 2, "name": "p"}, {"section_id": 1, "name": "p", "weight": 3},
])
def test_bad_property_bodies(body):
    with pytest.raises(BadRequest):
        parse_property_body(body, creating=True)


def test_value_body():
    changes = parse_value_body({"property_id": "property_3", "value": 0, "position": 2}, creating=True)
    assert (changes.property, changes.value, changes.position) == (3, 0, 2)
    assert parse_value_body({"value": False}, creating=False).value is False
    for body in ({"value": 1}, {"property_id": 3}, {"property_id": 3, "value": None}, {"property_id": 3, "value": 1, "position": -1}):
        with pytest.raises(BadRequest):
            parse_value_body(body, creating=True)
    with pytest.raises(BadRequest):
        parse_value_body({}, creating=False)


def test_copy_move_parameters():
    assert parse_copy_move({}) is None
    request = parse_copy_move({"source_section_id": "section_1", "target_section_id": "2"})
    assert (request.source_id, request.target_id, request.mode) == (1, 2, "move")  # move is the seed's default
    assert (request.with_properties, request.with_datafiles, request.recursive) == (True, False, False)
    request = parse_copy_move({"source_section_id": 1, "mode": "COPY", "with_properties": "false",
                               "with_datafiles": "1", "recursive": True})
    assert (request.target_id, request.mode, request.with_properties, request.with_datafiles, request.recursive) == (
        None, "copy", False, True, True)
    for bad in ({"target_section_id": 2}, {"source_section_id": 1, "mode": "link"},
                {"source_section_id": 1, "recursive": "sometimes"}, {"source_section_id": "value_1"},
                {"source_section_id": 1, "target_section_id": "value_2"}):
        with pytest.raises(BadRequest):
            parse_copy_move(bad)


def test_cycles():
    source = {"_id": 5, "ancestors": [1]}
    check_no_cycle(source, None)
    check_no_cycle(source, {"_id": 2, "ancestors": [1]})
    for target in ({"_id": 5, "ancestors": [1]}, {"_id": 9, "ancestors": [1, 5]}, {"_id": 10, "ancestors": [1, 5, 9]}):
        with pytest.raises(BadRequest) as raised:
            check_no_cycle(source, target)
        assert raised.value.message_type == "cycle"


def test_connected_keeps_only_what_hangs_on_the_top():
    top = {"_id": 1}
    below = [{"_id": 2, "parent_section": 1}, {"_id": 3, "parent_section": 99}, {"_id": 4, "parent_section": 2},
             {"_id": 5, "parent_section": 3}]
    assert [d["_id"] for d in connected(top, below)] == [1, 2, 4]


def test_inherited_acl():
    ada = Identity(user_id=1, username="ada")
    assert inherited_acl(None, ada) == {"owner": 1, "safety_level": 3, "shared_with": {}, "readers": [],
                                        "writers": [], "author": "ada"}
    parent = {"_id": 9, "owner": 2, "author": "bob", "safety_level": 2, "shared_with": {"ada": 2},
              "readers": [1], "writers": [1]}
    acl = inherited_acl(parent, ada)
    assert acl["owner"] == 1 and acl["safety_level"] == 2
    # the parent's owner keeps write access; the new owner is not in their own shares
    assert acl["shared_with"] == {"bob": 2} and acl["readers"] == [2] and acl["writers"] == [2]
    assert parent["shared_with"] == {"ada": 2} and parent["readers"] == [1]  # the parent is not changed


def test_search_text_and_q():
    prop = {"name": "Colour", "description": "Shown", "values": [{"text": "red"}, {"text": "7.5"}]}
    assert property_search_text(prop) == "colour\nshown\nred\n7.5"
    assert section_search_text({"name": "Stimulus", "description": None, "type": "S"}, [prop]) == "stimulus\ns\ncolour\nred\n7.5"
    assert section_search_text({"name": "x" * 50}, limit=10) == "x" * 10
    assert q_clauses("Red  a.b") == [{"search_text": {"$regex": "red"}}, {"search_text": {"$regex": r"a\.b"}}]
    with pytest.raises(BadRequest):
        q_clauses(" ".join(["w"] * 11))


def test_serialised_fields():
    section = {"_id": 3, "name": "S", "parent_section": 1, "author": "ada", "safety_level": 3, "tree_position": 2}
    fields = section_fields(section, datafiles=[9], subsections=[4], properties=[5])
    assert (fields["id"], fields["title"], fields["parent_section"], fields["owner"]) == ("section_3", "S", "section_1", "ada")
    assert (fields["datafiles"], fields["subsections"], fields["properties"]) == (["datafile_9"], ["section_4"], ["property_5"])
    assert "datafiles" not in section_fields(section)
    prop = {"_id": 5, "section": 3, "name": "p", "dtype": "int", "values": [{"id": 7, "value": 1, "text": "1"}]}
    assert property_fields(prop)["values"] == [{"id": "value_7", "value": 1}]
    value = value_fields(prop, prop["values"][0], 0)
    assert (value["id"], value["property_id"], value["section_id"], value["value"]) == ("value_7", "property_5", "section_3", 1)
