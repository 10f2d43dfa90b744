"""The broker goes away and comes back: nothing is lost, the relay and consumers reconnect.

A TCP proxy sits between them and RabbitMQ; stopping it drops its listening socket and cuts the
connections going through it, as a broker restart or a network cut would.
"""
from __future__ import annotations

import threading
import time

from shared.events import Consumer, OutboxRelay, make_envelope, outbox_fields, record_event, with_outbox
from stack.procs import wait_until


def test_events_written_while_the_broker_is_unreachable_are_published_when_it_is_back(events_db, bus, broker_proxy, threads):
    probe = bus.probe()
    things = events_db["things"]
    relay = OutboxRelay(
        events_db, amqp_url=broker_proxy.url, exchange=bus.exchange, collections=["things"], poll_interval=0.05, max_backoff=0.5
    )
    threads(relay.run)

    before = make_envelope("svc.thing.created", {"n": 0}, producer="svc")
    things.insert_one({"_id": 1, **outbox_fields(before)})
    assert [body for _, _, body in bus.get(probe, 1)] == [before]
    # The probe can see the message before the relay sees the broker's confirm; cut only once the
    # relay has settled it (cut earlier, it would rightly publish `before` again: at least once).
    assert wait_until(lambda: things.find_one({"_id": 1})["_outbox_pending"] is False, timeout=5)
    assert broker_proxy.connections == 1

    broker_proxy.stop()
    during = [make_envelope("svc.thing.renamed", {"n": n}, producer="svc") for n in (1, 2)]
    things.update_one({"_id": 1}, with_outbox({"$set": {"name": "x"}}, during[0]))
    record_event(events_db, during[1])

    assert wait_until(lambda: relay.last_error is not None, timeout=5), "the relay did not notice the broker was gone"
    time.sleep(1.0)  # several failed attempts
    assert relay.last_error is not None
    assert bus.get(probe, 1, timeout=0.2) == []
    assert things.find_one({"_id": 1})["_outbox"] == [during[0]]
    assert things.find_one({"_id": 1})["_outbox_pending"] is True
    assert events_db["outbox"].find_one({"_id": during[1]["event_id"]})["_outbox"] == [during[1]]

    broker_proxy.start()  # same port
    got = bus.get(probe, 2)
    assert sorted(body["payload"]["n"] for _, _, body in got) == [1, 2]
    assert {body["event_id"] for _, _, body in got} == {e["event_id"] for e in during}
    assert wait_until(lambda: relay.last_error is None, timeout=5)
    assert wait_until(lambda: things.count_documents({"_outbox_pending": True}) == 0, timeout=5)
    assert events_db["outbox"].count_documents({}) == 0
    assert bus.get(probe, 1, timeout=0.3) == []  # each event once
    assert broker_proxy.connections >= 2


def test_a_consumer_reconnects_and_consumes_what_was_published_meanwhile(events_db, bus, broker_proxy, threads):
    queue = bus.queue_name("outage")
    lock = threading.Lock()
    handled: list[int] = []

    def handler(envelope):
        with lock:
            handled.append(envelope["payload"]["n"])

    consumer = Consumer(
        amqp_url=broker_proxy.url,
        exchange=bus.exchange,
        queue=queue,
        handlers={"svc.thing.*": handler},
        db=events_db,
        poll_interval=0.05,
        max_backoff=0.5,
    )
    threads(consumer.run)
    assert wait_until(lambda: bus.exists(queue), timeout=10)
    bus.publish(make_envelope("svc.thing.created", {"n": 0}, producer="svc"))
    assert wait_until(lambda: handled == [0], timeout=10)

    broker_proxy.stop()
    assert wait_until(lambda: consumer.last_error is not None, timeout=5), "the consumer did not notice the broker was gone"
    for n in (1, 2, 3):
        bus.publish(make_envelope("svc.thing.created", {"n": n}, producer="svc"))  # straight to the broker
    time.sleep(1.0)
    assert handled == [0]
    assert bus.count(queue) in (3, 4)  # 4 when the cut came before the broker saw the ack of event 0

    broker_proxy.start()
    assert wait_until(lambda: len(handled) == 4, timeout=10)
    time.sleep(0.3)
    assert sorted(handled) == [0, 1, 2, 3]
    assert consumer.last_error is None
    assert bus.count(queue) == 0
    assert events_db["processed_events"].count_documents({}) == 4
