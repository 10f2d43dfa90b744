"""The acl service's application factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from services.acl.clients import InternalClient, ResourceDirectory, UserDirectory
from services.acl.routes import acl
from services.acl.service import AclContext, Limits
from services.acl.store import AclStore
from shared.app import build_service_app, on_first_request, service_db
from shared.friends import init_friendships

SERVICE = "acl"

DEFAULTS: dict[str, Any] = {
    "AUTH_URL": "http://127.0.0.1:8001",
    "NEO_URL": "http://127.0.0.1:8002",
    "METADATA_URL": "http://127.0.0.1:8003",
    "FILES_URL": "http://127.0.0.1:8004",
    "ACL_MAX_RESOURCES": 200_000,
    # Every request body (ACL changes; bulk changes list their resources).
    "MAX_BODY_BYTES": 8 * 1024 * 1024,
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_FROM": "G-Node <noreply@localhost>",
    "SMTP_USER": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": False,
    "SMTP_CA_FILE": "",  # CA bundle (PEM) that signed the mail server's certificate; "" = the system's
    "PUBLIC_URL": "http://127.0.0.1:8000",
}


def build_context(config: Mapping[str, Any], db) -> AclContext:
    client = InternalClient({"auth": config["AUTH_URL"], "neo": config["NEO_URL"],
                             "metadata": config["METADATA_URL"], "files": config["FILES_URL"]})
    return AclContext(store=AclStore(db), users=UserDirectory(client), resources=ResourceDirectory(client),
                      limits=Limits(max_resources=int(config["ACL_MAX_RESOURCES"])))


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = build_service_app(SERVICE, defaults=DEFAULTS, config=config)
    db = service_db(app)
    ctx = build_context(app.config, db)
    app.extensions["acl_context"] = ctx
    init_friendships(app, db)
    app.register_blueprint(acl)
    on_first_request(app, ctx.store.ensure_indexes)
    return app
