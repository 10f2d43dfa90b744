"""Events the auth service publishes (routing key `auth.<entity>.<verb>`); this is their contract.

| routing key              | payload                                                        |
|--------------------------|----------------------------------------------------------------|
| auth.user.registered     | user_id, username, email                                       |
| auth.user.deactivated    | user_id, username (the user can no longer log in)              |
| auth.session.revoked     | session_id, user_id                                            |
| auth.friendship.added    | user_id, username, friend_id, friend_username                  |
| auth.friendship.removed  | user_id, username, friend_id, friend_username                  |

A friendship is one-way: `user_id` counts `friend_id` as a friend, so `friend_id` may read the
resources `user_id` marked "friendly" (safety level 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

PRODUCER = "auth"


@dataclass(frozen=True)
class UserRegistered:
    routing_key: ClassVar[str] = "auth.user.registered"
    user_id: int
    username: str
    email: str


@dataclass(frozen=True)
class UserDeactivated:
    routing_key: ClassVar[str] = "auth.user.deactivated"
    user_id: int
    username: str


@dataclass(frozen=True)
class SessionRevoked:
    routing_key: ClassVar[str] = "auth.session.revoked"
    session_id: str
    user_id: int


@dataclass(frozen=True)
class FriendshipAdded:
    routing_key: ClassVar[str] = "auth.friendship.added"
    user_id: int
    username: str
    friend_id: int
    friend_username: str


@dataclass(frozen=True)
class FriendshipRemoved:
    routing_key: ClassVar[str] = "auth.friendship.removed"
    user_id: int
    username: str
    friend_id: int
    friend_username: str
