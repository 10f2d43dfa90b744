"""The acl service alone: a Flask test client on the MongoDB stand-in, with fake neighbours.

The auth service (`users`) and the resource services (`resources`) are replaced by in-memory
fakes; the resource tree is fed by calling the worker's handlers with envelopes, as RabbitMQ would.

Helpers:
- `acl.create(resource, owner, parent=None, **acl)` -> hands a `created` event to the tree handlers;
- `acl.as_(user)` -> identity headers; `acl.get/post(resource, ...)`;
- `acl.events(type)` -> the payloads the acl service queued in its outbox.
"""
from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timezone

import pymongo
import pytest

from services.acl import tree
from services.acl.notify import acl_path
from services.acl.service import settle
from services.acl.app import create_app
from shared.identity import IDENTITY_HEADER, Identity, encode_identity

INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"


class FakeUsers:
    def __init__(self):
        self.users: dict[int, dict] = {}

    def add(self, user_id: int, username: str) -> dict:
        self.users[user_id] = {"id": user_id, "username": username, "email": f"{username}@example.org"}
        return self.users[user_id]

    def by_username(self, usernames):
        wanted = {u.lower() for u in usernames}
        return {u["username"].lower(): u for u in self.users.values() if u["username"].lower() in wanted}

    def by_id(self, ids):
        return {i: self.users[i] for i in ids if i in self.users}


class FakeResources:
    def __init__(self):
        self.known: dict[str, dict] = {}
        self.calls: list[str] = []

    def fetch(self, service, resource):
        self.calls.append(resource)
        return self.known.get(resource)


def envelope(event_type: str, payload: dict, *, at: datetime | None = None) -> dict:
    return {"event_id": uuid.uuid4().hex, "type": event_type, "producer": event_type.split(".")[0],
            "occurred_at": (at or datetime.now(timezone.utc)).isoformat(), "payload": payload}


def created_event(resource: str, owner: int, parent: str | None, acl: dict, at=None) -> dict:
    kind, _, number = resource.rpartition("_")
    full_acl = {"owner": owner, "safety_level": 3, "shared_with": {}, "readers": [], "writers": [], **acl}
    if kind == "section":
        payload = {"section_id": int(number), "owner": owner, "acl": full_acl,
                   "parent_section": int(parent.rpartition("_")[2]) if parent else None, "ancestors": []}
        return envelope("metadata.section.created", payload, at=at)
    if kind == "datafile":
        payload = {"datafile_id": int(number), "owner": owner, "acl": full_acl,
                   "section_id": int(parent.rpartition("_")[2]) if parent else None}
        return envelope("files.datafile.created", payload, at=at)
    parents = {parent.rpartition("_")[0]: parent} if parent else {}
    return envelope("neo.objects.created", {"type": kind, "owner": owner, "source": None, "objects": [
        {"neo_id": resource, "parents": parents, "acl": full_acl}]}, at=at)


class AclHarness:
    def __init__(self, app, users: FakeUsers, resources: FakeResources):
        self.app, self.users, self.resources = app, users, resources
        self.client = app.test_client()
        self.ctx = app.extensions["acl_context"]
        self.handlers = tree.handlers(self.ctx)
        self._ids = itertools.count(1)

    def user(self, name: str | None = None) -> Identity:
        user_id = next(self._ids) + 100
        record = self.users.add(user_id, name or f"user{user_id}")
        return Identity(user_id=user_id, username=record["username"])

    @staticmethod
    def as_(identity: Identity | None) -> dict:
        return {IDENTITY_HEADER: encode_identity(identity, INTERNAL_SECRET)} if identity else {}

    def handle(self, env: dict) -> None:
        tree.handlers(self.ctx)[env["type"]](env)

    def create(self, resource: str, owner: Identity, parent: str | None = None, at=None, **acl) -> str:
        self.handle(created_event(resource, owner.user_id, parent, acl, at=at))
        return resource

    @staticmethod
    def url(resource: str) -> str:
        return acl_path(resource)

    def get(self, resource: str, who: Identity | None):
        return self.client.get(self.url(resource), headers=self.as_(who))

    def post(self, resource: str, who: Identity | None, body, **params):
        return self.client.post(self.url(resource), json=body, query_string=params, headers=self.as_(who))

    def record(self, resource: str) -> dict:
        settle(self.ctx.store)  # as every reader of the records does
        return self.ctx.store.records.find_one({"_id": resource})

    def events(self, event_type: str = "acl.permissions.changed") -> list[dict]:
        payloads = []
        for batch in self.ctx.store.batches.find({}, sort=[("_id", 1)]):
            payloads.extend(e["payload"] for e in batch.get("_outbox", []) if e["type"] == event_type)
        return payloads

    def changes(self) -> list[dict]:
        return [change for payload in self.events() for change in payload["changes"]]


@pytest.fixture
def acl_config(mongo_url, amqp_url, db_prefix):
    config = {"MONGO_URL": mongo_url, "AMQP_URL": amqp_url, "MONGO_DB_PREFIX": db_prefix,
              "INTERNAL_SECRET": INTERNAL_SECRET, "LOG_FORMAT": "text", "LOG_LEVEL": "WARNING"}
    yield config
    pymongo.MongoClient(mongo_url).drop_database(f"{db_prefix}acl")


@pytest.fixture
def acl(acl_config) -> AclHarness:
    app = create_app(acl_config)
    users, resources = FakeUsers(), FakeResources()
    ctx = app.extensions["acl_context"]
    app.extensions["acl_context"] = type(ctx)(store=ctx.store, users=users, resources=resources, limits=ctx.limits)
    harness = AclHarness(app, users, resources)
    harness.ctx.store.ensure_indexes()
    return harness
