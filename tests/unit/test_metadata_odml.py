"""odML documents built and read in memory (services/metadata/odml_io.py, odml_parse.py): no database, no network."""
import json

import odml
import pytest
from odml.tools import ODMLReader, ODMLWriter

from services.metadata.odml_io import FORMATS, build_document, detect_format, parse_format
from services.metadata.odml_parse import InvalidDocument, read_document

from shared.errors import BadRequest

SECTIONS = [
    {"_id": 1, "name": "Experiment", "type": "experiment", "description": "A session", "parent_section": None},
    {"_id": 2, "name": "Stimulus", "type": None, "parent_section": 1, "link": None, "repository": None},
    {"_id": 3, "name": "Stimulus", "type": "dup", "parent_section": 1},  # a duplicate name that slipped in
]
PROPERTIES = [
    {"_id": 10, "section": 2, "name": "duration", "dtype": "float", "unit": "ms", "uncertainty": 0.1,
     "values": [{"id": 1, "value": 1.5}, {"id": 2, "value": 2.0}], "description": "how long"},
    {"_id": 11, "section": 2, "name": "position", "dtype": "2-tuple", "values": [{"id": 3, "value": "(1;2)"}]},
    {"_id": 12, "section": 1, "name": "when", "dtype": "date", "values": [{"id": 4, "value": "2012-03-14"}]},
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_write_and_read_back(fmt):
    document = build_document(SECTIONS, PROPERTIES, author="ada")
    text = ODMLWriter(FORMATS[fmt][0]).to_string(document)
    back = read_document(text.encode(), fmt)
    (experiment,) = back.sections
    assert (experiment.name, experiment.type, experiment.definition) == ("Experiment", "experiment", "A session")
    assert [s.name for s in experiment.sections] == ["Stimulus", "Stimulus (section_3)"]
    assert experiment.sections[0].type == "n.s."  # odML requires a type
    duration = experiment.sections[0].properties["duration"]
    assert (duration.dtype, duration.unit, duration.values, float(duration.uncertainty)) == ("float", "ms", [1.5, 2.0], 0.1)
    assert duration.definition == "how long"  # the description stands in for a missing definition
    assert experiment.sections[0].properties["position"].values == [["1", "2"]]
    assert str(experiment.properties["when"].values[0]) == "2012-03-14"
    assert ODMLReader(FORMATS[fmt][0].upper(), show_warnings=False).from_string(text).sections[0].name == "Experiment"


def test_format_detection():
    assert parse_format(None) == "xml" and parse_format("ODML") == "xml" and parse_format("yml") == "yaml"
    assert parse_format("", default=None) is None
    with pytest.raises(BadRequest):
        parse_format("csv")
    assert detect_format(b"{}", given="yaml", filename=None, content_type=None) == "yaml"
    assert detect_format(b"", given=None, filename="a.odml", content_type=None) == "xml"
    assert detect_format(b"", given=None, filename="a.JSON", content_type=None) == "json"
    assert detect_format(b"", given=None, filename=None, content_type="application/x-yaml") == "yaml"
    assert detect_format(b"  <odML/>", given=None, filename="a.bin", content_type="text/plain") == "xml"
    assert detect_format(b'{"a": 1}', given=None, filename=None, content_type=None) == "json"
    assert detect_format(b"Document: {}", given=None, filename=None, content_type=None) == "yaml"


@pytest.mark.parametrize("data,fmt", [
    (b"", "xml"), (b"   ", "json"), (b"<odML", "xml"), (b"<other/>", "xml"),
    (b'<!DOCTYPE x [<!ENTITY e "boom">]><odML version="1.1"/>', "xml"),
    (b"{", "json"), (b"[1]", "json"), (b'{"odml-version": "1.1"}', "json"), (b'{"Document": {}}', "json"),
    (b'{"Document": {}, "odml-version": "1.0"}', "json"), (b"a: [", "yaml"), (b"\xff\xfe", "yaml"),
    (json.dumps({"Document": {"sections": [{"name": "s", "type": "t", "properties": [
        {"name": "p", "type": "nonsense", "value": ["x"]}]}]}, "odml-version": "1.1"}).encode(), "json"),
])
def test_bad_documents(data, fmt):
    with pytest.raises(InvalidDocument):
        read_document(data, fmt)


def test_a_deeply_nested_document_is_refused():
    for depth in (250, 3000):  # beyond our limit; beyond Python's recursion limit
        nested = '{"name": "s", "type": "t", "sections": [' * depth + '{"name": "leaf", "type": "t"}' + "]}" * depth
        data = '{"Document": {"sections": [' + nested + ']}, "odml-version": "1.1"}'
        with pytest.raises(InvalidDocument):
            read_document(data.encode(), "json")
    xml = "<section><name>s</name><type>t</type>" * 300 + "</section>" * 300
    with pytest.raises(InvalidDocument):
        read_document(f'<odML version="1.1">{xml}</odML>'.encode(), "xml")


def test_network_loading_is_disabled():
    assert odml.terminology.load("http://127.0.0.1:9/x.xml") is None
    assert odml.terminology.deferred_load("http://127.0.0.1:9/x.xml") is None


def test_an_import_that_finds_every_sandbox_slot_busy_is_a_503(monkeypatch):
    import threading

    from services.metadata import odml_io
    from services.metadata.context import MetadataContext
    from shared.errors import ServiceUnavailable

    slots = threading.BoundedSemaphore(1)
    slots.acquire()  # another import is being read
    monkeypatch.setattr(odml_io, "IMPORT_WAIT_SECONDS", 0.05)
    ctx = MetadataContext(store=None, import_slots=slots)
    with pytest.raises(ServiceUnavailable) as refused:
        odml_io.parse_in_sandbox(ctx, b"<odML/>", "xml")
    assert refused.value.headers["Retry-After"] == "5"
