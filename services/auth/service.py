"""The auth service layer: every check, write and event of the service lives here."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from argon2 import PasswordHasher
from pymongo.errors import DuplicateKeyError

from services.auth import events, revocations, throttle
from services.auth.passwords import MIN_PASSWORD_LENGTH, verify_password
from services.auth.store import AuthStore
from services.auth.throttle import BackoffRule, Throttled, WindowRule
from shared.errors import ApiError, BadRequest, Conflict, Forbidden, NotAuthenticated, NotFound, TooManyRequests
from shared.events import envelope_for, outbox_fields, tombstone_update, with_outbox
from shared.events.outbox import PENDING_FIELD
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
    login_backoff: BackoffRule  # per username and client address
    login_per_address: WindowRule
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


def _is_text(value: Any) -> bool:
    """A string UTF-8 can carry: JSON may smuggle in lone surrogates, which MongoDB and argon2 refuse."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _validate_new_user(username: Any, email: Any, password: Any, names: dict[str, str]) -> None:
    problems = {key: "text" for key, value in names.items() if not _is_text(value)}
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        problems["username"] = "1 to 150 letters, digits or the characters _ . @ + -"
    if not _is_text(email) or not EMAIL_RE.match(email):
        problems["email"] = "a valid e-mail address"
    if not _is_text(password) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
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
    names = {"first_name": str(first_name or "")[:150], "last_name": str(last_name or "")[:150]}
    _validate_new_user(username, email, password, names)
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
        **names,
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


def _count_login_attempt(ctx: AuthContext, username: str, client_ip: str | None, now: datetime) -> throttle.Claim:
    try:
        return throttle.claim_attempt(ctx.store.login_attempts, backoff=ctx.login_backoff,
                                      per_address=ctx.login_per_address, username=username, client_ip=client_ip, now=now)
    except Throttled as exc:
        raise TooManyRequests(
            f"Too many failed logins; try again in {exc.retry_after} seconds.",
            message_type="too_many_failed_logins",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None


def authenticate(
    *, ctx: AuthContext, username: Any, password: Any, client_ip: str | None, user_agent: str = ""
) -> tuple[str, SessionToken, dict]:
    if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
        raise BadRequest("Give both `username` and `password`.", message_type="missing_credentials")
    if not _is_text(username) or not _is_text(password):
        raise BadRequest("`username` and `password` must be text.", message_type="invalid_fields")
    now = _now()
    # Counted before the password is checked, so that concurrent guesses are counted one by one.
    attempt = _count_login_attempt(ctx, username, client_ip, now)
    user = ctx.store.users.find_one({"username_key": username.lower()})
    valid = verify_password(ctx.hasher, user["password_hash"] if user else ctx.dummy_hash, password[:MAX_PASSWORD_LENGTH])
    if not user or not valid or not user.get("is_active", True):
        raise InvalidCredentials()
    throttle.forget_success(ctx.store.login_attempts, attempt)
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
            "client_ip": client_ip,
            "user_agent": user_agent[:300],
        }
    )
    return token, session, user


def _revoke_sessions(ctx: AuthContext, query: dict) -> int:
    revoked = 0
    now = _now()
    for session in ctx.store.sessions.find({**query, "revoked_at": None}, {"user_id": 1, "expires_epoch": 1}):
        # The log entry first: a crash between the two writes must leave the token refused.
        seq = revocations.append(ctx.store.revocations, session_id=session["_id"],
                                 expires_epoch=session["expires_epoch"], revoked_epoch=now.timestamp())
        update = {"$set": {"revoked_at": now, "revocation_seq": seq}}
        event = _event(events.SessionRevoked(session_id=session["_id"], user_id=session["user_id"]))
        result = ctx.store.sessions.update_one({"_id": session["_id"], "revoked_at": None}, with_outbox(update, event))
        revoked += result.modified_count
    return revoked


def prepare_store(*, ctx: AuthContext) -> None:
    """Before the first request: the indexes, and the log entries of sessions revoked before the
    revocation log existed (revocations.py)."""
    ctx.store.ensure_indexes()
    revocations.record_earlier_revocations(ctx.store.sessions, ctx.store.revocations, now_epoch=time.time())


def logout(*, ctx: AuthContext, identity: Identity) -> None:
    if not identity.is_authenticated or not identity.session_id:
        raise NotAuthenticated("You are not logged in.")
    _revoke_sessions(ctx, {"_id": identity.session_id})


# Larger numbers than MongoDB's 64-bit integers are refused before they reach a query.
MAX_REVOCATION_SEQ = 2**62


def revocations_after(*, ctx: AuthContext, after: Any) -> dict:
    """The revoked sessions numbered above `after` (see revocations.py), for the gateway."""
    try:
        after = int(after or 0)
    except (TypeError, ValueError):
        raise BadRequest("`after` must be a revocation number (an integer).", message_type="invalid_parameter",
                         details={"parameter": "after"}) from None
    if not 0 <= after <= MAX_REVOCATION_SEQ:
        raise BadRequest("`after` is out of range.", message_type="invalid_parameter", details={"parameter": "after"})
    return revocations.entries_after(ctx.store.revocations, after=after)


def purge_expired(*, store: AuthStore, now: datetime | None = None) -> dict[str, int]:
    """Forget expired sessions, their revocations and stale login throttling records (the worker
    calls this periodically: the database may not support TTL indexes)."""
    now = now or _now()
    now_epoch = now.timestamp()
    sessions = store.sessions.delete_many({
        "expires_epoch": {"$lt": now_epoch - revocations.KEEP_AFTER_EXPIRY_SECONDS},
        PENDING_FIELD: {"$ne": True},  # an event not yet published keeps its document
    }).deleted_count
    return {
        "sessions": sessions,
        "revocations": revocations.purge_expired(store.revocations, now_epoch=now_epoch),
        "login_attempts": throttle.purge_expired(store.login_attempts, now=now),
    }


def get_active_user(*, ctx: AuthContext, user_id: int) -> dict:
    user = ctx.store.users.find_one({"_id": user_id, "is_active": True})
    if not user:
        raise NotFound(f"No user with id {user_id}.")
    return user


def _user_by_username(ctx: AuthContext, username: Any) -> dict:
    if not _is_text(username) or not username:
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
