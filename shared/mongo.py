"""MongoDB connection for one service, attached in `create_app`.

Each service has its own database (`<MONGO_DB_PREFIX><service>`, or `MONGO_DB`) under a
mongoengine alias named after the service; its documents declare `meta = {"db_alias": ...}`.
pymongo connects lazily, so building the app opens no socket.
"""
from __future__ import annotations

from typing import Any, Mapping

import mongoengine
from pymongo import ReturnDocument
from pymongo.database import Database


def database_name(config: Mapping[str, Any], service: str) -> str:
    return config.get("MONGO_DB") or f"{config['MONGO_DB_PREFIX']}{service}"


_connected: dict[str, tuple[str, str]] = {}


def connect_mongo(config: Mapping[str, Any], *, service: str) -> Database:
    target = (config["MONGO_URL"], database_name(config, service))
    if _connected.get(service) == target:
        return mongoengine.get_db(alias=service)
    mongoengine.disconnect(alias=service)
    mongoengine.connect(
        db=database_name(config, service),
        host=config["MONGO_URL"],
        alias=service,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=int(config.get("MONGO_TIMEOUT_MS", 5000)),
        connect=False,
    )
    _connected[service] = target
    return mongoengine.get_db(alias=service)


def ping(db: Database) -> None:
    db.client.admin.command("ping")


def next_sequence(db: Database, name: str, count: int = 1) -> int:
    """Advance the counter `name` (collection `counters`) by `count`; returns its new value.

    Concurrent first calls on a new counter may get no document back from the MongoDB stand-in
    (an upsert race): such a call is repeated. Ids may skip a number then, never repeat one.
    """
    for _ in range(10):
        counter = db["counters"].find_one_and_update(
            {"_id": name}, {"$inc": {"seq": count}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        if counter is not None:
            return int(counter["seq"])
    raise RuntimeError(f"the counter {name!r} could not be advanced")
