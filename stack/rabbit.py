"""The RabbitMQ side: `AMQP_URL` (default the local broker); start a local one if it is installed."""
from __future__ import annotations

import shutil
import subprocess

import pika

from stack.procs import wait_until

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def amqp_reachable(url: str) -> bool:
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 2
    try:
        pika.BlockingConnection(params).close()
        return True
    except Exception:
        return False


def ensure_rabbitmq(url: str) -> str:
    """Return a reachable AMQP URL, starting the machine's RabbitMQ if it is installed but stopped."""
    if amqp_reachable(url):
        return url
    server = shutil.which("rabbitmq-server") or (
        "/usr/sbin/rabbitmq-server" if shutil.which("/usr/sbin/rabbitmq-server") else None
    )
    if url == DEFAULT_AMQP_URL and server:
        subprocess.run([server, "-detached"], check=False, capture_output=True)
        if wait_until(lambda: amqp_reachable(url), timeout=60, interval=1):
            return url
    raise RuntimeError(
        f"RabbitMQ is not reachable at AMQP_URL={url}. Start it (Debian: `apt-get install "
        "rabbitmq-server && rabbitmq-server -detached`) or set AMQP_URL to a running broker."
    )


def missing_queues(url: str, queues: list[str]) -> list[str]:
    """The queues of `queues` that do not exist on the broker (yet)."""
    missing = []
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for queue in queues:
            channel = connection.channel()
            try:
                channel.queue_declare(queue=queue, passive=True)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                missing.append(queue)
    finally:
        connection.close()
    return missing


def wait_for_queues(url: str, queues: list[str], *, timeout: float) -> list[str]:
    """Wait until the workers have declared their queues; the ones still missing after `timeout`."""
    left = list(queues)

    def declared() -> bool:
        left[:] = missing_queues(url, left)
        return not left

    wait_until(declared, timeout=timeout, interval=0.2)
    return left
