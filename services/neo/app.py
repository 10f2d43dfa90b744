"""The neo service's application factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from services.neo.arrays import ArrayStore
from services.neo.clients import MetadataClient
from services.neo.context import Limits, NeoContext
from services.neo.quota import ArrayQuota
from services.neo.routes import internal, neo
from services.neo.store import NeoStore
from shared.app import build_service_app, on_first_request, service_db
from shared.bodies import MULTIPART_MARGIN, LargeBodies, allow_large_bodies
from shared.friends import init_friendships
from shared.history import register_internal_history

SERVICE = "neo"

DEFAULTS: dict[str, Any] = {
    "DATA_DIR": "var/data",
    # Every request body but multipart creates and updates (JSON objects, lists, labels, selections).
    "MAX_JSON_BYTES": 256 * 1024 * 1024,
    # Multipart creates and updates: the JSON part plus the arrays as .npy parts.
    "MAX_ARRAY_UPLOAD_BYTES": 8 * 1024**3,
    "LIST_MAX_RESULTS": 10_000,
    "JSON_MAX_SAMPLES": 5_000_000,
    "CASCADE_MAX_OBJECTS": 5_000,
    "CASCADE_MAX_SAMPLES": 5_000_000,
    "METADATA_URL": "",  # the metadata service's internal API (labels); stack/system.py sets it
    "METADATA_TIMEOUT": 30.0,
    "ARRAY_QUOTA_BYTES": 0,  # bytes of array data per user; 0 = unlimited
}


# Arrays sent as .npy parts are spooled to disk by the form parser, not held in memory.
LARGE_BODIES = tuple(
    LargeBodies(endpoint, "MAX_ARRAY_UPLOAD_BYTES", media_types=frozenset({"multipart/form-data"}),
                margin=MULTIPART_MARGIN)
    for endpoint in ("neo.create", "neo.update")
)


def build_context(config: Mapping[str, Any], db) -> NeoContext:
    limits = Limits(
        max_page=config["LIST_MAX_RESULTS"],
        json_max_samples=config["JSON_MAX_SAMPLES"],
        cascade_max_objects=config["CASCADE_MAX_OBJECTS"],
        cascade_max_samples=config["CASCADE_MAX_SAMPLES"],
    )
    store = NeoStore(db)
    return NeoContext(store=store, arrays=ArrayStore(config["DATA_DIR"]), limits=limits,
                      quota=ArrayQuota(store, int(config["ARRAY_QUOTA_BYTES"])))


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = build_service_app(SERVICE, defaults=DEFAULTS, config=config, body_limit_key="MAX_JSON_BYTES")
    db = service_db(app)
    init_friendships(app, db)  # after the identity: fills Identity.befriended_by for friendly reads
    ctx = build_context(app.config, db)
    app.extensions["neo_context"] = ctx
    # Tests replace it with a fake that has the same `values` method.
    app.extensions["neo_metadata"] = MetadataClient(app.config["METADATA_URL"], app.config["INTERNAL_SECRET"],
                                                    float(app.config["METADATA_TIMEOUT"]))
    app.register_blueprint(neo)
    app.register_blueprint(internal)
    allow_large_bodies(app, LARGE_BODIES)
    register_internal_history(app, service=SERVICE)  # the auth service's per-user history asks it
    on_first_request(app, ctx.store.ensure_indexes)  # the history indexes too
    return app
