"""odML documents written by python-odml: import, export in all three formats, and load back."""
import datetime as dt
import io
import json

import odml
import pytest
from odml.tools import ODMLReader, ODMLWriter

from tests.integration.metadata.conftest import number, only

FORMATS = ("xml", "json", "yaml")


def reference_document() -> odml.Document:
    doc = odml.Document(author="Ada", version="1")
    experiment = odml.Section(name="Experiment", type="experiment", definition="A recording session",
                              reference="https://example.org/exp", parent=doc)
    odml.Property(name="date", values=[dt.date(2012, 3, 14)], dtype="date", parent=experiment)
    odml.Property(name="started", values=[dt.datetime(2012, 3, 14, 17, 27, 8)], dtype="datetime", parent=experiment)
    odml.Property(name="onset", values=[dt.time(9, 30, 0)], dtype="time", parent=experiment)
    odml.Property(name="experimenter", values=["Ada Lovelace", "Charles Babbage"], dtype="person", parent=experiment)
    odml.Property(name="protocol", values=["https://example.org/protocol"], dtype="url", parent=experiment)
    stimulus = odml.Section(name="Stimulus", type="stimulus", parent=experiment)
    odml.Property(name="colours", values=["red", "green", "blue"], dtype="string", parent=stimulus)
    odml.Property(name="duration", values=[1.5, 2.25, 3.0], dtype="float", unit="ms", uncertainty=0.1,
                  definition="How long each stimulus was shown", parent=stimulus)
    odml.Property(name="repetitions", values=[10, 20], dtype="int", parent=stimulus)
    odml.Property(name="position", values=["(1;2;3)", "(4;5;6)"], dtype="3-tuple", unit="mm", parent=stimulus)
    grating = odml.Section(name="Grating", type="stimulus/grating", parent=stimulus)
    odml.Property(name="orientation", values=[0, 45, 90, 135], dtype="int", unit="deg", parent=grating)
    odml.Property(name="drifting", values=[True, False], dtype="boolean", parent=grating)
    subject = odml.Section(name="Subject", type="subject", parent=doc)
    odml.Property(name="species", values=["Macaca mulatta"], dtype="string", parent=subject)
    odml.Property(name="notes", values=["first line\nsecond line"], dtype="text", parent=subject)
    odml.Property(name="weight", values=[7.5], dtype="float", unit="kg", reference="scale 3", parent=subject)
    return doc


def describe(sections) -> list:
    """Section tree, property names, dtypes, units and values: what must survive a round trip.
    (python-odml's XML reader gives `uncertainty` as text, its JSON and YAML readers as a number.)"""
    return [
        {
            "name": s.name,
            "type": s.type,
            "definition": s.definition,
            "properties": {
                p.name: {"dtype": p.dtype, "unit": p.unit, "values": list(p.values), "uncertainty": None if p.uncertainty is None else float(p.uncertainty),
                         "definition": p.definition, "reference": p.reference}
                for p in s.properties
            },
            "sections": describe(s.sections),
        }
        for s in sections
    ]


def written(doc, fmt: str) -> str:
    return ODMLWriter(fmt.upper()).to_string(doc)


def loaded(text: str, fmt: str) -> odml.Document:
    return ODMLReader(fmt.upper(), show_warnings=False).from_string(text)


