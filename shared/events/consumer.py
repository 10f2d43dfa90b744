"""Consuming events: one durable queue per service and purpose, manual ack, bounded retries.

For each delivery:
1. a body that is not an envelope (not JSON, no `event_id`) goes straight to `<queue>.dead`;
2. a routing key no handler matches is logged and acked;
3. an event already in the idempotency store (`processed_events`, `_id = "<queue>:<event_id>"`)
   is acked without calling the handler;
4. otherwise the handler runs; on success the event is recorded in the store, then acked;
5. on an exception, a copy goes to `<queue>.retry` with `x-retry-count` + 1 and an `expiration`
   of `retry_delay_ms * 2**count` (published with confirms), then the original is acked; after
   `max_retries` retries the message is nacked without requeue and dead-letters to `<queue>.dead`.

Handlers receive the whole envelope (`event_id`, `type`, `occurred_at`, `producer`, `payload`)
and MUST be idempotent: a crash after the handler's writes but before the store records the
event means the event is handled again. The store is the second line of defence, not the first.
A handler should keep its writes to single-document updates that can be repeated ($set, $addToSet,
upserts keyed by the event or the entity), so a repeat changes nothing. Keep handlers short: the
connection's heartbeats wait while a handler runs (RabbitMQ drops it after about a minute and
redelivers).

Messages in `<queue>.retry` only expire at the head of that queue, so a long delay can hold up
shorter ones behind it; retries are about transient failures, not scheduling.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import pika
from pika.exceptions import AMQPError, UnroutableError
from pymongo.errors import DuplicateKeyError

from shared.events.backoff import Backoff
from shared.events.envelope import MalformedEvent, decode_envelope
from shared.events.topology import declare_consumer_topology, open_connection, retry_queue_name

log = logging.getLogger(__name__)

Handler = Callable[[dict], None]
RETRY_COUNT_HEADER = "x-retry-count"
ORIGINAL_KEY_HEADER = "x-original-routing-key"
LAST_ERROR_HEADER = "x-last-error"
PROCESSED_COLLECTION = "processed_events"
MAX_RETRY_DELAY_MS = 60_000


# -- pure decisions (unit-tested) ---------------------------------------------------------------
def match_routing_key(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` zero or more words."""
    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        head, rest = p[0], p[1:]
        if head == "#":
            return any(match(rest, k[i:]) for i in range(len(k) + 1))
        if not k:
            return False
        return (head == "*" or head == k[0]) and match(rest, k[1:])

    return match(pattern.split("."), key.split("."))


def find_handler(handlers: Mapping[str, Handler], key: str) -> Handler | None:
    """The handler for a routing key: an exact key wins, else the first matching pattern in table order."""
    if key in handlers:
        return handlers[key]
    for pattern, handler in handlers.items():
        if match_routing_key(pattern, key):
            return handler
    return None


