"""The auth service layer: every check, write and event of the service lives here."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from argon2 import PasswordHasher
from pymongo.errors import DuplicateKeyError

from services.auth import events
from services.auth.passwords import MIN_PASSWORD_LENGTH, verify_password
from services.auth.store import AuthStore
from services.auth.throttle import ThrottleRule, clear, record_failure, seconds_blocked
from shared.errors import ApiError, BadRequest, Conflict, Forbidden, NotAuthenticated, NotFound, TooManyRequests
from shared.events import envelope_for, outbox_fields, tombstone_update, with_outbox
from shared.history import record_action
from shared.identity import Identity
from shared.tokens import SessionToken, issue_token

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,150}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_PASSWORD_LENGTH = 1024
# The source of an action an operator took with `gnode-admin` rather than through the API.
OPERATOR_SOURCE = {"kind": "operator"}


class InvalidCredentials(ApiError):
    http_status, message_type, message = 401, "invalid_credentials", "Wrong username or password."


@dataclass(frozen=True)
class AuthContext:
    store: AuthStore
    hasher: PasswordHasher
    jwt_secret: str
    token_ttl_seconds: int
    registration_open: bool
    user_rule: ThrottleRule
    ip_rule: ThrottleRule
    # Verifying against this when the user does not exist keeps the timing of both failures alike.
    dummy_hash: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _event(event: Any) -> dict:
    return envelope_for(event, producer=events.PRODUCER)


def user_resource(user_id: int) -> str:
    return f"user_{user_id}"


def _record(
    ctx: AuthContext,
    *,
    actor: str | None,
    action: str,
    user_ids: list[int],
    description: str,
    event: dict,
    result: dict | None = None,
    source: dict | None = None,
    at: datetime | None = None,
) -> None:
    """One history entry, written after the change it describes; keyed by the event's id so a
    retried call cannot record the same change twice."""
    record_action(
        ctx.store.history,
        actor=actor,
        action=action,
        resources=[user_resource(user_id) for user_id in user_ids],
        description=description,
        source=source,
        result=result,
        at=at,
        entry_id=event["event_id"],
    )


def public_user(user: dict) -> dict:
    return {
        "id": user["_id"],
        "username": user["username"],
        "first_name": user.get("first_name", ""),
        "last_name": user.get("last_name", ""),
        "date_joined": user["date_joined"],
    }


def private_user(user: dict) -> dict:
    return {**public_user(user), "email": user["email"], "is_active": user.get("is_active", True)}


def _validate_new_user(username: Any, email: Any, password: Any) -> None:
    problems = {}
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        problems["username"] = "1 to 150 letters, digits or the characters _ . @ + -"
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        problems["email"] = "a valid e-mail address"
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        problems["password"] = f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
    if problems:
        raise BadRequest("Some fields are missing or not valid.", message_type="invalid_fields", details=problems)


def create_user(
    *,
    ctx: AuthContext,
    username: Any,
    email: Any,
    password: Any,
    first_name: str = "",
    last_name: str = "",
    by_operator: bool = False,
) -> dict:
    """A new active account: self-registered through the API, or created by an operator (`gnode-admin`)."""
    _validate_new_user(username, email, password)
    users = ctx.store.users
    if users.find_one({"username_key": username.lower()}, {"_id": 1}):
        raise Conflict(f"The username {username!r} is taken.", message_type="username_taken")
    if users.find_one({"email": email.lower()}, {"_id": 1}):
        raise Conflict("An account with this e-mail address exists.", message_type="email_taken")
    user_id = ctx.store.next_user_id()
    user = {
        "_id": user_id,
        "username": username,
        "username_key": username.lower(),
        "email": email.lower(),
        "password_hash": ctx.hasher.hash(password),
        "first_name": str(first_name or "")[:150],
        "last_name": str(last_name or "")[:150],
        "is_active": True,
        "date_joined": _now(),
    }
    registered = _event(events.UserRegistered(user_id=user_id, username=username, email=user["email"]))
    try:
        users.insert_one({**user, **outbox_fields(registered)})
    except DuplicateKeyError:
        raise Conflict("The username or e-mail address is taken.", message_type="username_taken") from None
    _record_created(ctx, user, registered, by_operator=by_operator)
    return user


def _record_created(ctx: AuthContext, user: dict, event: dict, *, by_operator: bool) -> None:
    # A self-registration is the new user's own action (so it is in their history); an account an
    # operator creates is the system's.
    if by_operator:
        actor, action, description = None, "created", f"account {user['username']} created by an operator"
    else:
        actor, action, description = user["username"], "registered", f"{user['username']} registered"
    _record(ctx, actor=actor, action=action, user_ids=[user["_id"]], description=description, event=event,
            source=OPERATOR_SOURCE if by_operator else None, at=user["date_joined"])


def register_user(*, ctx: AuthContext, **fields: Any) -> dict:
    if not ctx.registration_open:
        raise Forbidden("Registration is closed; ask an operator for an account.", message_type="registration_closed")
    return create_user(ctx=ctx, **fields)


def _check_throttle(ctx: AuthContext, username: str, client_ip: str | None, now: datetime) -> None:
    waits = [seconds_blocked(ctx.store.login_failures, ctx.user_rule, username, now=now)]
    if client_ip:
        waits.append(seconds_blocked(ctx.store.login_failures, ctx.ip_rule, client_ip, now=now))
    wait = max(waits)
    if wait:
        raise TooManyRequests(
            f"Too many failed logins; try again in {wait} seconds.",
            message_type="too_many_failed_logins",
            headers={"Retry-After": str(wait)},
        )


def _record_failed_login(ctx: AuthContext, username: str, client_ip: str | None, now: datetime) -> None:
    record_failure(ctx.store.login_failures, ctx.user_rule, username, now=now)
    if client_ip:
        record_failure(ctx.store.login_failures, ctx.ip_rule, client_ip, now=now)


def authenticate(
    *, ctx: AuthContext, username: Any, password: Any, client_ip: str | None, user_agent: str = ""
) -> tuple[str, SessionToken, dict]:
    if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
        raise BadRequest("Give both `username` and `password`.", message_type="missing_credentials")
    now = _now()
    _check_throttle(ctx, username, client_ip, now)
    user = ctx.store.users.find_one({"username_key": username.lower()})
    valid = verify_password(ctx.hasher, user["password_hash"] if user else ctx.dummy_hash, password[:MAX_PASSWORD_LENGTH])
    if not user or not valid or not user.get("is_active", True):
        _record_failed_login(ctx, username, client_ip, now)
        raise InvalidCredentials()
    clear(ctx.store.login_failures, ctx.user_rule, username)
    if ctx.hasher.check_needs_rehash(user["password_hash"]):
        ctx.store.users.update_one({"_id": user["_id"]}, {"$set": {"password_hash": ctx.hasher.hash(password)}})
    token, session = issue_token(
        user_id=user["_id"], username=user["username"], secret=ctx.jwt_secret, ttl_seconds=ctx.token_ttl_seconds
    )
    ctx.store.sessions.insert_one(
        {
            "_id": session.session_id,
            "user_id": user["_id"],
            "created_at": now,
            "expires_epoch": session.expires_at,
            "revoked_at": None,
            "revoked_epoch": None,
            "client_ip": client_ip,
            "user_agent": user_agent[:300],
        }
    )
    return token, session, user


def _revoke_sessions(ctx: AuthContext, query: dict) -> int:
    revoked = 0
    now = _now()
    for session in ctx.store.sessions.find({**query, "revoked_at": None}, {"user_id": 1}):
        update = {"$set": {"revoked_at": now, "revoked_epoch": now.timestamp()}}
        event = _event(events.SessionRevoked(session_id=session["_id"], user_id=session["user_id"]))
        result = ctx.store.sessions.update_one({"_id": session["_id"], "revoked_at": None}, with_outbox(update, event))
        revoked += result.modified_count
    return revoked


def logout(*, ctx: AuthContext, identity: Identity) -> None:
    if not identity.is_authenticated or not identity.session_id:
        raise NotAuthenticated("You are not logged in.")
    _revoke_sessions(ctx, {"_id": identity.session_id})


def revocations_since(*, ctx: AuthContext, since: float) -> list[dict]:
    cursor = ctx.store.sessions.find(
        {"revoked_epoch": {"$gt": since}, "expires_epoch": {"$gt": time.time()}},
        {"expires_epoch": 1, "revoked_epoch": 1},
    )
    return [{"jti": s["_id"], "exp": s["expires_epoch"], "revoked_at": s["revoked_epoch"]} for s in cursor]


def get_active_user(*, ctx: AuthContext, user_id: int) -> dict:
    user = ctx.store.users.find_one({"_id": user_id, "is_active": True})
    if not user:
        raise NotFound(f"No user with id {user_id}.")
    return user


def _user_by_username(ctx: AuthContext, username: Any) -> dict:
    if not isinstance(username, str) or not username:
        raise BadRequest("Give the friend's `username`.", message_type="missing_username")
    user = ctx.store.users.find_one({"username_key": username.lower(), "is_active": True})
    if not user:
        raise NotFound(f"No user named {username!r}.", message_type="unknown_user")
    return user


def list_friends(*, ctx: AuthContext, identity: Identity) -> list[dict]:
    links = ctx.store.friendships.find({"user_id": identity.user_id, "_tombstone": {"$ne": True}})
    by_id = {link["friend_id"]: link for link in links}
    friends = ctx.store.users.find({"_id": {"$in": list(by_id)}, "is_active": True}).sort("username_key")
    return [{"id": f["_id"], "username": f["username"], "since": by_id[f["_id"]]["created_at"]} for f in friends]


def add_friend(*, ctx: AuthContext, identity: Identity, friend_username: Any) -> tuple[dict, bool]:
    """Returns the friend and whether the friendship is new."""
    friend = _user_by_username(ctx, friend_username)
    if friend["_id"] == identity.user_id:
        raise BadRequest("You cannot add yourself as a friend.", message_type="invalid_friend")
    link_id = f"{identity.user_id}:{friend['_id']}"
    live = {"_id": link_id, "_tombstone": {"$ne": True}}
    if ctx.store.friendships.find_one(live, {"_id": 1}):
        return friend, False
    added = _event(events.FriendshipAdded(identity.user_id, identity.username or "", friend["_id"], friend["username"]))
    update = {
        "$set": {"user_id": identity.user_id, "friend_id": friend["_id"], "created_at": _now(), "_tombstone": False}
    }
    ctx.store.friendships.update_one({"_id": link_id}, with_outbox(update, added), upsert=True)
    _record(ctx, actor=identity.username, action="friend_added", user_ids=[identity.user_id, friend["_id"]],
            description=f"{identity.username} added {friend['username']} as a friend", event=added,
            result={"friend": friend["username"]})
    return friend, True


def remove_friend(*, ctx: AuthContext, identity: Identity, friend_username: str) -> dict:
    friend = _user_by_username(ctx, friend_username)
    removed = _event(
        events.FriendshipRemoved(identity.user_id, identity.username or "", friend["_id"], friend["username"])
    )
    result = ctx.store.friendships.update_one(
        {"_id": f"{identity.user_id}:{friend['_id']}", "_tombstone": {"$ne": True}}, tombstone_update(removed)
    )
    if not result.modified_count:
        raise NotFound(f"{friend['username']} is not among your friends.", message_type="not_a_friend")
    _record(ctx, actor=identity.username, action="friend_removed", user_ids=[identity.user_id, friend["_id"]],
            description=f"{identity.username} removed {friend['username']} from their friends", event=removed,
            result={"friend": friend["username"]})
    return friend


def friends_of(*, ctx: AuthContext, user_id: int) -> list[int]:
    """The users whom `user_id` counts as friends (they may read user_id's friendly resources)."""
    links = ctx.store.friendships.find({"user_id": user_id, "_tombstone": {"$ne": True}}, {"friend_id": 1})
    return [link["friend_id"] for link in links]


def find_users(*, ctx: AuthContext, usernames: list[str], ids: list[int]) -> list[dict]:
    query = {"$or": [{"username_key": {"$in": [u.lower() for u in usernames]}}, {"_id": {"$in": ids}}]}
    # Internal callers (the acl service's share notifications) need the address too.
    return [{**public_user(u), "email": u.get("email", "")} for u in ctx.store.users.find({**query, "is_active": True})]


def deactivate_user(*, ctx: AuthContext, username: str) -> dict:
    user = ctx.store.users.find_one({"username_key": username.lower(), "is_active": True})
    if not user:
        raise NotFound(f"No active user named {username!r}.", message_type="unknown_user")
    event = _event(events.UserDeactivated(user_id=user["_id"], username=user["username"]))
    ctx.store.users.update_one({"_id": user["_id"]}, with_outbox({"$set": {"is_active": False}}, event))
    revoked = _revoke_sessions(ctx, {"user_id": user["_id"]})
    _record(ctx, actor=None, action="deactivated", user_ids=[user["_id"]], source=OPERATOR_SOURCE,
            description=f"account {user['username']} deactivated by an operator", event=event,
            result={"sessions_revoked": revoked})
    return user