@pytest.mark.parametrize("import_format", FORMATS)
def test_a_python_odml_document_imports_and_exports_equivalently_in_every_format(api, import_format):
    original = reference_document()
    response = api.client.post("/metadata/import/", data=written(original, import_format).encode(),
                               headers={**api.headers, "Content-Type": "text/plain"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "object_imported"
    assert [item["fields"]["name"] for item in body["selected"]] == ["Experiment", "Subject"]
    assert len(body["sections_created"]) == 4 and body["properties_created"] == 14 and body["values_created"] == 25
    experiment = body["selected"][0]["fields"]
    for export_format in FORMATS:
        response = api.get("export", format=export_format)
        assert response.status_code == 200, response.data[:500]
        assert response.headers["Content-Disposition"].startswith("attachment")
        back = loaded(response.data.decode(), export_format)
        assert describe(back.sections) == describe(original.sections), export_format
        response = api.get(f"sections/{experiment['id']}/export", format=export_format)
        assert response.status_code == 200
        assert describe(loaded(response.data.decode(), export_format).sections) == describe([original.sections[0]])


def test_imported_metadata_is_ordinary_sections_properties_and_values(api):
    response = api.client.post("/metadata/import/", data=written(reference_document(), "json"),
                               headers={**api.headers, "Content-Type": "application/json"})
    top = response.get_json()["selected"][0]["fields"]
    assert top["description"] == "A recording session" and top["type"] == "experiment"
    assert top["reference"] == "https://example.org/exp"
    names = api.names(section_id=top["id"], recursive="true")
    assert names == ["Stimulus", "Grating"]
    prop = api.get("properties", q="duration").get_json()["selected"][0]["fields"]
    assert (prop["dtype"], prop["unit"], prop["uncertainty"]) == ("float", "ms", 0.1)
    assert [v["value"] for v in prop["values"]] == [1.5, 2.25, 3.0]
    position = api.get("properties", q="position").get_json()["selected"][0]["fields"]
    assert [v["value"] for v in position["values"]] == ["(1;2;3)", "(4;5;6)"]
    started = api.get("properties", q="started").get_json()["selected"][0]["fields"]
    assert started["values"][0]["value"] == "2012-03-14 17:27:08"
    assert api.names(q="babbage") == ["Experiment"]


def test_import_under_a_target_section_with_multipart_and_unique_names(api):
    target = api.section("Imports")
    data = written(reference_document(), "yaml").encode()
    for expected in ("Experiment", "Experiment (2)"):
        response = api.client.post(
            "/metadata/import/", query_string={"target_section_id": target["id"]}, headers=api.headers,
            data={"file": (io.BytesIO(data), "session.yml")}, content_type="multipart/form-data",
        )
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["selected"][0]["fields"]["name"] == expected
    assert api.names(section_id=target["id"]) == ["Experiment", "Subject", "Experiment (2)", "Subject (2)"]
    imported = api.fields(f"sections/{response.get_json()['selected'][0]['fields']['id']}")
    assert imported["parent_section"] == target["id"]
    assert api.get("sections", section_id=target["id"], recursive="true").get_json()["object_total"] == 8


def test_format_can_be_given(api):
    text = written(reference_document(), "json")
    response = api.client.post("/metadata/import/", query_string={"format": "json"}, data=text, headers=api.headers)
    assert response.status_code == 201
    response = api.client.post("/metadata/import/", query_string={"format": "xml"}, data=text, headers=api.headers)
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_document"
    assert api.get("export", format="csv").status_code == 400


def _post(api, data, **query):
    return api.client.post("/metadata/import/", query_string=query, data=data, headers=api.headers)


@pytest.mark.parametrize("data,query", [
    ("", {}),
    ("<odML version='1.1'><section><name>x</name>", {}),
    ("<odML version='1.0'><section><name>x</name><type>t</type></section></odML>", {}),
    ("<notodml/>", {}),
    ('<?xml version="1.0"?><!DOCTYPE odML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     '<odML version="1.1"><section><name>&x;</name><type>t</type></section></odML>', {}),
    ('{"Document": {"sections": []}', {}),
    ('{"odml-version": "1.1"}', {}),
    ('{"Document": {"sections": [{"name": "x", "type": "t", "properties": [{"name": "p", "type": "int", '
     '"value": ["seven"]}]}]}, "odml-version": "1.1"}', {}),
    ('{"Document": {"sections": [{"name": "x", "type": "t", "properties": [{"name": "p", "type": "colour", '
     '"value": ["red"]}]}]}, "odml-version": "1.1"}', {}),
    ("<odML version='1.1'><section><name>x</name><type>t</type><property><name>p</name><value>[red]</value>"
     "<type>colour</type></property></section></odML>", {}),
    ('{"Document": {"sections": []}, "odml-version": "1.1"}', {}),
    ("Document: [1, 2", {"format": "yaml"}),
    ("- just\n- a list\n", {}),
    ("{}", {"target_section_id": "section_999999"}),
])
def test_bad_documents_are_400_or_404_and_save_nothing(api, counts, data, query):
    before = counts()
    response = _post(api, data, **query)
    assert response.status_code in (400, 404), response.get_json()
    assert response.get_json()["message"]
    if response.status_code == 400:
        assert response.get_json()["message_type"] in ("invalid_document", "invalid_parameter")
    assert counts() == before


def test_include_is_never_fetched(api):
    """python-odml would download an `include` URL; the import drops it."""
    doc = {"Document": {"sections": [{"name": "x", "type": "t", "include": "http://127.0.0.1:9/terminology.xml",
                                      "repository": "http://127.0.0.1:9/repo.xml"}]}, "odml-version": "1.1"}
    response = _post(api, json.dumps(doc))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["selected"][0]["fields"]["repository"] == "http://127.0.0.1:9/repo.xml"


def test_export_holds_only_what_you_may_read(api, other, db):
    top = api.section("Top")
    api.prop(top, "p", [1])
    hidden = api.section("Hidden", parent=top)
    seen = api.section("Seen", parent=top)
    api.section("Below hidden", parent=hidden)
    db["sections"].update_many({"_id": {"$in": [number(top["id"]), number(seen["id"])]}}, {"$set": {"safety_level": 1}})
    db["properties"].update_many({}, {"$set": {"safety_level": 1}})
    response = other.get(f"sections/{top['id']}/export", format="json")
    assert response.status_code == 200
    back = loaded(response.data.decode(), "json")
    assert [s.name for s in back.sections[0].sections] == ["Seen"]
    assert [p.name for p in back.sections[0].properties] == ["p"]
    assert other.get(f"sections/{hidden['id']}/export").status_code == 403
    assert loaded(other.get("export", format="xml").data.decode(), "xml").sections == []  # nothing of their own


def test_the_internal_import_returns_the_created_section_ids(api, client):
    response = client.post("/internal/import/", query_string={"format": "xml"},
                           data=written(reference_document(), "xml"), headers=api.headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert len(body["section_ids"]) == 4 and all(isinstance(i, int) for i in body["section_ids"])
    assert body["sections_created"] == [f"section_{i}" for i in body["section_ids"]]
    assert only({**body, "objects_selected": 1, "selected": body["selected"][:1]})["name"] == "Experiment"
    assert client.post("/internal/import/", data="{}").status_code == 401
