"""The internal API other services call (never routed by the gateway)."""
from tests.integration.metadata.conftest import number


def test_resolve_values_for_labels(api, client, db):
    section = api.section("Stimulus")
    prop = api.prop(section, "colour", ["red", "green"], unit="nm")
    red, green = (v["id"] for v in prop["values"])
    response = client.get("/internal/values/", query_string=[("id", red), ("id", number(green)), ("id", "value_999999")])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["missing"] == [999999]
    first, second = body["values"]
    assert first == {
        "id": red, "value_id": number(red), "value": "red", "position": 0, "property_id": number(prop["id"]),
        "property_name": "colour", "section_id": number(section["id"]), "dtype": "string", "unit": "nm",
        "owner": api.user_id, "safety_level": 3, "readers": [], "writers": [],
    }
    assert second["value"] == "green"
    assert client.get("/internal/values/", query_string={"id": f"{red},{green}"}).get_json()["missing"] == []
    assert client.get("/internal/values/").status_code == 400
    assert client.get("/internal/values/", query_string={"id": "section_1"}).status_code == 400


def test_descendants_and_section_read_model(api, client):
    top = api.section("Top")
    child = api.section("Child", parent=top)
    grand = api.section("Grand", parent=child)
    response = client.get(f"/internal/sections/{top['id']}/descendants/")
    assert response.status_code == 200
    body = response.get_json()
    assert body["section_id"] == number(top["id"]) and body["count"] == 2
    assert body["descendants"] == [
        {"section_id": number(child["id"]), "parent_section": number(top["id"]), "owner": api.user_id},
        {"section_id": number(grand["id"]), "parent_section": number(child["id"]), "owner": api.user_id},
    ]
    section = client.get(f"/internal/sections/{number(grand['id'])}/").get_json()["section"]
    assert section["ancestors"] == [number(top["id"]), number(child["id"])]
    assert (section["owner"], section["safety_level"], section["readers"]) == (api.user_id, 3, [])
    assert client.get("/internal/sections/999999/").status_code == 404
    assert client.get("/internal/sections/999999/descendants/").status_code == 404


def test_create_a_path_for_archive_extraction(api, client):
    parent = api.section("Uploads")
    response = client.post("/internal/sections/", json={"parent_section": parent["id"], "path": "data/2012/day1"},
                           headers=api.headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert [s["name"] for s in body["sections"]] == ["data", "2012", "day1"]
    assert all(s["created"] for s in body["sections"])
    assert body["leaf_section_id"] == body["sections"][-1]["section_id"]
    assert api.names(section_id=parent["id"], recursive="true") == ["data", "2012", "day1"]
    # the same path again reuses the sections; a longer one adds what is missing
    again = client.post("/internal/sections/", json={"parent_section": parent["id"], "path": ["data", "2012", "day2"]},
                        headers=api.headers).get_json()
    assert [s["created"] for s in again["sections"]] == [False, False, True]
    assert again["sections"][0]["section_id"] == body["sections"][0]["section_id"]
    assert client.post("/internal/sections/", json={"path": ["data"]}, headers=api.headers).status_code == 201
    assert client.post("/internal/sections/", json={"path": []}, headers=api.headers).status_code == 400
    assert client.post("/internal/sections/", json={"path": "x", "parent_section": "section_999999"},
                       headers=api.headers).status_code == 404
    assert client.post("/internal/sections/", json={"path": "x"}).status_code == 401
