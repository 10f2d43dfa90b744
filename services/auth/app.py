"""The auth service's application factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from services.auth.history import HistorySources
from services.auth.passwords import make_hasher
from services.auth.routes import account, internal
from services.auth.service import AuthContext, prepare_store
from services.auth.store import AuthStore
from services.auth.throttle import BackoffRule, WindowRule
from shared.app import build_service_app, on_first_request, service_db
from shared.history import register_internal_history
from shared.tokens import DEV_JWT_SECRET

SERVICE = "auth"

DEFAULTS: dict[str, Any] = {
    "JWT_SECRET": DEV_JWT_SECRET,
    "TOKEN_TTL_SECONDS": 14 * 24 * 3600,
    "SESSION_COOKIE": "sessionid",
    "COOKIE_SECURE": False,
    "REGISTRATION_OPEN": True,
    # Attempts for one username from one client address before each further one waits a lock,
    # doubling from LOGIN_BACKOFF_BASE_SECONDS up to LOGIN_BACKOFF_MAX_SECONDS (throttle.py).
    "LOGIN_MAX_FAILURES_PER_USER": 5,
    "LOGIN_BACKOFF_BASE_SECONDS": 30,
    "LOGIN_BACKOFF_MAX_SECONDS": 900,
    # Failed attempts from one client address per window, whatever the usernames; the window is
    # also how long a username+address record outlives its lock.
    "LOGIN_MAX_FAILURES_PER_IP": 30,
    "LOGIN_FAILURE_WINDOW_SECONDS": 900,
    # How often the worker deletes expired sessions, revocations and throttling records.
    "PURGE_INTERVAL_SECONDS": 600,
    "PASSWORD_HASH_MEMORY_KIB": 65536,
    "PASSWORD_HASH_TIME_COST": 3,
    # Every request body (login and registration forms, small JSON objects).
    "MAX_BODY_BYTES": 1024 * 1024,
    # The services whose entries a user's action history merges in; stack/system.py sets them, and
    # "" means not configured (skipped, not reported as unavailable).
    "NEO_URL": "",
    "METADATA_URL": "",
    "FILES_URL": "",
    # How long the user history waits for the other services before answering without them.
    "HISTORY_TIMEOUT_SECONDS": 3.0,
}


def build_context(config: Mapping[str, Any], db) -> AuthContext:
    hasher = make_hasher(memory_kib=config["PASSWORD_HASH_MEMORY_KIB"], time_cost=config["PASSWORD_HASH_TIME_COST"])
    window = int(config["LOGIN_FAILURE_WINDOW_SECONDS"])
    return AuthContext(
        store=AuthStore(db),
        hasher=hasher,
        jwt_secret=config.get("JWT_SECRET", ""),  # none in the operator CLI: it issues no token
        token_ttl_seconds=config["TOKEN_TTL_SECONDS"],
        registration_open=config["REGISTRATION_OPEN"],
        login_backoff=BackoffRule(
            free_attempts=int(config["LOGIN_MAX_FAILURES_PER_USER"]),
            base_seconds=float(config["LOGIN_BACKOFF_BASE_SECONDS"]),
            max_seconds=float(config["LOGIN_BACKOFF_MAX_SECONDS"]),
            forget_after_seconds=window,
        ),
        login_per_address=WindowRule(limit=int(config["LOGIN_MAX_FAILURES_PER_IP"]), window_seconds=window),
        dummy_hash=hasher.hash("not a real password"),
    )


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = build_service_app(SERVICE, defaults=DEFAULTS, config=config)
    ctx = build_context(app.config, service_db(app))
    app.extensions["auth_context"] = ctx
    app.extensions["auth_history_sources"] = HistorySources.from_config(app.config)
    app.register_blueprint(account)
    app.register_blueprint(internal)
    register_internal_history(app, service=SERVICE)

    on_first_request(app, lambda: prepare_store(ctx=ctx))
    return app
