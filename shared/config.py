"""Configuration from environment variables, with local defaults.

A service describes its settings as a dict of defaults; `load_config` reads each key from the
environment (coerced to the default's type) and then applies explicit overrides, which is how tests
configure an app without touching `os.environ`.

The secrets have published development defaults so that one service can be tried by hand; a
process refuses to start with them (or with an empty or short secret) unless `DEV_MODE_FLAG` is
true (DESIGN.md section 8). `make run` and compose hand every process real secrets instead.
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from shared.tokens import DEV_JWT_SECRET

DEV_MODE_FLAG = "GNODE_DEV_MODE"
DEV_INTERNAL_SECRET = "dev-internal-secret-not-for-production-use"
# Every secret a process may be configured with, and its published development value.
PUBLISHED_DEV_SECRETS: dict[str, str] = {
    "INTERNAL_SECRET": DEV_INTERNAL_SECRET,
    "JWT_SECRET": DEV_JWT_SECRET,
}
# HS256 keys shorter than the hash output are guessable offline from one signed token.
MIN_SECRET_LENGTH = 32

COMMON_DEFAULTS: dict[str, Any] = {
    "MONGO_URL": "mongodb://127.0.0.1:27217",
    "MONGO_DB_PREFIX": "gnode_",
    "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "EVENT_EXCHANGE": "gnode",
    # Signs the identity header the gateway forwards; services trust nothing else.
    "INTERNAL_SECRET": DEV_INTERNAL_SECRET,
    DEV_MODE_FLAG: False,
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    pass


def coerce(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{key} must be a boolean (true/false), got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    return raw


def load_config(
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    without: Iterable[str] = (),
) -> dict[str, Any]:
    """`without`: settings this process does not use and must not hold (a secret it has no use for)."""
    environ = os.environ if environ is None else environ
    dropped = set(without)
    merged = {key: value for key, value in {**COMMON_DEFAULTS, **defaults}.items() if key not in dropped}
    config = {
        key: coerce(key, environ[key], default) if key in environ else default
        for key, default in merged.items()
    }
    config.update({key: value for key, value in (overrides or {}).items() if key not in dropped})
    refuse_unsafe_secrets(config)
    return config


def refuse_unsafe_secrets(config: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the first secret that is empty, or published or short while the
    development flag is not set."""
    dev_mode = config.get(DEV_MODE_FLAG) is True
    for key, published in PUBLISHED_DEV_SECRETS.items():
        if key not in config:
            continue
        value = config[key]
        if not isinstance(value, str) or not value:
            problem = "is not set"
        elif dev_mode:
            continue
        elif value == published:
            problem = "is the published development secret"
        elif len(value) < MIN_SECRET_LENGTH:
            problem = f"is shorter than {MIN_SECRET_LENGTH} characters"
        else:
            continue
        raise ConfigError(
            f"{key} {problem}: set {key} to a random value of your own (for example `openssl rand -hex 32`), "
            f"or {DEV_MODE_FLAG}=true to run with the published development secrets on your own machine"
        )
