"""The files worker consumes `acl.permissions.changed` (queue `files.acl`) and `auth.friendship.*`
(queue `files.friendships`) from the broker, beside its conversion consumer."""
from __future__ import annotations

import time

import pika
import pytest

from services.files.acl import ACL_QUEUE, FRIENDSHIPS_QUEUE
from shared.events import encode_envelope, queue_name
from tests.integration.files.conftest import envelope, number

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def publish(files_config):
    exchange = files_config["EVENT_EXCHANGE"]
    connection = pika.BlockingConnection(pika.URLParameters(files_config["AMQP_URL"]))

    def wait_for_queue(purpose, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            channel = connection.channel()
            try:
                channel.queue_declare(queue=queue_name(exchange, purpose), passive=True)
                channel.close()
                return
            except pika.exceptions.ChannelClosedByBroker:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the worker never declared {purpose}") from None
                connection.sleep(0.05)

    def send(purpose, event):
        wait_for_queue(purpose)  # a message published before the queue is bound would be dropped
        channel = connection.channel()
        channel.basic_publish(exchange=exchange, routing_key=event["type"], body=encode_envelope(event),
                              properties=pika.BasicProperties(message_id=event["event_id"], delivery_mode=2,
                                                              content_type="application/json"))
        channel.close()

    yield send
    connection.close()


def eventually(check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time limit")
        time.sleep(0.05)


def test_the_worker_applies_acl_changes_and_friendships(api, other, publish, db):
    fields = api.upload("friendly.txt", b"for friends", convert=0)
    path = f"/datafiles/{number(fields['id'])}/"
    publish(ACL_QUEUE, envelope("acl.permissions.changed", {"changes": [
        {"resource": fields["id"], "owner": api.user_id, "safety_level": 2, "shared_with": {}, "readers": [],
         "writers": [], "version": 1}], "by": api.user_id, "reason": "acl"}))
    eventually(lambda: (db["datafiles"].find_one({"_id": number(fields["id"])}) or {}).get("acl_version") == 1)
    assert api.fields(fields["id"])["safety_level"] == 2
    assert other.get(path).status_code == 403

    publish(FRIENDSHIPS_QUEUE, envelope("auth.friendship.added", {"user_id": api.user_id, "friend_id": other.user_id}))
    eventually(lambda: other.get(path).status_code == 200)
