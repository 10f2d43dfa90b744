from types import SimpleNamespace

import pytest

from shared.events import (
    Consumer,
    DeadLetter,
    Retry,
    decide_on_failure,
    encode_envelope,
    find_handler,
    make_envelope,
    match_routing_key,
    retry_count,
)
from shared.events.backoff import Backoff


@pytest.mark.parametrize(
    "pattern, key, expected",
    [
        ("auth.user.deleted", "auth.user.deleted", True),
        ("auth.user.deleted", "auth.user.created", False),
        ("auth.*.deleted", "auth.user.deleted", True),
        ("auth.*.deleted", "auth.user.x.deleted", False),
        ("auth.#", "auth.user.deleted", True),
        ("auth.#", "auth", True),
        ("#", "anything.at.all", True),
        ("#.deleted", "auth.user.deleted", True),
        ("#.deleted", "auth.user.created", False),
        ("auth.#.deleted", "auth.deleted", True),
        ("auth.#.deleted", "auth.a.b.deleted", True),
        ("*.user.*", "auth.user.deleted", True),
        ("*.user.*", "user.deleted", False),
        ("acl.#", "auth.user.deleted", False),
    ],
)
def test_topic_matching(pattern, key, expected):
    assert match_routing_key(pattern, key) is expected


def test_find_handler_prefers_exact_keys_then_table_order():
    exact, wildcard, catch_all = object(), object(), object()
    handlers = {"auth.#": wildcard, "#": catch_all, "auth.user.deleted": exact}
    assert find_handler(handlers, "auth.user.deleted") is exact
    assert find_handler(handlers, "auth.session.revoked") is wildcard
    assert find_handler(handlers, "acl.permissions.changed") is catch_all
    assert find_handler({"auth.#": wildcard}, "acl.permissions.changed") is None


def test_retry_count_from_headers():
    assert retry_count(None) == 0
    assert retry_count({}) == 0
    assert retry_count({"x-retry-count": 2}) == 2
    assert retry_count({"x-retry-count": "garbage"}) == 0
    assert retry_count({"x-retry-count": -4}) == 0


def test_retry_then_dead_letter_decision():
    assert decide_on_failure(0, max_retries=3, retry_delay_ms=200) == Retry(attempt=1, delay_ms=200)
    assert decide_on_failure(1, max_retries=3, retry_delay_ms=200) == Retry(attempt=2, delay_ms=400)
    assert decide_on_failure(2, max_retries=3, retry_delay_ms=200) == Retry(attempt=3, delay_ms=800)
    assert decide_on_failure(3, max_retries=3, retry_delay_ms=200) == DeadLetter(attempts=4)
    assert decide_on_failure(0, max_retries=0, retry_delay_ms=200) == DeadLetter(attempts=1)
    assert decide_on_failure(20, max_retries=30, retry_delay_ms=200).delay_ms == 60_000  # capped


def test_backoff_doubles_to_its_cap_and_resets():
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1


# -- one delivery, with fakes -------------------------------------------------------------------
class FakeChannel:
    def __init__(self):
        self.acked, self.nacked, self.published = [], [], []

    def basic_ack(self, delivery_tag):
        self.acked.append(delivery_tag)

    def basic_nack(self, delivery_tag, requeue=True):
        self.nacked.append((delivery_tag, requeue))

    def basic_publish(self, exchange, routing_key, body, properties=None, mandatory=False):
        self.published.append(SimpleNamespace(exchange=exchange, routing_key=routing_key, body=body, properties=properties))


class FakeStore:
    def __init__(self, seen=()):
        self.ids = set(seen)
        self.marked = []

    def seen(self, event_id):
        return event_id in self.ids

    def mark(self, event_id, event_type=None):
        self.marked.append(event_id)
        self.ids.add(event_id)


def make_consumer(handlers, store=None, max_retries=3):
    return Consumer(
        amqp_url="amqp://unused",
        exchange="gnode.unit",
        queue="svc.purpose",
        handlers=handlers,
        db=None,
        store=store or FakeStore(),
        max_retries=max_retries,
        retry_delay_ms=100,
    )


def deliver(consumer, body, *, key="auth.user.deleted", headers=None, tag=7):
    channel = FakeChannel()
    method = SimpleNamespace(delivery_tag=tag, routing_key=key, redelivered=False)
    properties = SimpleNamespace(headers=headers, message_id=None, type=key, content_type="application/json", app_id=None, timestamp=None)
    outcome = consumer.handle_delivery(channel, method, properties, body)
    return outcome, channel


