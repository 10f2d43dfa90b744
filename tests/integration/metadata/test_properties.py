"""Properties and values: fields, dtypes, inline values, the value resource, permissions."""
import pytest

from tests.integration.metadata.conftest import number, only


def test_create_a_property_with_the_seeds_fields_and_inline_values(api):
    section = api.section("Stimulus")
    response = api.post("properties", {
        "section_id": section["id"], "name": "stimuli colors", "description": "colours shown",
        "type": "experimental conditions", "unit": "", "definition": "the colour of the stimulus", "mapping": "",
        "dependency": "", "dependency_value": "", "uncertainty": None, "reference": "", "dtype": "string",
        "values": ["red", "green", "blue"],
    })
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "object_created"
    (item,) = body["selected"]
    assert item["model"] == "metadata.property"
    prop = item["fields"]
    assert item["permalink"] == f"/metadata/properties/{number(prop['id'])}"
    assert prop["section_id"] == section["id"]
    assert prop["type"] == "experimental conditions" and prop["definition"] == "the colour of the stimulus"
    assert [v["value"] for v in prop["values"]] == ["red", "green", "blue"]
    assert all(v["id"].startswith("value_") for v in prop["values"])
    assert api.fields(f"sections/{section['id']}")["properties"] == [prop["id"]]


@pytest.mark.parametrize("dtype,given,stored", [
    ("int", [1, "2", 3.0], [1, 2, 3]),
    ("float", [1.5, "2", 3], [1.5, 2.0, 3.0]),
    ("boolean", [True, "false", "t", 0], [True, False, True, False]),
    ("date", ["2012-03-14"], ["2012-03-14"]),
    ("datetime", ["2012-03-14 17:27:08", "2012-03-14T17:27:08"], ["2012-03-14 17:27:08"] * 2),
    ("time", ["17:27:08"], ["17:27:08"]),
    ("url", ["https://g-node.org/"], ["https://g-node.org/"]),
    ("person", ["Ada Lovelace"], ["Ada Lovelace"]),
    ("text", ["two\nlines"], ["two\nlines"]),
    ("3-tuple", ["(1;2;3)", [4, 5, 6]], ["(1;2;3)", "(4;5;6)"]),
    ("str", ["alias"], ["alias"]),
])
def test_odml_dtypes_are_validated_and_values_normalised(api, dtype, given, stored):
    section = api.section("Typed")
    prop = api.prop(section, "p", given, dtype=dtype, unit="mV")
    assert [v["value"] for v in prop["values"]] == stored
    assert prop["dtype"] == {"str": "string"}.get(dtype, dtype)
    assert prop["unit"] == "mV"  # units are kept as given


@pytest.mark.parametrize("dtype,values,message_type", [
    ("int", [1, "two"], "invalid_value"),
    ("int", [1.5], "invalid_value"),
    ("int", [2**64], "invalid_value"),
    ("float", ["NaN"], "invalid_value"),
    ("boolean", ["maybe"], "invalid_value"),
    ("date", ["14.03.2012"], "invalid_value"),
    ("datetime", ["2012-03-14"], "invalid_value"),
    ("time", ["25:00:00"], "invalid_value"),
    ("url", ["not a url"], "invalid_value"),
    ("3-tuple", ["(1;2)"], "invalid_value"),
    ("2-tuple", ["1;2"], "invalid_value"),
    ("string", [{"a": 1}], "invalid_value"),
    ("colour", ["red"], "invalid_fields"),
    ("0-tuple", ["()"], "invalid_fields"),
])
def test_bad_dtypes_and_values_are_400_and_save_nothing(api, counts, dtype, values, message_type):
    section = api.section("Typed")
    before = counts()
    response = api.post("properties", {"section_id": section["id"], "name": "p", "dtype": dtype, "values": values})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["message_type"] == message_type
    assert counts() == before


def test_dtype_is_inferred_from_the_first_value_like_odml(api):
    section = api.section("Inferred")
    assert api.prop(section, "i", [3])["dtype"] == "int"
    assert api.prop(section, "f", [3.5])["dtype"] == "float"
    assert api.prop(section, "b", [True])["dtype"] == "boolean"
    assert api.prop(section, "s", ["x"])["dtype"] == "string"
    assert api.prop(section, "e", [])["dtype"] == "string"


