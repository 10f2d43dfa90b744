"""The common skeleton of every service's `create_app`."""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Callable, Mapping

from flask import Flask, Response, g, request

from shared.bodies import bound_service_bodies
from shared.config import load_config
from shared.errors import register_error_handlers
from shared.health import amqp_check, init_health
from shared.identity import REQUEST_ID_HEADER, current_identity, init_identity
from shared.logs import configure_logging
from shared.metrics import init_metrics
from shared.mongo import connect_mongo, ping

access_log = logging.getLogger("gnode.access")
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _init_request_id(app: Flask) -> None:
    @app.before_request
    def _assign():
        g.request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _echo(response: Response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        return response


def _init_access_log(app: Flask) -> None:
    @app.after_request
    def _log(response: Response):
        if request.path not in PROBE_PATHS:
            # Internal calls (the gateway polls revocations several times a second) would drown the log.
            level = logging.DEBUG if request.path.startswith("/internal/") and response.status_code < 400 else logging.INFO
            access_log.log(
                level,
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
                    "user": current_identity().username,
                },
            )
        return response


def build_service_app(
    service: str,
    *,
    defaults: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    body_limit_key: str = "MAX_BODY_BYTES",
) -> Flask:
    """A Flask app with config, logs, errors, request ids, bounded bodies, identity, metrics, health
    and MongoDB. Request bodies are limited to `config[body_limit_key]` bytes on every route; a
    service raises the limit of its upload routes with `shared.bodies.allow_large_bodies`."""
    app = Flask(service)
    app.config.update(load_config(defaults, config))
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    configure_logging(service, level=app.config["LOG_LEVEL"], fmt=app.config["LOG_FORMAT"])
    register_error_handlers(app)
    _init_request_id(app)
    bound_service_bodies(app, default_key=body_limit_key)
    init_identity(app)
    _init_access_log(app)
    init_metrics(app, service)
    db = connect_mongo(app.config, service=service)
    app.extensions["mongo_db"] = db
    init_health(app, service, {"mongodb": lambda: ping(db), "rabbitmq": amqp_check(app.config["AMQP_URL"])})
    return app


def on_first_request(app: Flask, setup: Callable[[], None]) -> None:
    """Run `setup` (say, index creation) before the first real request, so create_app does no I/O."""
    done = threading.Event()
    lock = threading.Lock()

    @app.before_request
    def _setup_once():
        if done.is_set() or request.path in PROBE_PATHS:
            return
        with lock:
            if not done.is_set():
                setup()
                done.set()


def service_db(app: Flask):
    return app.extensions["mongo_db"]
