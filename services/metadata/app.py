"""The metadata service's application factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from services.metadata.context import Limits, MetadataContext
from services.metadata.routes import internal, metadata
from services.metadata.store import MetadataStore
from shared.app import build_service_app, on_first_request, service_db
from shared.friends import init_friendships
from shared.history import register_internal_history

SERVICE = "metadata"

DEFAULTS: dict[str, Any] = {
    "LIST_MAX_RESULTS": 10_000,
    "TREE_MAX_SECTIONS": 10_000,  # sections copied, exported or imported in one request
    "PROPERTY_MAX_VALUES": 10_000,
    "IMPORT_MAX_BYTES": 32 * 1024 * 1024,
}


def build_context(config: Mapping[str, Any], db) -> MetadataContext:
    limits = Limits(
        max_page=config["LIST_MAX_RESULTS"],
        max_tree=config["TREE_MAX_SECTIONS"],
        max_values=config["PROPERTY_MAX_VALUES"],
        max_import_bytes=config["IMPORT_MAX_BYTES"],
    )
    return MetadataContext(store=MetadataStore(db), limits=limits)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = build_service_app(SERVICE, defaults=DEFAULTS, config=config)
    # Request bodies (JSON or an odML document) are bounded; more is a 413 before it is read.
    app.config["MAX_CONTENT_LENGTH"] = app.config["IMPORT_MAX_BYTES"] + 1024 * 1024
    db = service_db(app)
    ctx = build_context(app.config, db)
    app.extensions["metadata_context"] = ctx
    app.register_blueprint(metadata)
    app.register_blueprint(internal)
    register_internal_history(app, service=SERVICE)  # the auth service's per-user history
    on_first_request(app, ctx.store.ensure_indexes)  # the ACL, friendship and history indexes too
    init_friendships(app, db)  # after the identity: who befriended the caller, for friendly reads
    return app
