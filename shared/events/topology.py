"""Exchanges, queues and connections on RabbitMQ.

- one durable topic exchange (config `EVENT_EXCHANGE`, default "gnode") that events are published to;
- `<exchange>.dlx`, a durable direct exchange for dead letters;
- per consumer queue `<queue>` (durable, bound to the exchange with the handler keys, dead-letters
  to `<exchange>.dlx` with key `<queue>`), `<queue>.retry` (where a failed message waits for its
  per-message `expiration`, then goes back to `<queue>` through the default exchange) and
  `<queue>.dead` (bound to `<exchange>.dlx` with key `<queue>`: where poison messages end).

Queue names follow `<service>.<purpose>` (e.g. `neo.acl-sync`), one queue per service and purpose.
"""
from __future__ import annotations

import logging
from typing import Iterable

import pika

log = logging.getLogger(__name__)


def queue_name(exchange: str, purpose: str) -> str:
    """The broker queue of a consumer (`<service>.<purpose>`), scoped by the exchange it binds to.

    A queue's dead-letter arguments name its exchange, so two systems sharing a broker with
    different exchanges (test runs, staging beside production) must never share a queue.
    """
    return f"{exchange}.{purpose}"


def dlx_name(exchange: str) -> str:
    return f"{exchange}.dlx"


def retry_queue_name(queue: str) -> str:
    return f"{queue}.retry"


def dead_queue_name(queue: str) -> str:
    return f"{queue}.dead"


def connection_parameters(amqp_url: str, *, socket_timeout: float = 5.0) -> pika.URLParameters:
    """Parameters for one attempt: our loops do the retrying, with backoff, themselves."""
    params = pika.URLParameters(amqp_url)
    if "connection_attempts=" not in amqp_url:
        params.connection_attempts = 1
    if "socket_timeout=" not in amqp_url:
        params.socket_timeout = socket_timeout
    if "blocked_connection_timeout=" not in amqp_url:
        params.blocked_connection_timeout = 30
    return params


def open_connection(amqp_url: str, *, socket_timeout: float = 5.0) -> pika.BlockingConnection:
    """A new BlockingConnection. It is not thread-safe: use one per thread."""
    return pika.BlockingConnection(connection_parameters(amqp_url, socket_timeout=socket_timeout))


def declare_exchange(channel, exchange: str) -> None:
    channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)


def declare_consumer_topology(channel, *, exchange: str, queue: str, binding_keys: Iterable[str]) -> None:
    """Declare (idempotently) the exchanges, `<queue>`, `<queue>.retry`, `<queue>.dead` and the bindings."""
    dlx = dlx_name(exchange)
    declare_exchange(channel, exchange)
    channel.exchange_declare(exchange=dlx, exchange_type="direct", durable=True)
    channel.queue_declare(
        queue=queue,
        durable=True,
        arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": queue},
    )
    for key in binding_keys:
        channel.queue_bind(queue=queue, exchange=exchange, routing_key=key)
    channel.queue_declare(
        queue=retry_queue_name(queue),
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue},
    )
    channel.queue_declare(queue=dead_queue_name(queue), durable=True)
    channel.queue_bind(queue=dead_queue_name(queue), exchange=dlx, routing_key=queue)


def delete_topology(amqp_url: str, exchange: str, queues: Iterable[str] = ()) -> None:
    """Delete the queues (with their `.retry` and `.dead`), the exchange and its `.dlx`. For tests."""
    names = []
    for queue in queues:
        names += [queue, retry_queue_name(queue), dead_queue_name(queue)]
    connection = open_connection(amqp_url)
    try:
        for kind, name in [*(("queue", n) for n in names), ("exchange", exchange), ("exchange", dlx_name(exchange))]:
            # A failed delete closes the channel, so each gets its own.
            channel = connection.channel()
            try:
                if kind == "queue":
                    channel.queue_delete(queue=name)
                else:
                    channel.exchange_delete(exchange=name)
            except pika.exceptions.AMQPChannelError as exc:
                log.debug("could not delete %s %s: %s", kind, name, exc)
            finally:
                if channel.is_open:
                    channel.close()
    finally:
        connection.close()
