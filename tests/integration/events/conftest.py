"""Fixtures for the event bus tests: a private exchange per test, a private database, a TCP proxy.

The RabbitMQ is shared with other sessions, so every test publishes to its own exchange
`gnode.test.<unique>` and declares its own queues, all deleted afterwards.
"""
from __future__ import annotations

import json
import select
import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pika
import pymongo
import pytest

from shared.events import delete_topology
from stack.procs import free_port


class Bus:
    """Test-side access to the broker: probe queues, direct publishing, counting, fetching."""

    def __init__(self, amqp_url: str, exchange: str, unique: str):
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.unique = unique
        self.queues: list[str] = []
        self._connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self._channel = self._connection.channel()
        self._channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
        self._channel.confirm_delivery()

    def queue_name(self, purpose: str) -> str:
        name = f"test.{self.unique}.{purpose}"
        self.queues.append(name)
        return name

    def probe(self, binding: str = "#") -> str:
        """A queue bound to the exchange, to see what gets published."""
        name = self.queue_name(f"probe{len(self.queues)}")
        self._channel.queue_declare(queue=name, durable=True)
        self._channel.queue_bind(queue=name, exchange=self.exchange, routing_key=binding)
        return name

    def publish(self, envelope: dict, *, body: bytes | None = None, routing_key: str | None = None) -> None:
        self._channel.basic_publish(
            exchange=self.exchange,
            routing_key=routing_key or envelope["type"],
            body=body if body is not None else json.dumps(envelope).encode(),
            properties=pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=envelope.get("event_id")),
        )

    def count(self, queue: str) -> int:
        channel = self._connection.channel()
        try:
            return channel.queue_declare(queue=queue, passive=True).method.message_count
        finally:
            if channel.is_open:
                channel.close()

    def exists(self, queue: str) -> bool:
        try:
            self.count(queue)
            return True
        except pika.exceptions.ChannelClosedByBroker:
            return False

    def get(self, queue: str, expected: int, *, timeout: float = 10.0) -> list[tuple]:
        """Fetch (and ack) `expected` messages, as (method, properties, decoded body); fewer on timeout."""
        got: list[tuple] = []
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            method, properties, body = self._channel.basic_get(queue=queue, auto_ack=True)
            if method is None:
                self._connection.sleep(0.05)
                continue
            got.append((method, properties, json.loads(body)))
        return got

    def close(self) -> None:
        try:
            self._connection.close()
        except Exception:
            pass
        delete_topology(self.amqp_url, self.exchange, self.queues)


@pytest.fixture
def bus(amqp_url, unique):
    bus = Bus(amqp_url, f"gnode.test.{unique}", unique)
    yield bus
    bus.close()


@pytest.fixture
def events_db(mongo_url, db_prefix):
    client = pymongo.MongoClient(mongo_url, tz_aware=True, serverSelectionTimeoutMS=10000)
    name = f"{db_prefix}events"
    yield client[name]
    client.drop_database(name)
    client.close()


class TcpProxy:
    """A TCP forwarder to the broker that can be taken down (listener and live connections) and
    brought back on the same port, to simulate an unreachable broker."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None):
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self.connections = 0

    def start(self) -> "TcpProxy":
        self._stopping = threading.Event()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, args=(listener, self._stopping), daemon=True)
        thread.start()
        self._threads = [thread]
        return self

    def _accept_loop(self, listener: socket.socket, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.setblocking(True)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if stopping.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
                self.connections += 1
            pump = threading.Thread(target=self._pump, args=(client, upstream, stopping), daemon=True)
            pump.start()
            self._threads.append(pump)

    def _pump(self, a: socket.socket, b: socket.socket, stopping: threading.Event) -> None:
        peers = {a: b, b: a}
        try:
            while not stopping.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                _cut(sock)

    def stop(self) -> None:
        """Drop the listening socket and cut every connection going through the proxy."""
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _cut(sock)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


@pytest.fixture
def broker_proxy(amqp_url):
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    proxy.url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    yield proxy
    proxy.stop()


@pytest.fixture
def threads():
    """Start loops `target(stop)` in threads; all are stopped and joined at teardown."""
    started: list[tuple[threading.Thread, threading.Event]] = []

    def start(target) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=target, args=(stop,), daemon=True)
        thread.start()
        started.append((thread, stop))
        return stop

    yield start
    for _, stop in started:
        stop.set()
    for thread, _ in started:
        thread.join(timeout=10)
        assert not thread.is_alive(), "a relay/consumer loop did not stop"
