"""The gateway's `/healthz` (the whole system as seen from here) and `/readyz` (the gateway itself)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Mapping

import requests
from flask import Flask

from gateway.routes import SERVICE_URL_KEYS
from shared.envelope import json_response

CHECK_TIMEOUT_SECONDS = 2.0


def check_service(url: str, timeout: float = CHECK_TIMEOUT_SECONDS) -> dict[str, Any]:
    """One service's readiness as reported by its `/readyz`."""
    try:
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(url.rstrip("/") + "/readyz", timeout=(timeout, timeout))
    except requests.Timeout:
        return {"status": "unreachable", "url": url, "error": f"no answer within {timeout:g} s"}
    except requests.RequestException as exc:
        return {"status": "unreachable", "url": url, "error": f"{type(exc).__name__}: {exc}"}
    result: dict[str, Any] = {"status": "ok" if response.status_code == 200 else "unavailable", "url": url}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        result["dependencies"] = body.get("dependencies", {})
    if response.status_code != 200:
        result["http_status"] = response.status_code
    return result


def system_health(config: Mapping[str, Any], timeout: float = CHECK_TIMEOUT_SECONDS) -> tuple[dict[str, Any], bool]:
    """Every service's state, the configured ones queried concurrently; (report, all ready)."""
    services: dict[str, Any] = {}
    configured = {name: config.get(key) or "" for name, key in SERVICE_URL_KEYS.items()}
    to_check = {name: url for name, url in configured.items() if url}
    if to_check:
        with ThreadPoolExecutor(max_workers=len(to_check), thread_name_prefix="gateway-health") as pool:
            futures = {name: pool.submit(check_service, url, timeout) for name, url in to_check.items()}
            wait(futures.values(), timeout=timeout * 2 + 1)
            for name, future in futures.items():
                if future.done() and future.exception() is None:
                    services[name] = future.result()
                else:
                    services[name] = {"status": "unreachable", "url": to_check[name], "error": "health check failed"}
    for name, url in configured.items():
        if not url:
            services[name] = {"status": "not_built"}
    ready = all(services[name]["status"] == "ok" for name in to_check)
    report = {
        "status": "ok" if ready else "degraded",
        "service": "gateway",
        "services": {name: services[name] for name in SERVICE_URL_KEYS},
    }
    return report, ready


def init_health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        report, ready = system_health(app.config)
        return json_response(report, 200 if ready else 503)

    @app.get("/readyz")
    def readyz():
        return json_response({"status": "ok", "service": "gateway", "dependencies": {}})