def retry_count(headers: Mapping[str, Any] | None) -> int:
    """How many times this message has been retried already (0 on its first delivery)."""
    try:
        return max(int((headers or {}).get(RETRY_COUNT_HEADER, 0)), 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Retry:
    attempt: int  # the new x-retry-count
    delay_ms: int


@dataclass(frozen=True)
class DeadLetter:
    attempts: int  # how many times the handler ran


def decide_on_failure(retries_so_far: int, *, max_retries: int, retry_delay_ms: int) -> Retry | DeadLetter:
    """After a failed attempt: retry later (with exponential delay) or give up to the dead queue."""
    if retries_so_far < max_retries:
        delay = min(retry_delay_ms * 2**retries_so_far, MAX_RETRY_DELAY_MS)
        return Retry(attempt=retries_so_far + 1, delay_ms=max(int(delay), 1))
    return DeadLetter(attempts=retries_so_far + 1)


# -- idempotency store --------------------------------------------------------------------------
class ProcessedStore:
    """Event ids a queue has handled, in `processed_events` (unique by `_id`)."""

    def __init__(self, db, queue: str, collection: str = PROCESSED_COLLECTION):
        self.collection = db[collection]
        self.queue = queue

    def _key(self, event_id: str) -> str:
        return f"{self.queue}:{event_id}"

    def seen(self, event_id: str) -> bool:
        return self.collection.find_one({"_id": self._key(event_id)}, {"_id": 1}) is not None

    def mark(self, event_id: str, event_type: str | None = None) -> None:
        try:
            self.collection.insert_one(
                {
                    "_id": self._key(event_id),
                    "queue": self.queue,
                    "event_id": event_id,
                    "type": event_type,
                    "processed_at": datetime.now(timezone.utc),
                }
            )
        except DuplicateKeyError:
            pass  # another consumer of the same queue got there first: the effect is done either way


class Consumer:
    """Consumes one queue with a handler table keyed by binding key (`#`/`*` allowed)."""

    def __init__(
        self,
        *,
        amqp_url: str,
        exchange: str,
        queue: str,
        handlers: Mapping[str, Handler],
        db,
        prefetch: int = 16,
        max_retries: int = 3,
        retry_delay_ms: int = 200,
        max_backoff: float = 5.0,
        poll_interval: float = 0.2,
        store: ProcessedStore | None = None,
    ):
        if not handlers:
            raise ValueError(f"consumer {queue!r} has no handlers")
        if store is None and db is None:
            raise ValueError("a consumer needs a db (or a store) for its idempotency records")
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.queue = queue
        self.handlers = dict(handlers)
        self.prefetch = prefetch
        self.max_retries = max_retries
        self.retry_delay_ms = retry_delay_ms
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.store = store or ProcessedStore(db, queue)
        self.last_error: str | None = None
        self.deliveries = 0
        self._last_delivery = time.monotonic()
        self._connection: pika.BlockingConnection | None = None
        self._channel = None
        self._retry_channel = None
        self._consuming = False

    # -- one delivery -------------------------------------------------------------------------
    def handle_delivery(self, channel, method, properties, body: bytes) -> str:
        """Decide and settle one delivery; returns the outcome, for logs and tests:
        "handled", "duplicate", "unhandled", "retried" or "dead"."""
        self.deliveries += 1
        tag = method.delivery_tag
        headers = dict(getattr(properties, "headers", None) or {})
        key = headers.get(ORIGINAL_KEY_HEADER) or method.routing_key
        try:
            envelope = decode_envelope(body)
        except MalformedEvent as exc:
            log.error(
                "malformed message on %s (%s): sent to the dead queue",
                self.queue,
                exc,
                extra={"queue": self.queue, "routing_key": key, "message_id": getattr(properties, "message_id", None)},
            )
            channel.basic_nack(delivery_tag=tag, requeue=False)
            return "dead"
        event_id = envelope["event_id"]
        context = {"queue": self.queue, "event_id": event_id, "routing_key": key}
        handler = find_handler(self.handlers, key)
        if handler is None:
            log.warning("no handler on %s for %s (event %s): acked", self.queue, key, event_id, extra=context)
            channel.basic_ack(delivery_tag=tag)
            return "unhandled"
        # Store errors are not the event's fault: they propagate, the connection is dropped and
        # the broker redelivers the unacked message after the reconnect.
        if self.store.seen(event_id):
            log.info("event %s already processed on %s: skipped", event_id, self.queue, extra=context)
            channel.basic_ack(delivery_tag=tag)
            return "duplicate"
        retries = retry_count(headers)
        try:
            handler(envelope)
        except Exception as exc:
            decision = decide_on_failure(retries, max_retries=self.max_retries, retry_delay_ms=self.retry_delay_ms)
            log.error(
                "handler for %s failed on event %s (attempt %d of %d): %s",
                key,
                event_id,
                retries + 1,
                self.max_retries + 1,
                exc,
                exc_info=True,
                extra={**context, "attempt": retries + 1},
            )
            if isinstance(decision, Retry):
                try:
                    self._publish_retry(channel, properties, body, key=key, headers=headers, decision=decision, error=exc)
                except UnroutableError:
                    log.error("retry queue of %s is missing: event %s sent to the dead queue", self.queue, event_id, extra=context)
                    channel.basic_nack(delivery_tag=tag, requeue=False)
                    return "dead"
                channel.basic_ack(delivery_tag=tag)
                return "retried"
            log.error("event %s gave up after %d attempts: sent to the dead queue", event_id, decision.attempts, extra=context)
            channel.basic_nack(delivery_tag=tag, requeue=False)
            return "dead"
        self.store.mark(event_id, envelope.get("type"))
        channel.basic_ack(delivery_tag=tag)
        return "handled"

    def _publish_retry(self, channel, properties, body, *, key, headers, decision: Retry, error: Exception) -> None:
        retry_headers = {k: v for k, v in headers.items() if k != "x-death"}
        retry_headers.update(
            {RETRY_COUNT_HEADER: decision.attempt, ORIGINAL_KEY_HEADER: key, LAST_ERROR_HEADER: f"{type(error).__name__}: {error}"[:500]}
        )
        publisher = self._retry_channel or channel
        publisher.basic_publish(
            exchange="",
            routing_key=retry_queue_name(self.queue),
            body=body,
            properties=pika.BasicProperties(
                content_type=getattr(properties, "content_type", None) or "application/json",
                delivery_mode=2,
                message_id=getattr(properties, "message_id", None),
                type=getattr(properties, "type", None),
                app_id=getattr(properties, "app_id", None),
                timestamp=getattr(properties, "timestamp", None),
                headers=retry_headers,
                expiration=str(decision.delay_ms),
            ),
            mandatory=True,
        )

    # -- connection -----------------------------------------------------------------------------
    def declare(self) -> None:
        """Connect (if needed) and declare the exchanges, queues and bindings, without consuming yet."""
        self._ensure_connected(consume=False)

    def _ensure_connected(self, *, consume: bool = True) -> None:
        if not (self._connection is not None and self._connection.is_open and self._channel is not None and self._channel.is_open):
            self.close()
            self._connection = open_connection(self.amqp_url)
            channel = self._connection.channel()
            declare_consumer_topology(channel, exchange=self.exchange, queue=self.queue, binding_keys=self.handlers)
            channel.basic_qos(prefetch_count=self.prefetch)
            retry_channel = self._connection.channel()
            retry_channel.confirm_delivery()
            self._channel, self._retry_channel, self._consuming = channel, retry_channel, False
            log.info("consumer connected", extra={"queue": self.queue, "exchange": self.exchange})
        if consume and not self._consuming:
            self._channel.basic_consume(queue=self.queue, on_message_callback=self._on_message, auto_ack=False)
            self._consuming = True

    def _on_message(self, channel, method, properties, body) -> None:
        outcome = self.handle_delivery(channel, method, properties, body)
        self._last_delivery = time.monotonic()
        log.debug("delivery on %s: %s", self.queue, outcome)

    def close(self) -> None:
        connection, self._connection, self._channel, self._retry_channel = self._connection, None, None, None
        self._consuming = False
        if connection is not None and connection.is_open:
            try:
                connection.close()  # unacked messages go back to the queue
            except Exception:
                pass

    def process_available(self, timeout: float = 5.0, idle: float = 0.5) -> int:
        """For tests: consume until no delivery came for `idle` seconds (or `timeout`); returns deliveries seen."""
        self._ensure_connected()
        assert self._connection is not None
        before = self.deliveries
        self._last_delivery = time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and time.monotonic() - self._last_delivery < idle:
            self._connection.process_data_events(time_limit=0.05)
        return self.deliveries - before

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, reconnecting with backoff when the broker (or MongoDB) fails."""
        backoff = Backoff(min(0.1, self.max_backoff), self.max_backoff)
        log.info("consumer started", extra={"queue": self.queue})
        try:
            while not stop.is_set():
                try:
                    self._ensure_connected()
                    if self.last_error is not None:
                        log.info("consumer on %s reconnected", self.queue)
                        self.last_error = None
                    backoff.reset()
                    while not stop.is_set():
                        assert self._connection is not None
                        self._connection.process_data_events(time_limit=self.poll_interval)
                except Exception as exc:
                    delay = backoff.next()
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    level = logging.WARNING if isinstance(exc, AMQPError) else logging.ERROR
                    log.log(level, "consumer on %s lost its connection (%s); retrying in %.1fs", self.queue, self.last_error, delay,
                            exc_info=not isinstance(exc, AMQPError))
                    self.close()
                    stop.wait(delay)
        finally:
            self.close()
            log.info("consumer on %s stopped", self.queue)