ENVELOPE = make_envelope("auth.user.deleted", {"user_id": 1}, producer="auth")


def test_success_runs_the_handler_records_then_acks():
    seen = []
    store = FakeStore()
    consumer = make_consumer({"auth.#": seen.append}, store)
    outcome, channel = deliver(consumer, encode_envelope(ENVELOPE))
    assert outcome == "handled"
    assert seen == [ENVELOPE]
    assert store.marked == [ENVELOPE["event_id"]]
    assert channel.acked == [7] and channel.nacked == [] and channel.published == []


def test_an_event_already_processed_is_acked_without_the_handler():
    seen = []
    consumer = make_consumer({"auth.#": seen.append}, FakeStore(seen=[ENVELOPE["event_id"]]))
    outcome, channel = deliver(consumer, encode_envelope(ENVELOPE))
    assert outcome == "duplicate" and seen == [] and channel.acked == [7]


def test_unknown_routing_key_is_acked():
    consumer = make_consumer({"acl.#": lambda e: None})
    outcome, channel = deliver(consumer, encode_envelope(ENVELOPE))
    assert outcome == "unhandled" and channel.acked == [7] and channel.nacked == []


@pytest.mark.parametrize("body", [b"{oops", b'{"payload": {}}', b"[]"])
def test_malformed_messages_go_to_the_dead_queue(body):
    called = []
    consumer = make_consumer({"#": called.append})
    outcome, channel = deliver(consumer, body)
    assert outcome == "dead" and channel.nacked == [(7, False)] and channel.acked == [] and called == []


def boom(envelope):
    raise RuntimeError("handler failed")


def test_failure_with_retries_left_republishes_to_the_retry_queue_then_acks():
    store = FakeStore()
    consumer = make_consumer({"auth.#": boom}, store)
    outcome, channel = deliver(consumer, encode_envelope(ENVELOPE), headers={"x-retry-count": 1, "x-death": [{}], "trace": "t"})
    assert outcome == "retried"
    assert channel.acked == [7] and channel.nacked == [] and store.marked == []
    (copy,) = channel.published
    assert copy.exchange == "" and copy.routing_key == "svc.purpose.retry"
    assert copy.body == encode_envelope(ENVELOPE)
    assert copy.properties.headers["x-retry-count"] == 2
    assert copy.properties.headers["x-original-routing-key"] == "auth.user.deleted"
    assert copy.properties.headers["trace"] == "t" and "x-death" not in copy.properties.headers
    assert copy.properties.expiration == "200" and copy.properties.delivery_mode == 2


def test_retried_message_is_routed_by_its_original_key():
    seen = []
    consumer = make_consumer({"auth.user.deleted": seen.append})
    outcome, _ = deliver(consumer, encode_envelope(ENVELOPE), key="svc.purpose", headers={"x-retry-count": 1, "x-original-routing-key": "auth.user.deleted"})
    assert outcome == "handled" and seen == [ENVELOPE]


def test_failure_without_retries_left_dead_letters():
    consumer = make_consumer({"auth.#": boom}, max_retries=3)
    outcome, channel = deliver(consumer, encode_envelope(ENVELOPE), headers={"x-retry-count": 3})
    assert outcome == "dead" and channel.nacked == [(7, False)] and channel.acked == [] and channel.published == []


def test_a_failure_is_logged_with_the_event_id(caplog):
    consumer = make_consumer({"auth.#": boom})
    deliver(consumer, encode_envelope(ENVELOPE))
    assert any(ENVELOPE["event_id"] in record.getMessage() for record in caplog.records if record.levelname == "ERROR")


def test_store_errors_propagate_without_settling_the_message():
    class BrokenStore(FakeStore):
        def seen(self, event_id):
            raise ConnectionError("mongo down")

    consumer = make_consumer({"auth.#": lambda e: None}, BrokenStore())
    channel = FakeChannel()
    with pytest.raises(ConnectionError):
        consumer.handle_delivery(channel, SimpleNamespace(delivery_tag=1, routing_key="auth.user.deleted"), SimpleNamespace(headers=None), encode_envelope(ENVELOPE))
    assert channel.acked == [] and channel.nacked == []


def test_nothing_connects_when_a_consumer_or_relay_is_built():
    from shared.events import OutboxRelay

    make_consumer({"#": lambda e: None})
    relay = OutboxRelay(db=None, amqp_url="amqp://guest:guest@127.0.0.1:1/%2F", exchange="x", collections=["a"])
    assert relay.collections == ["a", "outbox"]
