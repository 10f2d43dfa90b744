"""Liveness (`/healthz`) and readiness (`/readyz`) endpoints."""
from __future__ import annotations

import threading
import time
from typing import Callable

import pika
from flask import Flask

from shared.envelope import json_response

Check = Callable[[], None]


def amqp_check(url: str, *, timeout: float = 2.0) -> Check:
    """A readiness check that opens and closes an AMQP connection, cached for a few seconds."""
    state = {"at": 0.0, "error": None}
    lock = threading.Lock()

    def check() -> None:
        with lock:
            if time.monotonic() - state["at"] > 3.0:
                params = pika.URLParameters(url)
                params.socket_timeout = timeout
                params.blocked_connection_timeout = timeout
                params.connection_attempts = 1
                try:
                    pika.BlockingConnection(params).close()
                    state["error"] = None
                except Exception as exc:  # any failure means "not ready", reported below
                    state["error"] = f"{type(exc).__name__}: {exc}"
                state["at"] = time.monotonic()
            if state["error"]:
                raise ConnectionError(state["error"])

    return check


def init_health(app: Flask, service: str, checks: dict[str, Check]) -> None:
    @app.get("/healthz")
    def healthz():
        return json_response({"status": "ok", "service": service})

    @app.get("/readyz")
    def readyz():
        results, ready = {}, True
        for name, check in checks.items():
            try:
                check()
                results[name] = {"status": "ok"}
            except Exception as exc:
                ready = False
                results[name] = {"status": "unavailable", "error": str(exc) or type(exc).__name__}
        body = {"status": "ok" if ready else "unavailable", "service": service, "dependencies": results}
        return json_response(body, 200 if ready else 503)
