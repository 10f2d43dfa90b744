"""The files service with real neighbours: the neo and metadata apps served on free ports (threads),
the MongoDB stand-in, RabbitMQ with a private exchange, and the files worker in a thread.

Helpers:
- `users()` -> an `Api` for a fresh user: `api.upload(name, data, **fields)`, `api.get(...)`,
  `api.wait_state(id)`, `api.neo(neo_id)`, `api.section(name)`;
- `worker` -> the files worker (relay, conversion consumer, acl and friendship consumers) running
  while the test runs;
- `envelope(type, payload)` -> an event envelope, to call a consumer's handler without a broker.
"""
from __future__ import annotations

import io
import logging
import itertools
import threading
import time
import uuid
from pathlib import Path

import pymongo
import pytest
from werkzeug.serving import make_server

from services.files.app import create_app
from shared.events import delete_topology, make_envelope, queue_name
from shared.identity import IDENTITY_HEADER, Identity, encode_identity
from stack.procs import free_port

INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"
logging.getLogger("werkzeug").setLevel(logging.WARNING)


def as_user(user_id, username, secret=INTERNAL_SECRET):
    return {IDENTITY_HEADER: encode_identity(Identity(user_id=user_id, username=username), secret)}


class ServerThread:
    """A WSGI app on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app):
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture(scope="module")
def stack_config(mongo_url, amqp_url, tmp_path_factory):
    tag = uuid.uuid4().hex[:10]
    base = tmp_path_factory.mktemp("files")
    config = {
        "MONGO_URL": mongo_url,
        "AMQP_URL": amqp_url,
        "MONGO_DB_PREFIX": f"gnode_test_{tag}_",
        "EVENT_EXCHANGE": f"gnode.test.files.{tag}",
        "INTERNAL_SECRET": INTERNAL_SECRET,
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
        "DATA_DIR": str(base / "neo"),
        "FILES_DIR": str(base / "files"),
        # Small enough for the bomb tests to stay fast.
        "ARCHIVE_MAX_BYTES": 32 * 1024 * 1024,
        "CONVERSION_RETRY_DELAY_MS": 200,
    }
    yield config
    client = pymongo.MongoClient(mongo_url)
    for service in ("files", "neo", "metadata"):
        client.drop_database(f"{config['MONGO_DB_PREFIX']}{service}")


@pytest.fixture(scope="module")
def neighbours(stack_config):
    """The neo and metadata services, served for real (the files service calls them over HTTP)."""
    from services.metadata.app import create_app as metadata_app
    from services.neo.app import create_app as neo_app

    neo = ServerThread(neo_app(stack_config))
    metadata = ServerThread(metadata_app(stack_config))
    yield {"NEO_URL": neo.url, "METADATA_URL": metadata.url}
    neo.stop()
    metadata.stop()


@pytest.fixture(scope="module")
def files_config(stack_config, neighbours):
    return {**stack_config, **neighbours}


@pytest.fixture(scope="module")
def files_app(files_config):
    return create_app(files_config)


@pytest.fixture(scope="module")
def client(files_app):
    return files_app.test_client()


@pytest.fixture
def db(files_app):
    return files_app.extensions["mongo_db"]


@pytest.fixture
def files_dir(files_config):
    return Path(files_config["FILES_DIR"])


@pytest.fixture(scope="module")
def worker(files_config):
    """The files worker (outbox relay + conversion, acl and friendship consumers) in a thread, for the whole module."""
    from services.files.worker import run

    stop = threading.Event()
    errors = []

    def work():
        try:
            run(files_config, stop=stop, configure_logs=False, max_backoff=0.5, poll_interval=0.05)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True, name="files-worker")
    thread.start()
    yield thread
    stop.set()
    thread.join(20)
    delete_topology(files_config["AMQP_URL"], files_config["EVENT_EXCHANGE"], worker_queues(files_config))
    assert not errors, errors


def worker_queues(config) -> list[str]:
    """Every queue the files worker declares: the conversion tasks, the ACL changes, the friendships."""
    from services.files.acl import QUEUES
    from services.files.worker import conversion_queue

    exchange = config.get("EVENT_EXCHANGE") or "gnode"
    return [conversion_queue(config), *(queue_name(exchange, purpose) for purpose in QUEUES)]


_user_ids = itertools.count(7000)


class Api:
    """Requests of one user against the files app (and its neighbours, for checking results)."""

    def __init__(self, client, user_id, username, neighbours):
        self.client, self.user_id, self.username = client, user_id, username
        self.headers = as_user(user_id, username)
        self.neighbours = neighbours

    def upload(self, name, data: bytes, *, status=201, query=None, **fields):
        form = {"raw_file": (io.BytesIO(data), name), **{k: str(v) for k, v in fields.items()}}
        response = self.client.post("/datafiles/", data=form, headers=self.headers, query_string=query or {},
                                    content_type="multipart/form-data")
        assert response.status_code == status, response.get_json()
        body = response.get_json()
        return body["selected"][0]["fields"] if status == 201 else body

    def get(self, path, **params):
        return self.client.get(path, query_string=params, headers=self.headers)

    def post(self, path, json=None, **params):
        return self.client.post(path, json=json, query_string=params, headers=self.headers)

    def delete(self, path, **params):
        return self.client.delete(path, query_string=params, headers=self.headers)

    def fields(self, datafile_id):
        response = self.get(f"/datafiles/{number(datafile_id)}/")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["selected"][0]["fields"]

    def wait_state(self, datafile_id, states=("converted", "failed", "non_convertible"), timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            fields = self.fields(datafile_id)
            if fields["current_state"] in states:
                return fields
            if time.monotonic() > deadline:
                raise AssertionError(f"datafile {datafile_id} still {fields['current_state']}: {fields}")
            time.sleep(0.05)

    # -- the neighbours, as this user -------------------------------------------------------------
    def _request(self, method, url, **kwargs):
        import requests

        return requests.request(method, url, headers=self.headers, timeout=30, **kwargs)

    def neo(self, neo_id, **params):
        type_name = neo_id.rsplit("_", 1)[0]
        response = self._request("GET", f"{self.neighbours['NEO_URL']}/electrophysiology/{type_name}/{neo_id}/", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def neo_array(self, neo_id, field):
        import numpy as np

        type_name = neo_id.rsplit("_", 1)[0]
        response = self._request("GET", f"{self.neighbours['NEO_URL']}/electrophysiology/{type_name}/{neo_id}/",
                                 params={"format": "npy", "field": field})
        assert response.status_code == 200, response.text
        return np.load(io.BytesIO(response.content))

    def neo_total(self, type_name, **params):
        response = self._request("GET", f"{self.neighbours['NEO_URL']}/electrophysiology/{type_name}/", params=params)
        assert response.status_code == 200, response.text
        return response.json()["object_total"]

    def section(self, name, parent=None):
        body = {"name": name}
        if parent is not None:
            body["parent_section"] = parent
        response = self._request("POST", f"{self.neighbours['METADATA_URL']}/metadata/sections/", json=body)
        assert response.status_code == 201, response.text
        return response.json()["selected"][0]["fields"]

    def metadata(self, path, **params):
        response = self._request("GET", f"{self.neighbours['METADATA_URL']}{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()


def number(typed_id) -> int:
    return int(str(typed_id).rsplit("_", 1)[-1])


def envelope(event_type: str, payload: dict, *, producer: str | None = None, occurred_at=None) -> dict:
    """An envelope as a consumer's handler gets it: {event_id, type, occurred_at, producer, payload}."""
    return make_envelope(event_type, payload, producer=producer or event_type.split(".", 1)[0], occurred_at=occurred_at)


@pytest.fixture
def users(client, neighbours, unique):
    def new(name=None):
        user_id = next(_user_ids)
        return Api(client, user_id, name or f"user{user_id}_{unique}", neighbours)

    return new


@pytest.fixture
def api(users):
    return users()


@pytest.fixture
def other(users):
    return users()
