"""A service's event worker process: `python -m services.<name>.worker` calls `run_worker`.

It runs the outbox relay and each consumer in its own thread, each with its own broker
connection (a pika BlockingConnection is not thread-safe), restarts a loop that crashes, and
stops cleanly on SIGTERM/SIGINT.
"""
from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

from shared.events.backoff import Backoff
from shared.events.consumer import Consumer, Handler
from shared.events.outbox import ensure_outbox_indexes
from shared.events.relay import OutboxRelay
from shared.events.topology import queue_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    """One queue a service consumes: name it `<service>.<purpose>`."""

    queue: str
    handlers: Mapping[str, Handler]
    prefetch: int = 16
    max_retries: int = 3
    retry_delay_ms: int = 200
    options: Mapping[str, Any] = field(default_factory=dict)  # more Consumer keyword arguments


ConsumerSpecs = Union[Sequence[ConsumerSpec], Mapping[str, Mapping[str, Handler]]]


def _specs(consumers: ConsumerSpecs | Callable[[Any], ConsumerSpecs] | None, db) -> list[ConsumerSpec]:
    if consumers is None:
        return []
    if callable(consumers) and not isinstance(consumers, Mapping):
        consumers = consumers(db)  # handlers that need the database: a factory taking it
    if isinstance(consumers, Mapping):
        return [ConsumerSpec(queue=queue, handlers=handlers) for queue, handlers in consumers.items()]
    return list(consumers)


def _supervise(name: str, loop: Callable[[threading.Event], None], stop: threading.Event, max_backoff: float) -> None:
    """Run `loop(stop)` until stop is set, restarting it (with backoff) if it raises."""
    backoff = Backoff(min(0.5, max_backoff), max_backoff)
    while not stop.is_set():
        try:
            loop(stop)
        except Exception:
            delay = backoff.next()
            log.exception("%s crashed; restarting in %.1fs", name, delay)
            stop.wait(delay)


def run_worker(
    *,
    service: str,
    config: Mapping[str, Any],
    relay_collections: Iterable[str],
    consumers: ConsumerSpecs | Callable[[Any], ConsumerSpecs] | None = (),
    stop: threading.Event | None = None,
    db=None,
    relay_options: Mapping[str, Any] | None = None,
    max_backoff: float = 5.0,
    configure_logs: bool = True,
) -> None:
    """Run the outbox relay and the consumers of `service` until SIGTERM/SIGINT (or `stop`).

    `consumers` is a list of ConsumerSpec, or `{queue: {binding key: handler}}`, or a callable
    taking the service's database and returning either. The relay always scans `relay_collections`
    plus the standalone `outbox` collection.
    """
    from shared.logs import configure_logging
    from shared.mongo import connect_mongo

    if configure_logs:
        configure_logging(service, level=config.get("LOG_LEVEL", "INFO"), fmt=config.get("LOG_FORMAT", "json"))
        # pika logs every failed (re)connection attempt at ERROR; the relay and consumers already
        # log each failure once, with the backoff, at WARNING.
        logging.getLogger("pika").setLevel(logging.CRITICAL)
    stop = stop or threading.Event()
    if db is None:
        db = connect_mongo(config, service=service)
    amqp_url, exchange = config["AMQP_URL"], config.get("EVENT_EXCHANGE") or "gnode"

    installed: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        def _on_signal(signum, _frame):
            log.info("worker of %s got signal %d: stopping", service, signum)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            installed[signum] = signal.signal(signum, _on_signal)

    collections = list(relay_collections)
    loops: list[tuple[str, Callable[[threading.Event], None]]] = []
    relay = OutboxRelay(
        db, amqp_url=amqp_url, exchange=exchange, collections=collections, max_backoff=max_backoff, **dict(relay_options or {})
    )
    loops.append((f"{service} outbox relay", relay.run))
    for spec in _specs(consumers, db):
        consumer = Consumer(
            amqp_url=amqp_url,
            exchange=exchange,
            queue=queue_name(exchange, spec.queue),
            handlers=spec.handlers,
            db=db,
            prefetch=spec.prefetch,
            max_retries=spec.max_retries,
            retry_delay_ms=spec.retry_delay_ms,
            **{"max_backoff": max_backoff, **dict(spec.options)},
        )
        loops.append((f"{service} consumer {spec.queue}", consumer.run))

    threads = []
    try:
        try:
            ensure_outbox_indexes(db, collections)
        except Exception as exc:  # MongoDB may be starting: the relay retries on its own
            log.warning("cannot create the outbox indexes yet: %s", exc)
        for name, loop in loops:
            thread = threading.Thread(target=_supervise, args=(name, loop, stop, max_backoff), name=name, daemon=True)
            thread.start()
            threads.append(thread)
        log.info("worker of %s running: %s", service, ", ".join(name for name, _ in loops))
        while not stop.wait(0.5):
            pass
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
            if thread.is_alive():
                log.warning("%s did not stop in time", thread.name)
        for signum, previous in installed.items():
            signal.signal(signum, previous)
        log.info("worker of %s stopped", service)
