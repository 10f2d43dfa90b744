"""The outbox relay: publishes the events embedded in documents, with publisher confirms.

A pass over each collection finds up to `claim_batch` documents with pending events and claims
them in one write by setting their `_outbox_lease` (`{"until": expiry, "by": claim id}`), so
several relay processes do not normally publish the same events; a crashed relay's lease expires
after `lease_seconds`. Writes are batched because each one is costly on the MongoDB stand-in.
It publishes the claimed envelopes in order, each confirmed by the broker, then `$pull`s exactly
the published event ids (a service may `$push` a new event meanwhile: it stays), clears
`_outbox_pending` only if the list is then empty, and deletes the document if it is a tombstone
with nothing left to publish.

Delivery is at least once: a relay that dies between the broker's confirm and the `$pull`
publishes the event again later. Events of one document go out in order; there is no order
across documents. An event published while no queue is bound to its key is dropped by the
broker, so consumers declare their queues (durable) before they matter.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import pika
from pika.exceptions import AMQPError

from shared.events.backoff import Backoff
from shared.events.envelope import encode_envelope
from shared.events.outbox import (
    LEASE_FIELD,
    OUTBOX_FIELD,
    PENDING_FIELD,
    TOMBSTONE_FIELD,
    outbox_collections,
)
from shared.events.topology import declare_exchange, open_connection

log = logging.getLogger(__name__)

# No first element: the list is empty or absent. Flat on purpose: the MongoDB stand-in (SecantusDB)
# uses no index for a filter with a top-level operator such as `$or`, and scans the collection.
_EMPTY_OUTBOX = {f"{OUTBOX_FIELD}.0": {"$exists": False}}


def _lease_until(seconds: float) -> datetime:
    until = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    # BSON keeps milliseconds: truncate so that the value we match on release is the stored one.
    return until.replace(microsecond=until.microsecond // 1000 * 1000)


class OutboxRelay:
    def __init__(
        self,
        db,
        *,
        amqp_url: str,
        exchange: str,
        collections: Iterable[str],
        poll_interval: float = 0.2,
        lease_seconds: float = 30,
        max_backoff: float = 5.0,
        batch_limit: int = 500,
        max_idle: float = 0.5,
        claim_batch: int = 100,
    ):
        self.db = db
        self.amqp_url = amqp_url
        self.exchange = exchange
        # The standalone `outbox` collection (record_event) is always scanned.
        self.collections = outbox_collections(collections)
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.max_backoff = max_backoff
        self.max_idle = max_idle
        self.claim_batch = claim_batch
        self.batch_limit = batch_limit  # documents per collection per pass, so no collection starves
        self.last_error: str | None = None
        self.published_total = 0
        self._connection: pika.BlockingConnection | None = None
        self._channel = None

    # -- broker ---------------------------------------------------------------------------------
    def _ensure_channel(self):
        if self._channel is not None and self._channel.is_open and self._connection and self._connection.is_open:
            return self._channel
        self.close()
        self._connection = open_connection(self.amqp_url)
        channel = self._connection.channel()
        declare_exchange(channel, self.exchange)
        channel.confirm_delivery()
        self._channel = channel
        log.info("outbox relay connected to the broker", extra={"exchange": self.exchange})
        return channel

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # it is going away anyway
                pass

    def _publish(self, channel, envelope: dict[str, Any]) -> None:
        """Publish one envelope; returns once the broker confirmed it, raises otherwise."""
        channel.basic_publish(
            exchange=self.exchange,
            routing_key=envelope["type"],
            body=encode_envelope(envelope),
            properties=pika.BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                message_id=envelope["event_id"],
                type=envelope["type"],
                app_id=str(envelope.get("producer") or ""),
                timestamp=int(time.time()),
            ),
        )

    # -- outbox ---------------------------------------------------------------------------------
    @staticmethod
    def _claimable(now: datetime) -> dict[str, Any]:
        # `_outbox_lease` is {"until", "by"}: no lease, or one run out (a bare datetime, the lease of
        # an older relay, has no `until` and counts as run out). One flat filter, led by the indexed
        # flag, so that the stand-in uses its index (see `_EMPTY_OUTBOX`).
        return {PENDING_FIELD: True, f"{LEASE_FIELD}.until": {"$not": {"$gt": now}}}

    def _candidates(self, collection, limit: int) -> list[Any]:
        """Ids of documents with events to publish: one query for many claims."""
        cursor = collection.find(self._claimable(datetime.now(timezone.utc)), {"_id": 1}).limit(limit)
        return [doc["_id"] for doc in cursor]

    def _claim_many(self, collection, ids: list[Any]) -> tuple[list[dict], str]:
        """Lease the documents of `ids` that no other relay holds: (those documents, the claim)."""
        claim = uuid.uuid4().hex
        lease = {"until": _lease_until(self.lease_seconds), "by": claim}
        collection.update_many({"_id": {"$in": ids}, **self._claimable(datetime.now(timezone.utc))},
                               {"$set": {LEASE_FIELD: lease}})
        docs = collection.find({"_id": {"$in": ids}, f"{LEASE_FIELD}.by": claim},
                               {OUTBOX_FIELD: 1, TOMBSTONE_FIELD: 1})
        order = {doc_id: n for n, doc_id in enumerate(ids)}
        return sorted(docs, key=lambda d: order[d["_id"]]), claim

    def _release(self, collection, ids: list[Any], claim: str) -> None:
        if ids:
            collection.update_many({"_id": {"$in": ids}, f"{LEASE_FIELD}.by": claim}, {"$unset": {LEASE_FIELD: ""}})

    @staticmethod
    def _valid(collection, doc: dict) -> list[dict]:
        envelopes = doc.get(OUTBOX_FIELD) or []
        valid = [e for e in envelopes if isinstance(e, dict) and isinstance(e.get("event_id"), str) and isinstance(e.get("type"), str)]
        if len(valid) != len(envelopes):
            log.error(
                "outbox of %s/%s holds entries that are not envelopes; they stay there",
                collection.name,
                doc["_id"],
                extra={"collection": collection.name, "doc_id": str(doc["_id"])},
            )
        return valid

    def _drain_many(self, collection, docs: list[dict], claim: str) -> int:
        """Publish the claimed documents' events, then settle the documents in a few writes."""
        published: list[str] = []
        finished: list[Any] = []  # every event published: the documents to settle and release
        try:
            for doc in docs:
                valid = self._valid(collection, doc)
                try:
                    if valid:
                        channel = self._ensure_channel()
                        for envelope in valid:
                            self._publish(channel, envelope)
                            published.append(envelope["event_id"])
                except AMQPError:
                    raise
                except Exception:
                    # Not the broker's fault (e.g. a payload it cannot encode): the document keeps
                    # its lease, so it is retried only when it expires, and the rest moves on.
                    log.exception("cannot publish the outbox of %s/%s", collection.name, doc["_id"])
                    continue
                if len(valid) == len(doc.get(OUTBOX_FIELD) or []):
                    finished.append(doc["_id"])
        except AMQPError:
            # The broker is away: keep everything not confirmed, and let the next attempt (any
            # relay) claim the documents at once rather than after the lease.
            self._pull(collection, [d["_id"] for d in docs], published)
            self._release(collection, [d["_id"] for d in docs], claim)
            raise
        self._pull(collection, [d["_id"] for d in docs], published)
        tombstones = [d["_id"] for d in docs if d["_id"] in finished and d.get(TOMBSTONE_FIELD) is True]
        if tombstones:
            # The filter re-checks both: a revived document or one with new events is kept.
            collection.delete_many({"_id": {"$in": tombstones}, TOMBSTONE_FIELD: True, **_EMPTY_OUTBOX})
        if finished:
            collection.update_many({"_id": {"$in": finished}, PENDING_FIELD: True, **_EMPTY_OUTBOX},
                                   {"$set": {PENDING_FIELD: False}})
            self._release(collection, finished, claim)
        for event_id in published:
            log.debug("published %s", event_id, extra={"event_id": event_id})
        return len(published)

    @staticmethod
    def _pull(collection, ids: list[Any], event_ids: list[str]) -> None:
        # By event id: an event pushed by the service since the claim is not touched.
        if event_ids:
            collection.update_many({"_id": {"$in": ids}}, {"$pull": {OUTBOX_FIELD: {"event_id": {"$in": event_ids}}}})

    def publish_pending(self) -> int:
        """One pass over every collection; returns how many events were published (confirmed).

        Raises a pika AMQPError when the broker cannot be reached; the events stay in the outbox.
        """
        published = 0
        for name in self.collections:
            collection = self.db[name]
            remaining = self.batch_limit
            while remaining > 0:
                # One query for all the pass may take: on the stand-in it costs about as much for 100
                # documents as for 500 (it reads every pending index entry before the limit).
                candidates = self._candidates(collection, remaining)
                if not candidates:
                    break
                remaining -= len(candidates)
                for start in range(0, len(candidates), self.claim_batch):
                    docs, claim = self._claim_many(collection, candidates[start:start + self.claim_batch])
                    published += self._drain_many(collection, docs, claim)  # others may hold some meanwhile
        self.published_total += published
        return published

    def _idle(self, stop: threading.Event, seconds: float) -> None:
        connection = self._connection
        if connection is not None and connection.is_open:
            # Serves heartbeats and notices a lost connection while nothing is to be published.
            connection.process_data_events(time_limit=seconds)
        else:
            stop.wait(seconds)

    def _idle_seconds(self, idle_passes: int) -> float:
        # Polling every collection is a query each; a quiet service polls less often, up to
        # `max_idle`, and goes back to `poll_interval` as soon as something was published.
        return min(self.poll_interval * (2 ** min(idle_passes, 16)), max(self.max_idle, self.poll_interval))

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set, reconnecting with backoff when the broker or MongoDB fails."""
        backoff = Backoff(min(self.poll_interval, self.max_backoff) or 0.05, self.max_backoff)
        log.info("outbox relay started", extra={"exchange": self.exchange, "collections": self.collections})
        idle_passes = 0
        try:
            while not stop.is_set():
                try:
                    published = self.publish_pending()
                    if self.last_error is not None:
                        log.info("outbox relay recovered")
                    self.last_error = None
                    backoff.reset()
                    idle_passes = 0 if published else idle_passes + 1
                    if not published:
                        self._idle(stop, self._idle_seconds(idle_passes - 1))
                except Exception as exc:
                    delay = backoff.next()
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "outbox relay cannot publish (%s); events stay in the outbox, retrying in %.1fs",
                        self.last_error,
                        delay,
                    )
                    self.close()
                    stop.wait(delay)
        finally:
            self.close()
            log.info("outbox relay stopped")
