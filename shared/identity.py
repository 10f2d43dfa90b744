"""The verified caller identity the gateway forwards to services.

The gateway checks the public token once, then signs a short-lived internal token with
INTERNAL_SECRET and sends it in `IDENTITY_HEADER`. Services trust that header only when its
signature verifies; a request without it is anonymous, a request with a bad one is refused.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt
from flask import Flask, current_app, g, request

from shared.errors import NotAuthenticated

IDENTITY_HEADER = "X-Gnode-Identity"
REQUEST_ID_HEADER = "X-Request-Id"
_AUDIENCE = "gnode-internal"
_ALGORITHM = "HS256"
IDENTITY_TTL_SECONDS = 120


@dataclass(frozen=True)
class Identity:
    user_id: int | None = None
    username: str | None = None
    session_id: str | None = None
    client_ip: str | None = None
    # The owners who count this user as a friend (shared/friends.py fills it in per request):
    # their friendly resources are readable. Never part of the signed header.
    befriended_by: frozenset[int] = field(default_factory=frozenset, compare=False)

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    def claims(self) -> dict:
        """What the gateway signs into the identity header."""
        return {"user_id": self.user_id, "username": self.username,
                "session_id": self.session_id, "client_ip": self.client_ip}


ANONYMOUS = Identity()


class InvalidIdentity(Exception):
    pass


def encode_identity(identity: Identity, secret: str, *, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {k: v for k, v in identity.claims().items() if v is not None}
    claims.update(aud=_AUDIENCE, iat=issued, exp=issued + IDENTITY_TTL_SECONDS)
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def decode_identity(header_value: str, secret: str) -> Identity:
    try:
        claims = jwt.decode(header_value, secret, algorithms=[_ALGORITHM], audience=_AUDIENCE)
    except jwt.PyJWTError as exc:
        raise InvalidIdentity(str(exc)) from None
    return Identity(
        user_id=claims.get("user_id"),
        username=claims.get("username"),
        session_id=claims.get("session_id"),
        client_ip=claims.get("client_ip"),
    )


def _load_identity() -> None:
    header_value = request.headers.get(IDENTITY_HEADER)
    if not header_value:
        g.identity = Identity(client_ip=request.remote_addr)
        return
    try:
        g.identity = decode_identity(header_value, current_app.config["INTERNAL_SECRET"])
    except InvalidIdentity:
        g.identity = ANONYMOUS
        raise NotAuthenticated(
            "The identity header is not valid; call the API through the gateway.",
            message_type="invalid_identity",
        ) from None


def init_identity(app: Flask) -> None:
    app.before_request(_load_identity)


def current_identity() -> Identity:
    return g.get("identity", ANONYMOUS)


def require_user() -> Identity:
    identity = current_identity()
    if not identity.is_authenticated:
        raise NotAuthenticated()
    return identity
