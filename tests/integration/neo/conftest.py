"""The neo service alone: a Flask test client against the MongoDB stand-in and a tmp DATA_DIR.

Helpers:
- `as_user(user_id, username)` -> identity headers, as the gateway would forward them;
- `api` -> a small client for one user (`api.post("segment", {...})`, `api.get(...)`, ...);
- `make` -> factories that create valid objects of every type and return their JSON.
"""
from __future__ import annotations

import io
import itertools
from datetime import datetime, timedelta, timezone
import uuid

import numpy as np
import pymongo
import pytest

from services.neo.app import create_app
from shared.identity import IDENTITY_HEADER, Identity, encode_identity

INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"
PREFIX = "/electrophysiology"

ALL_TYPES = (
    "block", "segment", "event", "eventarray", "epoch", "epocharray", "unit", "spiketrain",
    "analogsignal", "analogsignalarray", "irsaanalogsignal", "spike", "recordingchannelgroup",
    "recordingchannel",
)


def as_user(user_id, username, secret=INTERNAL_SECRET):
    identity = Identity(user_id=user_id, username=username, client_ip="10.0.0.1")
    return {IDENTITY_HEADER: encode_identity(identity, secret)}


def minimal_body(type_name: str) -> dict:
    """The smallest valid body of each type (required attributes and data fields, table 2.1/2.2)."""
    return {
        "block": {"name": "Block"},
        "segment": {"name": "Segment"},
        "event": {"label": "Event", "time": {"units": "ms", "data": 1.5}},
        "eventarray": {},
        "epoch": {"label": "Epoch", "time": {"units": "ms", "data": 1.0}, "duration": {"units": "s", "data": 2.0}},
        "epocharray": {},
        "unit": {"name": "Unit"},
        "spiketrain": {
            "t_start": {"units": "ms", "data": 0},
            "t_stop": {"units": "ms", "data": 100},
            "times": {"units": "ms", "data": [1.0, 5.0, 20.0]},
        },
        "analogsignal": {
            "name": "Signal",
            "sampling_rate": {"units": "hz", "data": 20000},
            "t_start": {"units": "ms", "data": 0},
            "signal": {"units": "mv", "data": [1.0, 2.0, 3.0, 4.0]},
        },
        "analogsignalarray": {},
        "irsaanalogsignal": {
            "name": "Irregular",
            "t_start": {"units": "ms", "data": 0},
            "signal": {"units": "mv", "data": [1.0, 2.0, 3.0]},
            "times": {"units": "ms", "data": [0.0, 1.5, 4.0]},
        },
        "spike": {"time": {"units": "ms", "data": 3.0}},
        "recordingchannelgroup": {"name": "Group"},
        "recordingchannel": {"name": "Channel", "index": 1},
    }[type_name]


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


class Api:
    """Requests of one user against the neo app; paths are relative to /electrophysiology/."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def url(self, path: str) -> str:
        return f"{PREFIX}/{path.strip('/')}/" if path else f"{PREFIX}/"

    def _headers(self, extra):
        return {**self.headers, **(extra or {})}

    def get(self, path, headers=None, **params):
        return self.client.get(self.url(path), query_string=params, headers=self._headers(headers))

    def post(self, path, json=None, headers=None, **kwargs):
        return self.client.post(self.url(path), json=json, headers=self._headers(headers), **kwargs)

    def delete(self, path, headers=None, **params):
        return self.client.delete(self.url(path), query_string=params, headers=self._headers(headers))

    def create(self, type_name, **fields) -> dict:
        body = {**minimal_body(type_name), **fields}
        response = self.post(type_name, body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def total(self, type_name) -> int:
        response = self.get(type_name)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["object_total"]


@pytest.fixture(scope="module")
def neo_config(mongo_url, amqp_url, tmp_path_factory):
    """One database and DATA_DIR per test module (index creation costs ~0.1 s per database);
    tests stay independent because each one works as its own new users."""
    db_prefix = f"gnode_test_{uuid.uuid4().hex[:10]}_"
    config = {
        "MONGO_URL": mongo_url,
        "AMQP_URL": amqp_url,
        "MONGO_DB_PREFIX": db_prefix,
        "DATA_DIR": str(tmp_path_factory.mktemp("neo") / "data"),
        "INTERNAL_SECRET": INTERNAL_SECRET,
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
    }
    yield config
    pymongo.MongoClient(mongo_url).drop_database(f"{db_prefix}neo")


@pytest.fixture(scope="module")
def neo_app(neo_config):
    return create_app(neo_config)


@pytest.fixture
def make_app(neo_config):
    """Another neo app on the same database with some settings changed (e.g. small limits)."""

    def make(**overrides):
        return create_app({**neo_config, **overrides})

    return make


@pytest.fixture(scope="module")
def client(neo_app):
    return neo_app.test_client()


@pytest.fixture
def db(neo_app):
    return neo_app.extensions["mongo_db"]


@pytest.fixture
def data_dir(neo_config):
    from pathlib import Path

    return Path(neo_config["DATA_DIR"])


_user_ids = itertools.count(1000)


@pytest.fixture
def users(client, unique):
    """`users()` -> a new Api for a fresh user (distinct ids and names in every test)."""

    def new(name=None):
        user_id = next(_user_ids)
        api = Api(client, as_user(user_id, name or f"user{user_id}_{unique}"))
        api.user_id, api.username = user_id, name or f"user{user_id}_{unique}"
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
    """A snapshot of document counts (tombstones included) and id counters, to prove nothing was saved.

    `counts("event")` looks at one type only (each collection costs a query)."""

    def snapshot(*types):
        types = types or ALL_TYPES
        documents = {t: db[f"neo_{t}"].count_documents({}) for t in types}
        counters = {c["_id"]: c["seq"] for c in db["counters"].find({"_id": {"$in": list(types)}})}
        return documents, counters

    return snapshot


def h5_files(data_dir):
    return sorted(p for p in data_dir.rglob("*.h5")) if data_dir.exists() else []


# --- permissions: the acl service's events handed straight to the neo.acl handler -----------------

_versions = itertools.count(1_000)
_clock = itertools.count(1)


def change(resource, owner, level=3, shared=None, version=None) -> dict:
    """One entry of `acl.permissions.changed`; `shared` maps Api users to 1 (read) or 2 (write)."""
    shared = shared or {}
    return {
        "resource": resource, "owner": owner.user_id, "safety_level": level,
        "shared_with": {user.username: lvl for user, lvl in shared.items()},
        "readers": [user.user_id for user in shared],
        "writers": [user.user_id for user, lvl in shared.items() if lvl == 2],
        "version": version if version is not None else next(_versions),
    }


def later() -> datetime:
    """Strictly increasing event times (friendship links keep the newest)."""
    return datetime(2030, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=next(_clock))


@pytest.fixture
def permissions(db):
    """`permissions(change, ...)`: hand one `acl.permissions.changed` envelope to the neo.acl handler."""
    from services.neo.acl import acl_handlers
    from services.neo.store import NeoStore
    from shared.events import make_envelope

    handle = acl_handlers(NeoStore(db))["acl.permissions.changed"]

    def apply(*changes):
        payload = {"changes": list(changes), "by": None, "reason": "acl"}
        handle(make_envelope("acl.permissions.changed", payload, producer="acl", occurred_at=later()))

    return apply
