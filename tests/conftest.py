"""Session-wide infrastructure: a MongoDB and a RabbitMQ for the integration and e2e layers.

Order of preference (DESIGN.md section 8): `MONGO_URL` / `AMQP_URL` when given; testcontainers
when a Docker engine answers; otherwise the local stand-ins (a SecantusDB process we start, and
the machine's RabbitMQ).
"""
from __future__ import annotations

import os
import uuid

import pytest

from stack.mongo import start_secantus
from stack.rabbit import DEFAULT_AMQP_URL, amqp_reachable, ensure_rabbitmq


def _docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory):
    if os.environ.get("MONGO_URL"):
        yield os.environ["MONGO_URL"]
        return
    if _docker_engine_answers():
        from testcontainers.mongodb import MongoDbContainer

        with MongoDbContainer("mongo:7") as container:
            yield container.get_connection_url()
        return
    base = tmp_path_factory.mktemp("secantus")
    child, url = start_secantus(storage=base / "data", log_path=base / "secantus.log")
    yield url
    child.stop()


@pytest.fixture(scope="session")
def amqp_url():
    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if amqp_reachable(url) or not _docker_engine_answers():
        yield ensure_rabbitmq(url)
        return
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13") as container:
        params = container.get_connection_params()
        yield f"amqp://guest:guest@{params.host}:{params.port}/%2F"


@pytest.fixture
def unique():
    """A short unique suffix for names that tests create on shared infrastructure."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def db_prefix(unique):
    return f"gnode_test_{unique}_"
