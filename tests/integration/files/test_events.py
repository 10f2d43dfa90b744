"""The files.datafile.* events keep the metadata service's section links (its handlers, fed the
events the files worker published), and each carries the contract of services/files/events.py."""
from __future__ import annotations

import json
import time

import pika
import pymongo
import pytest

from tests.integration.files.conftest import number

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def probe(files_config):
    connection = pika.BlockingConnection(pika.URLParameters(files_config["AMQP_URL"]))
    channel = connection.channel()
    channel.exchange_declare(exchange=files_config["EVENT_EXCHANGE"], exchange_type="topic", durable=True)
    name = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=name, exchange=files_config["EVENT_EXCHANGE"], routing_key="files.datafile.*")

    def fetch(count, timeout=10.0):
        got, deadline = [], time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            method, _, body = channel.basic_get(queue=name, auto_ack=True)
            if method is None:
                connection.sleep(0.05)
                continue
            got.append(json.loads(body))
        return got

    yield fetch
    connection.close()


def test_datafile_events_keep_the_sections_links(api, probe, files_config):
    from services.metadata.links import handlers
    from services.metadata.store import MetadataStore

    first, second = api.section("events one"), api.section("events two")
    fields = api.upload("e.txt", b"1", convert=0, section_id=first["id"])
    datafile = number(fields["id"])
    api.post(f"/datafiles/{datafile}/", {"section": second["id"]})
    assert api.delete(f"/datafiles/{datafile}/").status_code == 200
    events = probe(4)
    assert [e["type"] for e in events] == ["files.datafile.created", "files.datafile.moved", "files.datafile.updated",
                                           "files.datafile.deleted"]
    created = events[0]["payload"]
    assert created["datafile_id"] == datafile and created["section_id"] == number(first["id"])
    assert created["owner"] == api.user_id and created["size"] == 1 and created["sha256"] == fields["sha256"]
    assert created["acl"] == {"owner": api.user_id, "safety_level": 3, "shared_with": {}, "readers": [], "writers": []}
    assert events[1]["payload"]["from_section"] == number(first["id"])
    metadata_db = pymongo.MongoClient(files_config["MONGO_URL"])[files_config["MONGO_DB_PREFIX"] + "metadata"]
    table = handlers(MetadataStore(metadata_db))

    def linked(section) -> list[int]:
        # the links themselves: a section's answer shows only those the files service says the
        # caller may read (tests/integration/metadata/test_section_datafiles.py), and this file is deleted
        return [link["datafile"] for link in metadata_db["datafile_links"].find({"section": number(section["id"])})]

    table["files.datafile.created"](events[0])
    assert linked(first) == [datafile]
    table["files.datafile.moved"](events[1])
    assert (linked(first), linked(second)) == ([], [datafile])
    table["files.datafile.deleted"](events[3])
    assert linked(second) == []
