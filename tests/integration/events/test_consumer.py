"""Consumers against a real RabbitMQ and the MongoDB stand-in: duplicates, retries, dead letters, crashes."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from shared.events import Consumer, dead_queue_name, make_envelope, retry_queue_name
from stack.procs import wait_until

REPO = Path(__file__).resolve().parents[3]


def new_consumer(bus, events_db, queue, handlers, **options):
    return Consumer(amqp_url=bus.amqp_url, exchange=bus.exchange, queue=queue, handlers=handlers, db=events_db, **options)


def test_a_duplicate_event_is_handled_once(events_db, bus):
    queue = bus.queue_name("dupes")
    calls = []

    def handler(envelope):
        calls.append(envelope["event_id"])
        events_db["effects"].update_one({"_id": envelope["event_id"]}, {"$inc": {"n": 1}}, upsert=True)

    consumer = new_consumer(bus, events_db, queue, {"svc.thing.*": handler})
    consumer.declare()
    event = make_envelope("svc.thing.created", {"n": 1}, producer="svc")
    other = make_envelope("svc.thing.created", {"n": 2}, producer="svc")
    try:
        bus.publish(event)
        bus.publish(event)  # the same event_id twice (e.g. a relay that died before its $pull)
        bus.publish(other)
        assert consumer.process_available(timeout=5, idle=0.5) == 3
        bus.publish(event)  # and once more, later
        assert consumer.process_available(timeout=5, idle=0.5) == 1
    finally:
        consumer.close()
    assert calls == [event["event_id"], other["event_id"]]
    assert events_db["effects"].find_one({"_id": event["event_id"]})["n"] == 1
    assert events_db["processed_events"].find_one({"_id": f"{queue}:{event['event_id']}"}) is not None
    assert bus.count(queue) == 0 and bus.count(dead_queue_name(queue)) == 0


def test_a_message_that_always_fails_is_dead_lettered_after_max_retries(events_db, bus, threads):
    queue = bus.queue_name("poison")
    attempts = []

    def handler(envelope):
        attempts.append(time.monotonic())
        raise RuntimeError("cannot handle this")

    consumer = new_consumer(bus, events_db, queue, {"svc.#": handler}, max_retries=3, retry_delay_ms=50, poll_interval=0.05)
    consumer.declare()
    consumer.close()
    event = make_envelope("svc.thing.created", {"n": 1}, producer="svc")
    threads(consumer.run)
    bus.publish(event)
    assert wait_until(lambda: bus.count(dead_queue_name(queue)) == 1, timeout=10)
    time.sleep(0.5)  # nothing more happens to it
    assert len(attempts) == 3 + 1
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.04 and gaps[2] >= 0.19  # 50, 100, 200 ms of backoff
    assert bus.count(queue) == 0 and bus.count(retry_queue_name(queue)) == 0
    ((method, properties, body),) = bus.get(dead_queue_name(queue), 1)
    assert body == event
    assert properties.headers["x-retry-count"] == 3
    assert properties.headers["x-original-routing-key"] == "svc.thing.created"
    assert properties.headers["x-death"][0]["reason"] == "rejected"
    assert events_db["processed_events"].count_documents({}) == 0


def test_a_transient_failure_is_retried_then_handled(events_db, bus, threads):
    queue = bus.queue_name("flaky")
    attempts = []

    def handler(envelope):
        attempts.append(envelope["event_id"])
        if len(attempts) < 3:
            raise ConnectionError("downstream hiccup")

    consumer = new_consumer(bus, events_db, queue, {"svc.thing.created": handler}, max_retries=3, retry_delay_ms=30, poll_interval=0.05)
    consumer.declare()
    consumer.close()
    event = make_envelope("svc.thing.created", {}, producer="svc")
    threads(consumer.run)
    bus.publish(event)
    assert wait_until(lambda: events_db["processed_events"].count_documents({}) == 1, timeout=10)
    assert attempts == [event["event_id"]] * 3
    assert bus.count(dead_queue_name(queue)) == 0


def test_malformed_and_unknown_messages(events_db, bus):
    queue = bus.queue_name("odd")
    seen = []
    consumer = new_consumer(bus, events_db, queue, {"svc.thing.created": seen.append, "svc.other.#": seen.append})
    consumer.declare()
    unknown = make_envelope("svc.other2.created", {}, producer="svc")
    try:
        bus.publish({"event_id": "x"}, body=b"not json at all", routing_key="svc.thing.created")
        bus.publish({}, body=b'{"type": "svc.thing.created", "payload": {}}', routing_key="svc.thing.created")
        # a key the queue is bound to (by hand here) but that no handler matches
        bus._channel.queue_bind(queue=queue, exchange=bus.exchange, routing_key="svc.other2.created")
        bus.publish(unknown)
        assert consumer.process_available(timeout=5, idle=0.5) == 3
    finally:
        consumer.close()
    assert seen == []
    assert bus.count(dead_queue_name(queue)) == 2
    assert bus.count(queue) == 0


CRASHING_CONSUMER = textwrap.dedent(
    """
    import sys, threading, time
    import pymongo
    from shared.events import Consumer

    amqp_url, exchange, queue, mongo_url, db_name = sys.argv[1:6]
    db = pymongo.MongoClient(mongo_url)[db_name]

    def handler(envelope):
        db.effects.update_one({"_id": "started:" + envelope["event_id"]}, {"$inc": {"n": 1}}, upsert=True)
        time.sleep(60)  # killed in here, before the ack
        db.effects.update_one({"_id": envelope["event_id"]}, {"$inc": {"n": 1}}, upsert=True)

    Consumer(amqp_url=amqp_url, exchange=exchange, queue=queue, handlers={"svc.#": handler}, db=db).run(threading.Event())
    """
)


def test_a_consumer_killed_mid_message_gets_it_again_and_the_effect_happens_once(events_db, bus, mongo_url, threads):
    queue = bus.queue_name("crash")
    event = make_envelope("svc.thing.created", {"n": 1}, producer="svc")
    effects = events_db["effects"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CONSUMER, bus.amqp_url, bus.exchange, queue, mongo_url, events_db.name],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_until(lambda: bus.exists(queue) or child.poll() is not None, timeout=15), "the consumer did not start"
        assert child.poll() is None, child.stderr.read().decode()
        bus.publish(event)
        started = {"_id": "started:" + event["event_id"]}
        assert wait_until(lambda: effects.find_one(started) is not None, timeout=10), "the handler did not start"
    finally:
        child.kill()  # SIGKILL, mid-handler
        child.wait(10)
    assert effects.find_one({"_id": event["event_id"]}) is None  # it died before its effect

    lock = threading.Lock()
    redelivered = []

    def handler(envelope):
        with lock:
            redelivered.append(envelope["event_id"])
        effects.update_one({"_id": "started:" + envelope["event_id"]}, {"$inc": {"n": 1}}, upsert=True)
        effects.update_one({"_id": envelope["event_id"]}, {"$inc": {"n": 1}}, upsert=True)

    survivor = new_consumer(bus, events_db, queue, {"svc.#": handler}, poll_interval=0.05)
    threads(survivor.run)
    assert wait_until(lambda: effects.find_one({"_id": event["event_id"]}) is not None, timeout=10)
    bus.publish(event)  # and a late duplicate for good measure
    time.sleep(0.7)
    assert redelivered == [event["event_id"]]
    assert effects.find_one(started)["n"] == 2  # the handler ran in both processes...
    assert effects.find_one({"_id": event["event_id"]})["n"] == 1  # ...its effect happened once
    assert bus.count(queue) == 0 and bus.count(dead_queue_name(queue)) == 0
