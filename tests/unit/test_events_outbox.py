import copy

import pytest

from shared.events import make_envelope, outbox_fields, record_event, tombstone_update, with_outbox
from shared.events.outbox import OUTBOX_COLLECTION, outbox_collections


def env(n=1):
    return make_envelope("svc.thing.changed", {"n": n}, producer="svc")


def test_outbox_fields_for_an_insert():
    first, second = env(1), env(2)
    assert outbox_fields(first, second) == {"_outbox": [first, second], "_outbox_pending": True}
    assert outbox_fields() == {"_outbox": [], "_outbox_pending": False}


def test_with_outbox_adds_push_and_set():
    e = env()
    assert with_outbox({"$inc": {"n": 1}}, e) == {
        "$inc": {"n": 1},
        "$push": {"_outbox": {"$each": [e]}},
        "$set": {"_outbox_pending": True},
    }


def test_with_outbox_merges_with_existing_set_and_push_and_leaves_input_alone():
    e1, e2 = env(1), env(2)
    update = {"$set": {"name": "x", "_tombstone": False}, "$push": {"history": {"at": 1}}}
    before = copy.deepcopy(update)
    merged = with_outbox(update, e1, e2)
    assert update == before
    assert merged == {
        "$set": {"name": "x", "_tombstone": False, "_outbox_pending": True},
        "$push": {"history": {"at": 1}, "_outbox": {"$each": [e1, e2]}},
    }


def test_with_outbox_twice_accumulates_events():
    e1, e2, e3 = env(1), env(2), env(3)
    merged = with_outbox(with_outbox({"$set": {"a": 1}}, e1), e2, e3)
    assert merged["$push"]["_outbox"] == {"$each": [e1, e2, e3]}
    assert merged["$set"] == {"a": 1, "_outbox_pending": True}
    plain = with_outbox({"$push": {"_outbox": e1}}, e2)
    assert plain["$push"]["_outbox"] == {"$each": [e1, e2]}


def test_with_outbox_without_events_changes_nothing():
    assert with_outbox({"$set": {"a": 1}}) == {"$set": {"a": 1}}


@pytest.mark.parametrize(
    "update",
    [
        {"a": 1},  # a replacement document
        {"$set": {"_outbox_pending": False}},
        {"$set": {"_outbox": []}},
        {"$unset": {"_outbox_lease": ""}},
        {"$pull": {"_outbox": {"event_id": "x"}}},
        {"$push": {"_outbox": {"$each": [], "$slice": 3}}},
    ],
)
def test_with_outbox_refuses_updates_it_cannot_merge(update):
    with pytest.raises(ValueError):
        with_outbox(update, env())


def test_with_outbox_refuses_pipelines_and_non_envelopes():
    with pytest.raises(TypeError):
        with_outbox([{"$set": {"a": 1}}], env())
    with pytest.raises(TypeError):
        with_outbox({"$set": {"a": 1}}, {"payload": {}})


def test_tombstone_update():
    e = env()
    assert tombstone_update(e) == {"$set": {"_tombstone": True, "_outbox_pending": True}, "$push": {"_outbox": {"$each": [e]}}}
    assert tombstone_update() == {"$set": {"_tombstone": True, "_outbox_pending": True}}


class FakeCollection:
    def __init__(self):
        self.docs = []

    def insert_one(self, doc):
        self.docs.append(doc)


class FakeDb(dict):
    def __missing__(self, name):
        self[name] = FakeCollection()
        return self[name]


def test_record_event_writes_a_standalone_tombstoned_outbox_document():
    db, e = FakeDb(), env()
    assert record_event(db, e) == e["event_id"]
    assert db[OUTBOX_COLLECTION].docs == [
        {"_id": e["event_id"], "_outbox": [e], "_outbox_pending": True, "_tombstone": True}
    ]


def test_relay_always_scans_the_standalone_outbox_once():
    assert outbox_collections(["users", "outbox", "users"]) == ["users", "outbox"]
    assert outbox_collections([]) == ["outbox"]


def test_a_quiet_relay_polls_less_often_but_never_slower_than_max_idle():
    from shared.events.relay import OutboxRelay

    relay = OutboxRelay(None, amqp_url="amqp://unused", exchange="x", collections=[], poll_interval=0.05, max_idle=0.5)
    waits = [relay._idle_seconds(n) for n in range(8)]
    assert waits[0] == 0.05 and waits == sorted(waits)
    assert max(waits) == 0.5
