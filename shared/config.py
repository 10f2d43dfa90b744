"""Configuration from environment variables, with local defaults.

A service describes its settings as a dict of defaults; `load_config` reads each key from the
environment (coerced to the default's type) and then applies explicit overrides, which is how tests
configure an app without touching `os.environ`.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

COMMON_DEFAULTS: dict[str, Any] = {
    "MONGO_URL": "mongodb://127.0.0.1:27217",
    "MONGO_DB_PREFIX": "gnode_",
    "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "EVENT_EXCHANGE": "gnode",
    # Signs the identity header the gateway forwards; services trust nothing else.
    "INTERNAL_SECRET": "dev-internal-secret-not-for-production-use",
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
) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    merged = {**COMMON_DEFAULTS, **defaults}
    config = {
        key: coerce(key, environ[key], default) if key in environ else default
        for key, default in merged.items()
    }
    config.update(overrides or {})
    return config
