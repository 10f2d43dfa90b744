"""The neo service's application factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from services.neo.arrays import ArrayStore
from services.neo.clients import MetadataClient
from services.neo.context import Limits, NeoContext
from services.neo.routes import internal, neo
from services.neo.store import NeoStore
from shared.app import build_service_app, on_first_request, service_db
from shared.friends import init_friendships
from shared.history import register_internal_history

SERVICE = "neo"

DEFAULTS: dict[str, Any] = {
    "DATA_DIR": "var/data",
    "MAX_JSON_BYTES": 256 * 1024 * 1024,
    "LIST_MAX_RESULTS": 10_000,
    "JSON_MAX_SAMPLES": 5_000_000,
    "CASCADE_MAX_OBJECTS": 5_000,
    "CASCADE_MAX_SAMPLES": 5_000_000,
    "METADATA_URL": "",  # the metadata service's internal API (labels); stack/system.py sets it
    "METADATA_TIMEOUT": 30.0,
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
    db = service_db(app)
    init_friendships(app, db)  # after the identity: fills Identity.befriended_by for friendly reads
    ctx = build_context(app.config, db)
    app.extensions["neo_context"] = ctx
    # Tests replace it with a fake that has the same `values` method.
    app.extensions["neo_metadata"] = MetadataClient(app.config["METADATA_URL"], app.config["INTERNAL_SECRET"],
                                                    float(app.config["METADATA_TIMEOUT"]))
    app.register_blueprint(neo)
    app.register_blueprint(internal)
    register_internal_history(app, service=SERVICE)  # the auth service's per-user history asks it
    on_first_request(app, ctx.store.ensure_indexes)  # the history indexes too
    return app
