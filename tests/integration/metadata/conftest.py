"""The metadata service alone: a Flask test client against the MongoDB stand-in.

Helpers:
- `users()` -> an `Api` for a fresh user (identity headers as the gateway would forward them);
- `api.section(name, **fields)` / `api.prop(section, name, values, **fields)` create and return `fields`;
- `counts()` -> a snapshot of every collection and counter, to prove that nothing was saved;
- `files` -> the files service's internal `readable` endpoint, served for real by a fake that
  knows who may read which datafile (`files.publish(5)`, `files.share(5, user)`); unknown ids are
  readable by nobody.
"""
from __future__ import annotations

import itertools
import logging
import threading

import pymongo
import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from services.metadata.app import create_app
from shared.identity import IDENTITY_HEADER, Identity, decode_identity, encode_identity
from stack.procs import free_port

INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"


def as_user(user_id, username, secret=INTERNAL_SECRET):
    identity = Identity(user_id=user_id, username=username, client_ip="10.0.0.1")
    return {IDENTITY_HEADER: encode_identity(identity, secret)}


def number(typed_id: str) -> int:
    return int(typed_id.rsplit("_", 1)[1])


def only(body: dict) -> dict:
    """The `fields` of the single object of an envelope."""
    assert body["objects_selected"] == 1, body
    return body["selected"][0]["fields"]


class Api:
    """Requests of one user against the metadata app; paths are relative to /metadata/."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    @staticmethod
    def url(path: str) -> str:
        if path.startswith("/"):
            return path
        return f"/metadata/{path.strip('/')}/" if path else "/metadata/"

    def get(self, path, **params):
        return self.client.get(self.url(path), query_string=params, headers=self.headers)

    def post(self, path, json=None, query=None, **kwargs):
        return self.client.post(self.url(path), json=json, query_string=query or {}, headers=self.headers, **kwargs)

    def delete(self, path, **params):
        return self.client.delete(self.url(path), query_string=params, headers=self.headers)

    def section(self, name, parent=None, **fields) -> dict:
        body = {"name": name, **fields}
        if parent is not None:
            body["parent_section"] = parent["id"] if isinstance(parent, dict) else parent
        response = self.post("sections", body)
        assert response.status_code == 201, response.get_json()
        return only(response.get_json())

    def prop(self, section, name, values=(), **fields) -> dict:
        body = {"section_id": section["id"] if isinstance(section, dict) else section, "name": name,
                "values": list(values), **fields}
        response = self.post("properties", body)
        assert response.status_code == 201, response.get_json()
        return only(response.get_json())

    def fields(self, path) -> dict:
        response = self.get(path)
        assert response.status_code == 200, response.get_json()
        return only(response.get_json())

    def names(self, path="sections", **params) -> list[str]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.get_json()
        return [item["fields"]["name"] for item in response.get_json()["selected"]]


class FakeFiles:
    """`POST /internal/datafiles/readable/` as the files service answers it, from a table of who may
    read which datafile; it checks the signed identity as the real service does and counts calls."""

    def __init__(self):
        self.public: set[int] = set()
        self.readers: dict[int, set[int]] = {}
        self.calls: list[tuple[int | None, list[int]]] = []
        self.failing = False
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, self._app(), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.public.clear()
        self.readers.clear()
        self.calls.clear()
        self.failing = False

    def publish(self, *datafile_ids: int) -> None:
        self.public.update(datafile_ids)

    def share(self, datafile_id: int, *apis) -> None:
        self.readers.setdefault(datafile_id, set()).update(api.user_id for api in apis)

    def _app(self) -> Flask:
        app = Flask("fake-files")

        @app.post("/internal/datafiles/readable/")
        def readable():
            if self.failing:
                return jsonify({"message": "down", "message_type": "internal_error"}), 500
            header = request.headers.get(IDENTITY_HEADER)
            user_id = decode_identity(header, INTERNAL_SECRET).user_id if header else None
            wanted = request.get_json()["datafile_ids"]
            self.calls.append((user_id, wanted))
            return jsonify({"readable": [i for i in wanted
                                         if i in self.public or user_id in self.readers.get(i, set())]})

        return app

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture(scope="session")
def files_server():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    fake = FakeFiles()
    yield fake
    fake.stop()


@pytest.fixture
def files(files_server):
    files_server.reset()
    return files_server


@pytest.fixture
def metadata_config(mongo_url, amqp_url, db_prefix, files):
    config = {
        "MONGO_URL": mongo_url,
        "AMQP_URL": amqp_url,
        "MONGO_DB_PREFIX": db_prefix,
        "INTERNAL_SECRET": INTERNAL_SECRET,
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
        "FILES_URL": files.url,
    }
    yield config
    pymongo.MongoClient(mongo_url).drop_database(f"{db_prefix}metadata")


@pytest.fixture
def metadata_app(metadata_config):
    return create_app(metadata_config)


@pytest.fixture
def make_app(metadata_config):
    """Another metadata app on the same database with some settings changed (e.g. small limits)."""

    def make(**overrides):
        return create_app({**metadata_config, **overrides})

    return make


@pytest.fixture
def client(metadata_app):
    return metadata_app.test_client()


@pytest.fixture
def db(metadata_app):
    return metadata_app.extensions["mongo_db"]


_user_ids = itertools.count(5000)


@pytest.fixture
def users(client, unique):
    def new(name=None):
        user_id = next(_user_ids)
        username = name or f"user{user_id}_{unique}"
        api = Api(client, as_user(user_id, username))
        api.user_id, api.username = user_id, username
        return api

    return new


@pytest.fixture
def api(users):
    return users()


@pytest.fixture
def other(users):
    return users()


@pytest.fixture
def anonymous(client):
    return Api(client, {})


@pytest.fixture
def counts(db):
    """Live documents per collection, datafile links and the id counters: equal before and after = nothing saved."""

    def snapshot():
        live = {"_tombstone": {"$ne": True}}
        return {
            "sections": db["sections"].count_documents(live),
            "properties": db["properties"].count_documents(live),
            "links": db["datafile_links"].count_documents({}),
            "counters": {c["_id"]: c["seq"] for c in db["counters"].find()},
            "versions": sorted((d["_id"], d.get("version"), d.get("parent_section"), tuple(d.get("ancestors", ())))
                               for d in db["sections"].find(live)),
            "property_versions": sorted((d["_id"], d.get("version")) for d in db["properties"].find(live)),
        }

    return snapshot
