"""The metadata service's application factory."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

from services.metadata.clients import FilesClient
from services.metadata.context import IMPORT_SANDBOX, Limits, MetadataContext
from services.metadata.routes import internal, metadata
from services.metadata.store import MetadataStore
from shared.app import build_service_app, on_first_request, service_db
from shared.bodies import MULTIPART_MARGIN, LargeBodies, allow_large_bodies
from shared.friends import init_friendships
from shared.history import register_internal_history
from shared.sandbox import SANDBOX_DEFAULTS, SandboxSettings

SERVICE = "metadata"

DEFAULTS: dict[str, Any] = {
    "LIST_MAX_RESULTS": 10_000,
    "TREE_MAX_SECTIONS": 10_000,  # sections copied, exported or imported in one request
    "PROPERTY_MAX_VALUES": 10_000,
    "IMPORT_MAX_BYTES": 32 * 1024 * 1024,
    "FILES_URL": "",  # asked which datafiles shown in a section the caller may read
    "SERVICE_TIMEOUT_SECONDS": 10.0,
    # Every request body but odML imports (JSON sections, properties, values).
    "MAX_BODY_BYTES": 8 * 1024 * 1024,
    # The sandbox that parses uploaded odML documents (shared/sandbox): where its scratch folders go
    # (empty: the system's temporary folder), how many run at once in one process.
    "SANDBOX_DIR": "",
    "IMPORT_CONCURRENCY": 2,
    **{**SANDBOX_DEFAULTS, "SANDBOX_CPU_SECONDS": IMPORT_SANDBOX.cpu_seconds,
       "SANDBOX_WALL_SECONDS": IMPORT_SANDBOX.wall_seconds, "SANDBOX_MEMORY_BYTES": IMPORT_SANDBOX.memory_bytes,
       "SANDBOX_OUTPUT_BYTES": IMPORT_SANDBOX.output_bytes},
}
# odML documents (as the body or a multipart `file` part) may be as large as IMPORT_MAX_BYTES.
LARGE_BODIES = tuple(
    LargeBodies(endpoint, "IMPORT_MAX_BYTES", margin=MULTIPART_MARGIN)
    for endpoint in ("metadata.import_document", "metadata_internal.internal_import")
)


def build_context(config: Mapping[str, Any], db) -> MetadataContext:
    limits = Limits(
        max_page=config["LIST_MAX_RESULTS"],
        max_tree=config["TREE_MAX_SECTIONS"],
        max_values=config["PROPERTY_MAX_VALUES"],
        max_import_bytes=config["IMPORT_MAX_BYTES"],
    )
    files = FilesClient(config.get("FILES_URL", ""), config.get("INTERNAL_SECRET", ""),
                        float(config.get("SERVICE_TIMEOUT_SECONDS", 10.0)))
    return MetadataContext(store=MetadataStore(db), limits=limits, files=files,
                           sandbox_dir=Path(config["SANDBOX_DIR"]) if config.get("SANDBOX_DIR") else None,
                           sandbox=SandboxSettings.from_config(config, defaults=IMPORT_SANDBOX),
                           import_slots=threading.BoundedSemaphore(max(1, int(config.get("IMPORT_CONCURRENCY", 2)))))


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = build_service_app(SERVICE, defaults=DEFAULTS, config=config)
    db = service_db(app)
    ctx = build_context(app.config, db)
    app.extensions["metadata_context"] = ctx
    app.register_blueprint(metadata)
    app.register_blueprint(internal)
    allow_large_bodies(app, LARGE_BODIES)
    register_internal_history(app, service=SERVICE)  # the auth service's per-user history
    on_first_request(app, ctx.store.ensure_indexes)  # the ACL, friendship and history indexes too
    init_friendships(app, db)  # after the identity: who befriended the caller, for friendly reads
    return app
