"""The outbox relay against a real RabbitMQ and the MongoDB stand-in."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import pytest

from shared.events import (
    OUTBOX_COLLECTION,
    OutboxRelay,
    envelope_for,
    make_envelope,
    outbox_fields,
    record_event,
    tombstone_update,
    with_outbox,
)
from stack.procs import wait_until


@dataclass(frozen=True)
class ThingRenamed:
    routing_key: ClassVar[str] = "svc.thing.renamed"
    thing_id: int
    name: str


def new_relay(events_db, bus, **options):
    return OutboxRelay(events_db, amqp_url=bus.amqp_url, exchange=bus.exchange, collections=["things"], poll_interval=0.05, **options)


def test_embedded_standalone_and_tombstone_events_are_published_and_removed(events_db, bus):
    probe = bus.probe()
    things = events_db["things"]
    created = make_envelope("svc.thing.created", {"thing_id": 1}, producer="svc")
    renamed = envelope_for(ThingRenamed(thing_id=1, name="b"), producer="svc")
    created2 = make_envelope("svc.thing.created", {"thing_id": 2}, producer="svc")
    deleted = make_envelope("svc.thing.deleted", {"thing_id": 2}, producer="svc")
    standalone = make_envelope("svc.report.generated", {"rows": 3}, producer="svc")

    things.insert_one({"_id": 1, "name": "a", **outbox_fields(created)})
    things.update_one({"_id": 1}, with_outbox({"$set": {"name": "b"}}, renamed))
    things.insert_one({"_id": 2, "name": "c", **outbox_fields(created2)})
    things.update_one({"_id": 2, "_tombstone": {"$ne": True}}, tombstone_update(deleted))
    record_event(events_db, standalone)
    assert things.find_one({"_id": 1})["name"] == "b"  # the state change and its events, one write each

    relay = new_relay(events_db, bus)
    try:
        assert relay.publish_pending() == 5
    finally:
        relay.close()

    messages = bus.get(probe, 5)
    assert len(messages) == 5
    bodies = {body["event_id"]: body for _, _, body in messages}
    expected = [created, renamed, created2, deleted, standalone]
    assert bodies == {e["event_id"]: e for e in expected}  # envelopes intact
    # one document's events keep their order
    order = [body["event_id"] for _, _, body in messages]
    assert order.index(created["event_id"]) < order.index(renamed["event_id"])
    assert order.index(created2["event_id"]) < order.index(deleted["event_id"])
    for method, properties, body in messages:
        assert method.routing_key == body["type"]
        assert properties.message_id == body["event_id"]
        assert properties.type == body["type"]
        assert properties.delivery_mode == 2
        assert properties.content_type == "application/json"

    kept = things.find_one({"_id": 1})
    assert kept["_outbox"] == [] and kept["_outbox_pending"] is False and "_outbox_lease" not in kept
    assert kept["name"] == "b"
    assert things.find_one({"_id": 2}) is None  # tombstone deleted once its event was out
    assert events_db[OUTBOX_COLLECTION].count_documents({}) == 0
    assert bus.get(probe, 1, timeout=0.3) == []  # nothing twice


def test_an_event_pushed_while_publishing_is_not_lost(events_db, bus):
    probe = bus.probe()
    things = events_db["things"]
    first = make_envelope("svc.thing.created", {"n": 1}, producer="svc")
    late = make_envelope("svc.thing.renamed", {"n": 2}, producer="svc")
    things.insert_one({"_id": 1, **outbox_fields(first)})

    relay = new_relay(events_db, bus)
    publish = relay._publish

    def publish_then_race(channel, envelope):
        publish(channel, envelope)
        if envelope["event_id"] == first["event_id"]:
            # The service writes again between the broker's confirm and the relay's $pull.
            things.update_one({"_id": 1}, with_outbox({"$set": {"name": "x"}}, late))

    relay._publish = publish_then_race
    try:
        assert relay.publish_pending() == 2  # the late event is published in the same pass
    finally:
        relay.close()
    assert [body["event_id"] for _, _, body in bus.get(probe, 2)] == [first["event_id"], late["event_id"]]
    doc = things.find_one({"_id": 1})
    assert doc["_outbox"] == [] and doc["_outbox_pending"] is False


def test_pending_flag_stays_while_events_remain(events_db, bus):
    """The race above, frozen: the late event is in the list when the relay settles the document."""
    bus.probe()
    things = events_db["things"]
    first = make_envelope("svc.thing.created", {"n": 1}, producer="svc")
    late = make_envelope("svc.thing.renamed", {"n": 2}, producer="svc")
    things.insert_one({"_id": 1, **outbox_fields(first)})
    relay = new_relay(events_db, bus)
    try:
        (doc,), lease = relay._claim_many(things, [1])
        things.update_one({"_id": 1}, with_outbox({"$set": {"name": "x"}}, late))
        assert relay._drain_many(things, [doc], lease) == 1
        after = things.find_one({"_id": 1})
        assert after["_outbox"] == [late] and after["_outbox_pending"] is True
    finally:
        relay.close()


def test_a_leased_document_is_not_claimed_by_another_relay(events_db, bus):
    probe = bus.probe()
    things = events_db["things"]
    event = make_envelope("svc.thing.created", {"n": 1}, producer="svc")
    things.insert_one({"_id": 1, **outbox_fields(event)})
    first, second = new_relay(events_db, bus), new_relay(events_db, bus)
    try:
        (doc,), lease = first._claim_many(things, [1])
        assert doc is not None
        assert second.publish_pending() == 0
        assert first._drain_many(things, [doc], lease) == 1
        assert second.publish_pending() == 0
    finally:
        first.close()
        second.close()
    assert len(bus.get(probe, 2, timeout=1)) == 1


def test_an_expired_lease_is_taken_over(events_db, bus):
    probe = bus.probe()
    things = events_db["things"]
    things.insert_one({"_id": 1, **outbox_fields(make_envelope("svc.thing.created", {}, producer="svc"))})
    crashed, survivor = new_relay(events_db, bus, lease_seconds=0.2), new_relay(events_db, bus)
    try:
        (doc,), _ = crashed._claim_many(things, [1])  # ...and never finishes
        assert doc is not None
        assert survivor.publish_pending() == 0
        time.sleep(0.4)
        assert survivor.publish_pending() == 1
    finally:
        crashed.close()
        survivor.close()
    assert len(bus.get(probe, 1)) == 1


def test_a_revived_tombstone_is_not_deleted(events_db, bus):
    bus.probe()
    links = events_db["things"]
    added = make_envelope("svc.link.added", {}, producer="svc")
    removed = make_envelope("svc.link.removed", {}, producer="svc")
    again = make_envelope("svc.link.added", {}, producer="svc")
    links.insert_one({"_id": "1:2", **outbox_fields(added)})
    links.update_one({"_id": "1:2", "_tombstone": {"$ne": True}}, tombstone_update(removed))
    links.update_one({"_id": "1:2"}, with_outbox({"$set": {"_tombstone": False}}, again), upsert=True)
    relay = new_relay(events_db, bus)
    try:
        assert relay.publish_pending() == 3
    finally:
        relay.close()
    doc = links.find_one({"_id": "1:2"})
    assert doc is not None and doc["_tombstone"] is False and doc["_outbox"] == []


@pytest.mark.parametrize("with_events", [True, False])
def test_relay_run_loop_publishes_new_events_as_they_come(events_db, bus, threads, with_events):
    probe = bus.probe()
    relay = new_relay(events_db, bus)
    threads(relay.run)
    event = make_envelope("svc.thing.created", {}, producer="svc")
    if with_events:
        events_db["things"].insert_one({"_id": 1, **outbox_fields(event)})
    else:
        events_db["things"].insert_one({"_id": 1, "_outbox_pending": True, "_tombstone": True})  # no events, just a delete
    if with_events:
        assert [body for _, _, body in bus.get(probe, 1)] == [event]
    assert wait_until(lambda: events_db["things"].count_documents({"_outbox_pending": True}) == 0, timeout=5)
    if not with_events:
        assert events_db["things"].count_documents({}) == 0


def test_run_out_and_old_style_leases_are_claimed_again(events_db, bus):
    from datetime import datetime, timedelta, timezone

    bus.probe()
    things = events_db["things"]
    past = datetime.now(timezone.utc) - timedelta(minutes=5)
    future = datetime.now(timezone.utc) + timedelta(minutes=5)
    leases = {1: {"until": past, "by": "gone"}, 2: past, 3: {"until": future, "by": "busy"}}
    for number, lease in leases.items():
        event = make_envelope("svc.thing.created", {"n": number}, producer="svc")
        things.insert_one({"_id": number, **outbox_fields(event), "_outbox_lease": lease})
    relay = new_relay(events_db, bus)
    try:
        assert sorted(relay._candidates(things, 10)) == [1, 2]
        claimed, _ = relay._claim_many(things, [1, 2, 3])
        assert [doc["_id"] for doc in claimed] == [1, 2]
    finally:
        relay.close()
