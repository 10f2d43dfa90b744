"""odML metadata through the gateway, as a client would use it."""
import json
import time
import uuid

import odml
import pika
import requests
from odml.tools import ODMLReader, ODMLWriter


def _only(response) -> dict:
    body = response.json()
    assert body["objects_selected"] == 1, body
    return body["selected"][0]["fields"]


def test_sections_properties_and_values_through_the_gateway(gateway, logged_in):
    ada, bob = logged_in(), logged_in()
    response = ada.post(f"{gateway}/metadata/sections/", json={"title": "Stimuli", "description": "the stimulus"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["logged_in_as"] == ada.username
    (item,) = body["selected"]
    assert item["model"] == "metadata.section" and item["permalink"].startswith("/metadata/sections/")
    top = item["fields"]
    child = _only(ada.post(f"{gateway}/metadata/sections/", json={"name": "Colours", "parent_section": top["id"]}))
    prop = _only(ada.post(f"{gateway}/metadata/properties/", json={
        "section_id": child["id"], "name": "stimulus colour", "dtype": "string", "values": ["red", "green"]}))
    value = _only(ada.post(f"{gateway}/metadata/values/", json={"property_id": prop["id"], "value": "blue"}))
    assert value["position"] == 2
    number = top["id"].split("_")[1]
    assert _only(ada.get(f"{gateway}/metadata/sections/{number}"))["subsections"] == [child["id"]]
    assert _only(ada.get(f"{gateway}/data/metadata/sections/{top['id']}/"))["name"] == "Stimuli"
    listed = ada.get(f"{gateway}/metadata/sections/", params={"q": "blue"}).json()
    assert [i["fields"]["name"] for i in listed["selected"]] == ["Colours"]
    assert ada.get(f"{gateway}/metadata/properties/", params={"section_id": child["id"]}).json()["object_total"] == 1
    # bad input is a clear 400, others' private sections are not readable, strangers get 401
    bad = ada.post(f"{gateway}/metadata/properties/", json={"section_id": child["id"], "name": "n", "dtype": "int",
                                                             "values": ["x"]})
    assert bad.status_code == 400 and bad.json()["message_type"] == "invalid_value"
    assert bob.get(f"{gateway}/metadata/sections/{top['id']}/").status_code == 403
    assert bob.get(f"{gateway}/metadata/sections/").json()["object_total"] == 0
    anonymous = requests.get(f"{gateway}/metadata/sections/", params={"recursive": "true", "max_results": 10000})
    assert anonymous.status_code == 200  # public sections only: none of ada's private ones
    assert not {item["fields"]["id"] for item in anonymous.json()["selected"]} & {top["id"], child["id"]}
    # copy recursively with properties, then delete the original
    copy = ada.post(f"{gateway}/metadata/sections/", params={
        "source_section_id": top["id"], "mode": "copy", "recursive": "true", "with_properties": "true"})
    assert copy.status_code == 201, copy.text
    assert len(copy.json()["sections_created"]) == 2
    assert ada.delete(f"{gateway}/metadata/sections/{top['id']}/").status_code == 200
    names = [i["fields"]["name"] for i in ada.get(f"{gateway}/metadata/sections/", params={"recursive": "true"}).json()["selected"]]
    assert names == ["Stimuli (2)", "Colours"]
    # the internal API is not reachable from outside
    assert requests.get(f"{gateway}/internal/values/", params={"id": value["id"]}).status_code == 404


def test_odml_round_trip_through_the_gateway(gateway, logged_in):
    ada = logged_in()
    doc = odml.Document(author="ada")
    session = odml.Section(name="Session", type="session", parent=doc)
    odml.Property(name="duration", values=[1.5, 2.5], dtype="float", unit="s", parent=session)
    odml.Section(name="Subject", type="subject", parent=session)
    text = ODMLWriter("XML").to_string(doc)
    response = ada.post(f"{gateway}/metadata/import/", files={"file": ("session.odml", text.encode(), "application/xml")})
    assert response.status_code == 201, response.text
    assert response.json()["properties_created"] == 1
    top = response.json()["selected"][0]["fields"]
    for fmt in ("xml", "json", "yaml"):
        exported = ada.get(f"{gateway}/metadata/sections/{top['id']}/export/", params={"format": fmt})
        assert exported.status_code == 200, exported.text
        back = ODMLReader(fmt.upper(), show_warnings=False).from_string(exported.text)
        (section,) = back.sections
        assert section.name == "Session" and [s.name for s in section.sections] == ["Subject"]
        prop = section.properties["duration"]
        assert (prop.dtype, prop.unit, prop.values) == ("float", "s", [1.5, 2.5])


def test_section_events_are_published(system, gateway, logged_in, amqp_url):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = f"e2e.metadata.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, exclusive=True)
    channel.queue_bind(queue, system.exchange, routing_key="metadata.section.*")
    try:
        ada = logged_in()
        first = _only(ada.post(f"{gateway}/metadata/sections/", json={"name": "First"}))
        second = _only(ada.post(f"{gateway}/metadata/sections/", json={"name": "Second"}))
        assert ada.post(f"{gateway}/metadata/sections/", params={"source_section_id": second["id"],
                                                                 "target_section_id": first["id"]}).status_code == 200
        assert ada.delete(f"{gateway}/metadata/sections/{first['id']}/").status_code == 200
        received = []
        deadline = time.monotonic() + 15
        while len(received) < 5 and time.monotonic() < deadline:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.1)
                continue
            event = json.loads(body)
            if event["payload"]["section_id"] in (int(first["id"].split("_")[1]), int(second["id"].split("_")[1])):
                received.append(event)
        types = sorted(e["type"] for e in received)
        assert types == ["metadata.section.created", "metadata.section.created", "metadata.section.deleted",
                         "metadata.section.deleted", "metadata.section.moved"], types
        assert all(e["producer"] == "metadata" for e in received)
    finally:
        connection.close()
