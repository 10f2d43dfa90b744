"""The neo service's application factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from services.neo.arrays import ArrayStore
from services.neo.context import Limits, NeoContext
from services.neo.routes import neo
from services.neo.store import NeoStore
from shared.app import build_service_app, on_first_request, service_db

SERVICE = "neo"

DEFAULTS: dict[str, Any] = {
    "DATA_DIR": "var/data",
    "MAX_JSON_BYTES": 256 * 1024 * 1024,
    "LIST_MAX_RESULTS": 10_000,
    "JSON_MAX_SAMPLES": 5_000_000,
    "CASCADE_MAX_OBJECTS": 5_000,
    "CASCADE_MAX_SAMPLES": 5_000_000,
}


def build_context(config: Mapping[str, Any], db) -> NeoContext:
    limits = Limits(
        max_page=config["LIST_MAX_RESULTS"],
        json_max_samples=config["JSON_MAX_SAMPLES"],
        cascade_max_objects=config["CASCADE_MAX_OBJECTS"],
        cascade_max_samples=config["CASCADE_MAX_SAMPLES"],
    )
    return NeoContext(store=NeoStore(db), arrays=ArrayStore(config["DATA_DIR"]), limits=limits)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = build_service_app(SERVICE, defaults=DEFAULTS, config=config)
    ctx = build_context(app.config, service_db(app))
    app.extensions["neo_context"] = ctx
    app.register_blueprint(neo)
    on_first_request(app, ctx.store.ensure_indexes)
    return app