def test_other_bad_property_bodies(api, counts):
    section = api.section("S")
    api.prop(section, "taken", [1])
    before = counts()
    for body, status, message_type in [
        ({"name": "no section"}, 400, "invalid_fields"),
        ({"section_id": section["id"]}, 400, "invalid_fields"),
        ({"section_id": "section_999999", "name": "x"}, 404, "unknown_section"),
        ({"section_id": "property_1", "name": "x"}, 400, "invalid_fields"),
        ({"section_id": section["id"], "name": "x", "unknown": 1}, 400, "unknown_fields"),
        ({"section_id": section["id"], "name": "x", "uncertainty": "a lot"}, 400, "invalid_fields"),
        ({"section_id": section["id"], "name": "x", "values": {"a": 1}}, 400, "invalid_fields"),
        ({"section_id": section["id"], "name": "taken"}, 409, "name_taken"),
        ({"section_id": section["id"], "name": "x", "tree_position": 2**70}, 400, "invalid_fields"),
    ]:
        response = api.post("properties", body)
        assert response.status_code == status, (body, response.get_json())
        assert response.get_json()["message_type"] == message_type, body
    response = api.client.post("/metadata/properties/", data=b"\xff{", headers={**api.headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert counts() == before


def test_update_fields_values_and_dtype(api, db):
    section = api.section("S")
    prop = api.prop(section, "count", [1, 2, 3], unit="ms")
    path = f"properties/{prop['id']}"
    ids = [v["id"] for v in prop["values"]]
    response = api.post(path, {"unit": "s", "uncertainty": "0.5", "values": [3, 1, 7]})
    assert response.status_code == 200, response.get_json()
    updated = only(response.get_json())
    assert updated["unit"] == "s" and updated["uncertainty"] == 0.5
    assert [v["value"] for v in updated["values"]] == [3, 1, 7]
    # unchanged values keep their ids (labels point at them); 2 went, 7 is new
    assert [v["id"] for v in updated["values"]][:2] == [ids[2], ids[0]]
    assert updated["values"][2]["id"] not in ids
    envelope = db["properties"].find_one({"_id": number(prop["id"])})["_outbox"][-1]
    assert envelope["type"] == "metadata.property.updated"
    assert envelope["payload"]["value_ids_removed"] == [number(ids[1])]
    # a dtype change must fit every value
    as_float = only(api.post(path, {"dtype": "float"}).get_json())["values"]
    assert [v["value"] for v in as_float] == [3.0, 1.0, 7.0]
    assert [v["id"] for v in as_float] == [v["id"] for v in updated["values"]]  # same values, same ids
    response = api.post(path, {"dtype": "date"})
    assert response.status_code == 400 and response.get_json()["message_type"] == "invalid_value"
    assert api.fields(path)["dtype"] == "float"
    # a fetched property can be posted back
    fetched = api.fields(path)
    assert api.post(path, fetched).status_code == 200
    assert api.post(path, {}).status_code == 400


def test_a_property_can_move_to_another_section(api):
    one, two = api.section("One"), api.section("Two")
    prop = api.prop(one, "p", ["x"])
    response = api.post(f"properties/{prop['id']}", {"section_id": two["id"]})
    assert response.status_code == 200
    assert api.fields(f"sections/{one['id']}")["properties"] == []
    assert api.fields(f"sections/{two['id']}")["properties"] == [prop["id"]]
    assert api.names(q="x", recursive="true") == ["Two"]


def test_the_value_resource(api, db):
    section = api.section("S")
    prop = api.prop(section, "colours", ["red"], dtype="string")
    response = api.post("values", {"property_id": prop["id"], "value": "blue"})
    assert response.status_code == 201, response.get_json()
    (item,) = response.get_json()["selected"]
    assert item["model"] == "metadata.value"
    blue = item["fields"]
    assert item["permalink"] == f"/metadata/values/{number(blue['id'])}"
    assert (blue["value"], blue["position"], blue["property_id"], blue["section_id"]) == ("blue", 1, prop["id"], section["id"])
    green = only(api.post("values", {"property": number(prop["id"]), "value": "green", "position": 0}).get_json())
    assert green["position"] == 0
    listed = api.get("values", property_id=prop["id"]).get_json()
    assert [i["fields"]["value"] for i in listed["selected"]] == ["green", "red", "blue"]
    assert listed["object_total"] == 3
    assert api.fields(f"values/{blue['id']}")["value"] == "blue"
    assert api.fields(f"values/{number(blue['id'])}")["value"] == "blue"
    response = api.post(f"values/{blue['id']}", {"value": "navy", "position": 0})
    assert response.status_code == 200
    assert [v["value"] for v in api.fields(f"properties/{prop['id']}")["values"]] == ["navy", "green", "red"]
    response = api.delete(f"values/{green['id']}")
    assert response.status_code == 200 and response.get_json()["deleted"] == [green["id"]]
    assert api.get(f"values/{green['id']}").status_code == 404
    assert [v["value"] for v in api.fields(f"properties/{prop['id']}")["values"]] == ["navy", "red"]
    types = [e["type"] for e in db["properties"].find_one({"_id": number(prop["id"])})["_outbox"]]
    assert types == ["metadata.property.created", "metadata.value.created", "metadata.value.created",
                     "metadata.value.updated", "metadata.value.deleted"]


def test_bad_values_are_400_or_404_and_save_nothing(api, counts):
    section = api.section("S")
    prop = api.prop(section, "n", [1], dtype="int")
    before = counts()
    for body, status in [({"property_id": prop["id"], "value": "one"}, 400), ({"property_id": prop["id"]}, 400),
                         ({"property_id": prop["id"], "value": None}, 400), ({"value": 1}, 400),
                         ({"property_id": "property_99999", "value": 1}, 404),
                         ({"property_id": prop["id"], "value": 2, "colour": 1}, 400)]:
        response = api.post("values", body)
        assert response.status_code == status, (body, response.get_json())
    value_path = f"values/{prop['values'][0]['id']}"
    assert api.post(value_path, {"value": "x"}).status_code == 400
    assert api.post(value_path, {"property_id": "property_99999"}).status_code == 400
    assert api.get("values/value_999999").status_code == 404
    assert api.get("values/section_1").status_code == 404
    assert counts() == before


def test_properties_and_values_take_their_sections_permissions(api, other, db):
    section = api.section("S")
    prop = api.prop(section, "p", ["v"])
    value_path = f"values/{prop['values'][0]['id']}"
    for path in (f"properties/{prop['id']}", value_path):
        assert other.get(path).status_code == 403
        assert other.post(path, {"name": "x"} if "properties" in path else {"value": "x"}).status_code == 403
        assert other.delete(path).status_code == 403
    assert other.post("properties", {"section_id": section["id"], "name": "q"}).status_code == 403
    assert other.post("values", {"property_id": prop["id"], "value": "w"}).status_code == 403
    assert other.get("properties").get_json()["object_total"] == 0
    assert other.get("values").get_json()["object_total"] == 0
    db["properties"].update_one({"_id": number(prop["id"])}, {"$set": {"safety_level": 1}})
    assert other.get(f"properties/{prop['id']}").status_code == 200
    assert other.get(value_path).status_code == 200
    assert other.post(value_path, {"value": "x"}).status_code == 403


def test_delete_a_property(api, db):
    section = api.section("S")
    prop = api.prop(section, "p", ["a", "b"])
    response = api.delete(f"properties/{prop['id']}")
    assert response.status_code == 200
    assert response.get_json()["values_deleted"] == 2
    assert api.get(f"properties/{prop['id']}").status_code == 404
    assert api.fields(f"sections/{section['id']}")["properties"] == []
    assert api.names(q="a", recursive="true") == []
    doc = db["properties"].find_one({"_id": number(prop["id"])})
    assert doc["_outbox"][-1]["type"] == "metadata.property.deleted"
    assert doc["_outbox"][-1]["payload"]["value_ids"] == [number(v["id"]) for v in prop["values"]]
