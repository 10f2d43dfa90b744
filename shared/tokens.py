"""The public session token: a JWT the auth service issues and the gateway verifies.

Claims: `sub` (user id as a string), `username`, `jti` (the session id, used for revocation),
`iat`, `exp`, `iss` = "gnode-auth", `aud` = "gnode". Signed HS256 with JWT_SECRET.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

ISSUER = "gnode-auth"
AUDIENCE = "gnode"
ALGORITHM = "HS256"
LEEWAY_SECONDS = 5
# Published, so accepted only with GNODE_DEV_MODE=true (shared/config.py); `make run` generates a
# real secret into var/secrets.env.
DEV_JWT_SECRET = "dev-jwt-secret-not-for-production-use-000"


@dataclass(frozen=True)
class SessionToken:
    user_id: int
    username: str
    session_id: str
    issued_at: int
    expires_at: int


class InvalidToken(Exception):
    pass


def issue_token(*, user_id: int, username: str, secret: str, ttl_seconds: int, now: float | None = None) -> tuple[str, SessionToken]:
    if not secret:
        raise ValueError("no JWT_SECRET: this process may not issue session tokens")
    issued = int(now if now is not None else time.time())
    session = SessionToken(user_id, username, uuid.uuid4().hex, issued, issued + ttl_seconds)
    claims = {
        "sub": str(user_id),
        "username": username,
        "jti": session.session_id,
        "iat": session.issued_at,
        "exp": session.expires_at,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), session


def verify_token(token: str, secret: str) -> SessionToken:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "jti", "exp", "iat"]},
        )
        return SessionToken(int(claims["sub"]), claims.get("username", ""), claims["jti"], claims["iat"], claims["exp"])
    except (jwt.PyJWTError, ValueError) as exc:
        raise InvalidToken(str(exc)) from None
