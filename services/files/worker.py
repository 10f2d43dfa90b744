"""The files service's background process: publishes its outbox, runs conversion tasks and keeps
the permission read model.

    python -m services.files.worker

Besides the conversion consumer below, it consumes `acl.permissions.changed` (queue `files.acl`)
and `auth.friendship.added|removed` (queue `files.friendships`); see services/files/acl.py.

Conversion tasks arrive as `files.conversion.requested` events on the queue
`<EVENT_EXCHANGE>.files.conversion` (scoped by exchange like every consumer queue, so systems
sharing a broker never take each other's tasks; CONVERSION_QUEUE overrides). A conversion may run for
minutes: it runs in a helper thread while the consumer's thread keeps the broker connection alive
(heartbeats), so the task stays delivered to this worker until it is finished and acknowledged.
If the worker dies, the broker delivers the task again (see services/files/conversion/task.py for
how a repeated attempt cleans up and how attempts are bounded).

`CONVERSION_CONCURRENCY` tasks run at once, each on a consumer (connection) of its own with a
prefetch of one: a file that keeps its sandbox busy until a limit stops it holds one of them,
never the others' conversions.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

from services.files.acl import QUEUES
from services.files.acl import consumers as permission_consumers
from services.files.app import DEFAULTS, SERVICE, build_context
from services.files.conversion.sandboxed import sweep_stale_scratch
from services.files.conversion.task import handle_task
from services.files.events import ConversionRequested
from services.files.store import OUTBOX_COLLECTIONS
from shared.config import load_config
from shared.events import Consumer, queue_name, run_worker
from shared.events.backoff import Backoff

log = logging.getLogger(__name__)
__all__ = ["QUEUES", "conversion_queue", "run", "main"]  # QUEUES: the consumers' queues besides the conversion's
DEFAULTS_WORKER: dict[str, Any] = {**DEFAULTS, "CONVERSION_QUEUE": "", "CONVERSION_RETRY_DELAY_MS": 2000,
                                   "CONVERSION_CONCURRENCY": 2}


def conversion_queue(config: Mapping[str, Any]) -> str:
    if config.get("CONVERSION_QUEUE"):
        return str(config["CONVERSION_QUEUE"])
    return queue_name(config.get("EVENT_EXCHANGE") or "gnode", "files.conversion")


class ConversionConsumer(Consumer):
    """A Consumer whose handler may run long: it serves the connection while the task runs."""

    _channel_now = None

    def handle_delivery(self, channel, method, properties, body):
        self._channel_now = channel
        try:
            return super().handle_delivery(channel, method, properties, body)
        finally:
            self._channel_now = None

    def wait(self, done: threading.Event, interval: float = 0.2) -> None:
        """Until `done`: process heartbeats on this consumer's connection (never dispatches other deliveries)."""
        channel = self._channel_now
        while not done.is_set():
            connection = getattr(channel, "connection", None)
            if connection is not None and connection.is_open:
                try:
                    connection.sleep(interval)
                    continue
                except Exception:  # the connection broke: the task will be delivered again anyway
                    log.warning("lost the broker connection during a conversion", exc_info=True)
                    channel = None
            done.wait(interval)


def conversion_handler(ctx, consumer_ref: dict):
    def handle(envelope: dict) -> None:
        payload = envelope.get("payload") or {}
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work():
            try:
                outcome["result"] = handle_task(ctx, payload)
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                done.set()

        thread = threading.Thread(target=work, name=f"conversion {payload.get('datafile_id')}", daemon=True)
        thread.start()
        consumer = consumer_ref.get("consumer")
        if consumer is not None:
            consumer.wait(done)
        else:
            done.wait()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        log.info("conversion task %s of datafile_%s: %s", payload.get("task_id"), payload.get("datafile_id"),
                 outcome.get("result"))

    return handle


def build_consumer(config: Mapping[str, Any], db, ctx, *, poll_interval: float = 0.2, max_backoff: float = 5.0) -> ConversionConsumer:
    ref: dict[str, Any] = {}
    consumer = ConversionConsumer(
        amqp_url=config["AMQP_URL"], exchange=config.get("EVENT_EXCHANGE") or "gnode", queue=conversion_queue(config),
        handlers={ConversionRequested.routing_key: conversion_handler(ctx, ref)}, db=db, prefetch=1,
        max_retries=ctx.limits.conversion_max_attempts, retry_delay_ms=int(config.get("CONVERSION_RETRY_DELAY_MS", 2000)),
        max_backoff=max_backoff, poll_interval=poll_interval,
    )
    ref["consumer"] = consumer
    return consumer


def run(config: Mapping[str, Any], *, stop: threading.Event | None = None, configure_logs: bool = True,
        max_backoff: float = 5.0, poll_interval: float = 0.2) -> None:
    from shared.mongo import connect_mongo

    stop = stop or threading.Event()
    config = {**DEFAULTS_WORKER, **dict(config)}
    db = connect_mongo(config, service=SERVICE)
    ctx = build_context(config, db)
    consumers = [build_consumer(config, db, ctx, poll_interval=poll_interval, max_backoff=max_backoff)
                 for _ in range(max(1, int(config["CONVERSION_CONCURRENCY"])))]
    # The queue must exist before the relay publishes the first task, or the broker drops it.
    backoff = Backoff(0.1, max_backoff)
    while not stop.is_set():
        try:
            consumers[0].declare()
            ctx.store.ensure_indexes()
            swept = sweep_stale_scratch(ctx.store.tmp_dir(), older_than_seconds=2 * ctx.sandbox.wall_seconds)
            if swept:
                log.info("removed %d scratch folders left by a stopped worker", swept)
            break
        except Exception as exc:
            delay = backoff.next()
            log.warning("cannot declare the conversion queue yet (%s); retrying in %.1fs", exc, delay)
            stop.wait(delay)

    def consume(consumer: ConversionConsumer) -> None:
        while not stop.is_set():
            try:
                consumer.run(stop)
            except Exception:
                log.exception("the conversion consumer crashed; restarting")
                stop.wait(1.0)

    threads = [threading.Thread(target=consume, args=(consumer,), name=f"files consumer {number}", daemon=True)
               for number, consumer in enumerate(consumers)]
    for thread in threads:
        thread.start()
    try:
        run_worker(service=SERVICE, config=config, relay_collections=OUTBOX_COLLECTIONS,
                   consumers=permission_consumers(db, poll_interval=poll_interval), stop=stop, db=db,
                   relay_options={"poll_interval": poll_interval}, max_backoff=max_backoff, configure_logs=configure_logs)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def main() -> None:
    run(load_config(DEFAULTS_WORKER))


if __name__ == "__main__":
    main()
