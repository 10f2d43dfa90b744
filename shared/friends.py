"""Who counts whom as a friend, kept in each resource service from the auth service's events.

The auth service owns friendships (services/auth/events.py: `auth.friendship.added|removed`,
`user_id` counts `friend_id` as a friend). Every service that answers reads keeps a copy in its own
`friendships` collection so that a friendly resource's read check is one indexed lookup:
`init_friendships(app)` fills `Identity.befriended_by` for each signed-in request.

Handlers are idempotent and order-safe: each link keeps the time of the newest event applied to
it, and an older event (a retry delivered late) changes nothing.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from flask import Flask, g

from shared.identity import Identity

FRIENDSHIPS = "friendships"
FRIENDSHIP_EVENTS = ("auth.friendship.added", "auth.friendship.removed")


def _link(payload: Mapping[str, Any]) -> tuple[int, int]:
    return int(payload["user_id"]), int(payload["friend_id"])


def record_friendship(db, envelope: Mapping[str, Any]) -> None:
    payload = envelope.get("payload") or {}
    user_id, friend_id = _link(payload)
    active = envelope.get("type") == "auth.friendship.added"
    at = str(envelope.get("occurred_at") or "")
    db[FRIENDSHIPS].update_one(
        {"_id": f"{user_id}:{friend_id}", "at": {"$not": {"$gt": at}}},
        {"$set": {"user_id": user_id, "friend_id": friend_id, "active": active, "at": at}},
        upsert=_absent(db, user_id, friend_id),
    )


def _absent(db, user_id: int, friend_id: int) -> bool:
    # Upserting when the link exists but is newer would hit the unique _id: only insert new links.
    return db[FRIENDSHIPS].count_documents({"_id": f"{user_id}:{friend_id}"}, limit=1) == 0


def friendship_handlers(db) -> dict[str, Any]:
    """The consumer handler table for `auth.friendship.*`."""
    def handle(envelope: dict) -> None:
        record_friendship(db, envelope)

    return {key: handle for key in FRIENDSHIP_EVENTS}


def befriended_by(db, user_id: int) -> frozenset[int]:
    """The owners who count `user_id` as a friend."""
    links = db[FRIENDSHIPS].find({"friend_id": user_id, "active": True}, {"user_id": 1, "_id": 0})
    return frozenset(link["user_id"] for link in links)


def ensure_friendship_indexes(db) -> None:
    db[FRIENDSHIPS].create_index([("friend_id", 1), ("active", 1)])


def with_friends(db, identity: Identity) -> Identity:
    if not identity.is_authenticated:
        return identity
    return replace(identity, befriended_by=befriended_by(db, identity.user_id))


def init_friendships(app: Flask, db) -> None:
    """After the identity is loaded, add who befriended the caller (for friendly reads)."""
    @app.before_request
    def _load_friends():
        identity = g.get("identity")
        if identity is not None and identity.is_authenticated:
            g.identity = with_friends(db, identity)
