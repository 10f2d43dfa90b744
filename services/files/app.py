"""The files service's application factory."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from flask import Flask

from services.files.clients import MetadataClient, NeoClient
from services.files.context import FilesContext, Limits
from services.files.routes import files, internal
from services.files.store import FilesStore
from shared.app import build_service_app, on_first_request, service_db
from shared.bodies import MULTIPART_MARGIN, LargeBodies, allow_large_bodies
from shared.friends import init_friendships
from shared.history import register_internal_history
from shared.sandbox import SANDBOX_DEFAULTS, SandboxSettings

SERVICE = "files"

DEFAULTS: dict[str, Any] = {
    "FILES_DIR": "var/files",
    "NEO_URL": "",
    "METADATA_URL": "",
    "SERVICE_TIMEOUT_SECONDS": 300.0,
    "LIST_MAX_RESULTS": 10_000,
    "MAX_UPLOAD_BYTES": 64 * 1024**3,
    # Every request body but uploads (JSON or form updates of a datafile).
    "MAX_BODY_BYTES": 1024 * 1024,
    "ARCHIVE_MAX_MEMBERS": 1000,
    "ARCHIVE_MAX_BYTES": 2 * 1024**3,
    "ARCHIVE_MAX_RATIO": 200.0,
    "ARCHIVE_MAX_DEPTH": 3,
    "ARCHIVE_MAX_TOTAL_BYTES": 8 * 1024**3,
    "ARCHIVE_MAX_TOTAL_MEMBERS": 10_000,
    "HDF5_MAX_DATASET_BYTES": 2 * 1024**3,
    "CONVERSION_MAX_ATTEMPTS": 3,
    **SANDBOX_DEFAULTS,
    "DATAFILE_QUOTA_BYTES": 0,  # bytes of datafiles each user may store; 0 = unlimited
}
# `POST /datafiles/` streams the file into place; its own check counts the file's bytes.
LARGE_BODIES = (LargeBodies("files.upload", "MAX_UPLOAD_BYTES", margin=MULTIPART_MARGIN),)


def build_context(config: Mapping[str, Any], db) -> FilesContext:
    limits = Limits(
        max_page=config["LIST_MAX_RESULTS"],
        max_upload_bytes=config["MAX_UPLOAD_BYTES"],
        archive_max_members=config["ARCHIVE_MAX_MEMBERS"],
        archive_max_bytes=config["ARCHIVE_MAX_BYTES"],
        archive_max_ratio=float(config["ARCHIVE_MAX_RATIO"]),
        archive_max_depth=config["ARCHIVE_MAX_DEPTH"],
        archive_max_total_bytes=config["ARCHIVE_MAX_TOTAL_BYTES"],
        archive_max_total_members=config["ARCHIVE_MAX_TOTAL_MEMBERS"],
        hdf5_max_dataset_bytes=config["HDF5_MAX_DATASET_BYTES"],
        conversion_max_attempts=config["CONVERSION_MAX_ATTEMPTS"],
        datafile_quota_bytes=config["DATAFILE_QUOTA_BYTES"],
    )
    secret, timeout = config["INTERNAL_SECRET"], float(config["SERVICE_TIMEOUT_SECONDS"])
    return FilesContext(
        store=FilesStore(db, Path(config["FILES_DIR"])),
        neo=NeoClient(config["NEO_URL"], secret, "neo", timeout),
        metadata=MetadataClient(config["METADATA_URL"], secret, "metadata", timeout),
        limits=limits,
        sandbox=SandboxSettings.from_config(config, forbidden=(config["FILES_DIR"], config.get("DATA_DIR") or "")),
    )


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = build_service_app(SERVICE, defaults=DEFAULTS, config=config)
    db = service_db(app)
    ctx = build_context(app.config, db)
    app.extensions["files_context"] = ctx
    init_friendships(app, db)  # after the identity: who befriended the caller (friendly reads)
    app.register_blueprint(files)
    app.register_blueprint(internal)
    allow_large_bodies(app, LARGE_BODIES)
    register_internal_history(app, service=SERVICE)  # the auth service's per-user history
    on_first_request(app, ctx.store.ensure_indexes)  # datafiles (ACL read model), friendships, outbox, history
    return app
