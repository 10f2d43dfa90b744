"""The metadata service alone: a Flask test client against the MongoDB stand-in.

Helpers:
- `users()` -> an `Api` for a fresh user (identity headers as the gateway would forward them);
- `api.section(name, **fields)` / `api.prop(section, name, values, **fields)` create and return `fields`;
- `counts()` -> a snapshot of every collection and counter, to prove that nothing was saved.
"""
from __future__ import annotations

import itertools

import pymongo
import pytest

from services.metadata.app import create_app
from shared.identity import IDENTITY_HEADER, Identity, encode_identity

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


@pytest.fixture
def metadata_config(mongo_url, amqp_url, db_prefix):
    config = {
        "MONGO_URL": mongo_url,
        "AMQP_URL": amqp_url,
        "MONGO_DB_PREFIX": db_prefix,
        "INTERNAL_SECRET": INTERNAL_SECRET,
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
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
