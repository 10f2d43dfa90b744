"""The auth service's collections and their indexes."""
from __future__ import annotations

from dataclasses import dataclass

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from shared.events import ensure_outbox_indexes
from shared.history import HISTORY_COLLECTION, ensure_history_indexes
from shared.mongo import next_sequence

OUTBOX_COLLECTIONS = ("users", "sessions", "friendships")


@dataclass(frozen=True)
class AuthStore:
    db: Database

    @property
    def users(self) -> Collection:
        return self.db["users"]

    @property
    def sessions(self) -> Collection:
        return self.db["sessions"]

    @property
    def friendships(self) -> Collection:
        return self.db["friendships"]

    @property
    def revocations(self) -> Collection:
        """The numbered revocation log the gateway follows (revocations.py)."""
        return self.db["revocations"]

    @property
    def login_attempts(self) -> Collection:
        """Login throttling records (throttle.py)."""
        return self.db["login_attempts"]

    @property
    def history(self) -> Collection:
        return self.db[HISTORY_COLLECTION]

    def next_user_id(self) -> int:
        return next_sequence(self.db, "user")

    def ensure_indexes(self) -> None:
        self.users.create_index([("username_key", ASCENDING)], unique=True)
        self.users.create_index([("email", ASCENDING)], unique=True)
        self.sessions.create_index([("revoked_at", ASCENDING)])
        self.sessions.create_index([("user_id", ASCENDING)])
        self.sessions.create_index([("expires_epoch", ASCENDING)])
        self.revocations.create_index([("exp", ASCENDING)])
        self.login_attempts.create_index([("expires_at", ASCENDING)])
        self.friendships.create_index([("user_id", ASCENDING)])
        self.friendships.create_index([("friend_id", ASCENDING)])
        ensure_outbox_indexes(self.db, OUTBOX_COLLECTIONS)
        ensure_history_indexes(self.history)
