"""The whole system started as `make run` starts it (free ports, its own exchange and databases)."""
import contextlib
import uuid

import pymongo
import pytest
import requests

from stack.procs import free_port
from stack.system import System
from tests.smtp_sink import SmtpSink


@pytest.fixture(scope="session")
def smtp_sink():
    """The SMTP server the system's share notifications go to."""
    with SmtpSink() as sink:
        yield sink


@contextlib.contextmanager
def running_system(var_dir, mongo_url, amqp_url, **settings):
    """A whole system as `make run` starts it, on free ports with an exchange and databases of its
    own (removed afterwards); `settings` are environment variables for every process."""
    tag = uuid.uuid4().hex[:10]
    exchange, db_prefix = f"gnode.e2e.{tag}", f"gnode_e2e_{tag}_"
    system = System(
        var_dir=var_dir,
        gateway_port=free_port(),
        random_ports=True,
        mongo_url=mongo_url,
        amqp_url=amqp_url,
        extra_env={"EVENT_EXCHANGE": exchange, "MONGO_DB_PREFIX": db_prefix, "PASSWORD_HASH_MEMORY_KIB": "8192",
                   "PASSWORD_HASH_TIME_COST": "1", **{key: str(value) for key, value in settings.items()}},
    )
    system.start(say=lambda text: None)
    system.exchange = exchange
    system.db_prefix = db_prefix
    try:
        yield system
    finally:
        system.stop()
        client = pymongo.MongoClient(mongo_url)
        for name in client.list_database_names():
            if name.startswith(db_prefix):
                client.drop_database(name)
        try:
            system.delete_broker_topology(exchange)
        except Exception:
            pass  # a broker gone at the end of the run must not fail the tests


@pytest.fixture(scope="session")
def system(tmp_path_factory, mongo_url, amqp_url, smtp_sink):
    with running_system(tmp_path_factory.mktemp("var"), mongo_url, amqp_url, GUNICORN_WORKERS=2, GUNICORN_THREADS=4,
                        SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_sink.port,
                        # A reader that never ends meets its limit within seconds (test_hostile_uploads_e2e.py).
                        SANDBOX_CPU_SECONDS=8) as system:
        yield system


@pytest.fixture
def gateway(system):
    return system.gateway_url


@pytest.fixture
def new_user(gateway):
    """Registers a user through the gateway and returns (username, password)."""

    def register():
        name = f"u{uuid.uuid4().hex[:12]}"
        password = "a long enough password"
        response = requests.post(
            f"{gateway}/account/register/", json={"username": name, "email": f"{name}@example.org", "password": password}
        )
        assert response.status_code == 201, response.text
        return name, password

    return register


@pytest.fixture
def logged_in(gateway, new_user):
    """A requests.Session holding the sessionid cookie of a new user."""

    def login():
        name, password = new_user()
        session = requests.Session()
        response = session.post(f"{gateway}/account/authenticate/", data={"username": name, "password": password})
        assert response.status_code == 200, response.text
        session.username = name
        session.token = response.json()["token"]
        return session

    return login
