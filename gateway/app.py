"""The gateway app: routing, authentication, cross-site checks, bounded bodies, identity
forwarding and the streaming proxy.

Production: `gunicorn -c shared/gunicorn_conf.py 'gateway.app:create_app()'` (gthread workers).
Nothing connects at import time or in `create_app`; the revocation poller starts on the first
request of each worker process.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

import requests
from flask import Flask, Response, g, request

from gateway.auth import (
    RevocationCache,
    RevokedToken,
    VerifiedTokens,
    check_token,
    client_address,
    extract_token,
    parse_trusted_proxies,
)
from gateway.csrf import is_cross_site, trusted_origins
from gateway.health import init_health
from gateway.proxy import (
    ClientBodyError,
    RequestBody,
    SizedRequestBody,
    UpstreamBody,
    Upstreams,
    connection_reusable,
    downstream_response_headers,
    upstream_request_headers,
)
from gateway.routes import (
    SERVICE_URL_KEYS,
    Route,
    changes_state,
    is_login_path,
    resolve,
    starts_a_session,
    takes_uploads,
)
from shared.bodies import bound_request_bodies
from shared.config import COMMON_DEFAULTS, load_config
from shared.envelope import json_response
from shared.errors import ApiError, BadRequest, Forbidden, NotFound, ServiceUnavailable, register_error_handlers
from shared.identity import REQUEST_ID_HEADER, Identity, encode_identity
from shared.logs import configure_logging
from shared.metrics import init_metrics
from shared.tokens import DEV_JWT_SECRET, InvalidToken

access_log = logging.getLogger("gnode.access")
log = logging.getLogger("gnode.gateway")

DEFAULTS: dict[str, Any] = {
    # Base URLs of the services; "" = that service is not built / not running (503).
    "AUTH_URL": "",
    "NEO_URL": "",
    "METADATA_URL": "",
    "FILES_URL": "",
    "ACL_URL": "",
    "JWT_SECRET": DEV_JWT_SECRET,
    "INTERNAL_SECRET": COMMON_DEFAULTS["INTERNAL_SECRET"],
    "SESSION_COOKIE": "sessionid",
    "REVOCATION_POLL_SECONDS": 0.3,
    # Proxies in front of the gateway (addresses or CIDRs, comma-separated) whose X-Forwarded-For
    # names the client; from any other peer the header is ignored (gateway/auth.py).
    "TRUSTED_PROXIES": "",
    "UPSTREAM_CONNECT_TIMEOUT": 3.0,
    "UPSTREAM_READ_TIMEOUT": 300.0,
    "STREAM_CHUNK_BYTES": 1024 * 1024,
    # Request bodies: uploads to /datafiles/ and /electrophysiology/ (a datafile, arrays as .npy
    # parts) up to the files service's MAX_UPLOAD_BYTES plus the multipart framing; every other
    # route up to the largest ordinary body a service takes (an odML import, IMPORT_MAX_BYTES).
    "GATEWAY_MAX_UPLOAD_BYTES": 64 * 1024**3 + 1024 * 1024,
    "GATEWAY_MAX_BODY_BYTES": 64 * 1024 * 1024,
    # Origins a browser may send state-changing requests from, besides the host it addressed.
    "PUBLIC_URL": "http://127.0.0.1:8000",
    "TRUSTED_ORIGINS": "",  # comma-separated, e.g. "https://lab.example.org,https://ui.example.org"
}

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_UNLOGGED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class GatewayTimeout(ApiError):
    http_status, message_type, message = 504, "gateway_timeout", "The service did not answer in time."


class BadGateway(ApiError):
    http_status, message_type, message = 502, "bad_gateway", "The service gave an invalid answer."


class CrossSiteRequest(Forbidden):
    message_type = "cross_site_request"
    message = ("This request was sent by another web site with your session cookie; it is refused. "
               "Use the site itself, or a script with `Authorization: Bearer <token>`.")


class InvalidTokenError(ApiError):
    http_status, message_type = 401, "invalid_token"
    message = "The session token is not valid (expired, revoked or malformed); log in again at /account/authenticate/."


@dataclass
class GatewayState:
    revocations: RevocationCache
    upstreams: Upstreams
    verified: VerifiedTokens = field(default_factory=VerifiedTokens)

    def stop(self) -> None:
        self.revocations.stop()


def request_id_from(value: str | None) -> str:
    """The client's request id when it is a sane token, a fresh one otherwise."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def _unavailable(service: str, reason: str | None = None) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The {service} service is not available (not built yet or not running).",
        details={"service": service, **({"reason": reason} if reason else {})},
    )


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask("gateway")
    app.config.update(load_config(DEFAULTS, config))
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    configure_logging("gateway", level=app.config["LOG_LEVEL"], fmt=app.config["LOG_FORMAT"])
    register_error_handlers(app)

    state = GatewayState(
        revocations=RevocationCache(app.config["AUTH_URL"], app.config["REVOCATION_POLL_SECONDS"]),
        upstreams=Upstreams(
            connect_timeout=float(app.config["UPSTREAM_CONNECT_TIMEOUT"]),
            read_timeout=float(app.config["UPSTREAM_READ_TIMEOUT"]),
            chunk_bytes=int(app.config["STREAM_CHUNK_BYTES"]),
        ),
    )
    app.extensions["gateway"] = state

    @app.before_request
    def _begin():
        g.started = time.perf_counter()
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        state.revocations.ensure_started()

    def _route_body_limit() -> int | None:
        route = resolve(request.path)
        return int(app.config["GATEWAY_MAX_UPLOAD_BYTES"]) if route is not None and takes_uploads(route) else None

    bound_request_bodies(app, default_key="GATEWAY_MAX_BODY_BYTES", limit_for=_route_body_limit)
    init_metrics(app, "gateway")

    @app.after_request
    def _finish(response: Response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        if request.path not in _UNLOGGED_PATHS:
            _log_when_sent(response)
        return response

    init_health(app)

    @app.get("/")
    @app.get("/data/")
    def index():
        return json_response(
            {
                "name": "G-Node Data API",
                "message": "Log in at /account/login/ (browser) or POST /account/authenticate/ (API).",
                "links": {"login": "/account/login/", "authenticate": "/account/authenticate/", "health": "/healthz"},
            }
        )

    def proxy(path: str = ""):
        route = resolve(request.path)
        if route is None:
            raise NotFound(f"Nothing is served at {request.path}.")
        g.upstream = route.service
        _refuse_cross_site(route)
        identity = _authenticate(route)
        base_url = app.config[SERVICE_URL_KEYS[route.service]]
        if not base_url:
            raise _unavailable(route.service)
        return _forward(route, base_url, identity)

    app.add_url_rule("/<path:path>", "proxy", proxy, methods=PROXY_METHODS)
    trusted = trusted_origins(app.config["PUBLIC_URL"], app.config["TRUSTED_ORIGINS"])

    def _refuse_cross_site(route: Route) -> None:
        # Only the cookie rides along on forged requests (a Bearer header never does), and a
        # login started by another site would put the browser in the attacker's account.
        source = extract_token(request.headers, request.cookies, app.config["SESSION_COOKIE"])
        by_cookie = source is not None and source.from_cookie
        guarded = (by_cookie and changes_state(request.method, route.upstream_path)) or starts_a_session(
            request.method, route.upstream_path
        )
        if guarded and is_cross_site(request.headers, host=request.host, trusted=trusted,
                                     without_origin=request.method in ("GET", "HEAD")):
            raise CrossSiteRequest(details={"origin": request.headers.get("Origin"),
                                            "sec_fetch_site": request.headers.get("Sec-Fetch-Site")})

    trusted_proxies = parse_trusted_proxies(app.config["TRUSTED_PROXIES"])

    def _authenticate(route: Route) -> Identity:
        client_ip = client_address(request.remote_addr, request.headers.getlist("X-Forwarded-For"), trusted_proxies)
        source = extract_token(request.headers, request.cookies, app.config["SESSION_COOKIE"])
        if source is None:
            return Identity(client_ip=client_ip)
        try:
            session = check_token(source.token, app.config["JWT_SECRET"], state.revocations, state.verified)
        except InvalidToken as exc:
            if is_login_path(route.upstream_path):
                return Identity(client_ip=client_ip)  # a stale cookie must not block logging in
            reason = "revoked" if isinstance(exc, RevokedToken) else "expired" if "expired" in str(exc).lower() else "invalid"
            headers = {}
            if source.from_cookie:
                cookie = app.config["SESSION_COOKIE"]
                headers["Set-Cookie"] = f"{cookie}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
            raise InvalidTokenError(details={"reason": reason}, headers=headers) from None
        g.user = session.username
        return Identity(
            user_id=session.user_id,
            username=session.username,
            session_id=session.session_id,
            client_ip=client_ip,
        )

    def _request_body() -> RequestBody | bytes | None:
        chunk = int(app.config["STREAM_CHUNK_BYTES"])
        length = request.content_length
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if chunked:
            return RequestBody(request.stream, None, chunk)
        if length is None:
            return None
        if length == 0:
            return b""
        return SizedRequestBody(request.stream, length, chunk)

    def _forward(route: Route, base_url: str, identity: Identity) -> Response:
        headers = upstream_request_headers(
            request.headers.items(),
            cookie_name=app.config["SESSION_COOKIE"],
            identity_header=encode_identity(identity, app.config["INTERNAL_SECRET"]),
            request_id=g.request_id,
            client_addr=request.remote_addr,
            proto=request.scheme,
            host=request.host,
            data_prefix=route.data_prefix,
        )
        request_body = _request_body()
        try:
            upstream = state.upstreams.send(
                request.method, base_url, route.upstream_path, request.query_string, headers, request_body
            )
        except ClientBodyError as exc:
            raise BadRequest(
                "The request body ended before it was complete.", message_type="incomplete_body", details=str(exc)
            ) from None
        except requests.Timeout:
            raise GatewayTimeout(f"The {route.service} service did not answer in time.", details={"service": route.service}) from None
        except requests.ConnectionError as exc:
            log.warning("cannot reach the %s service: %s", route.service, exc, extra={"upstream": route.service})
            raise _unavailable(route.service, "connection failed") from None
        except requests.RequestException as exc:
            log.warning("bad answer from the %s service: %s", route.service, exc, extra={"upstream": route.service})
            raise BadGateway(f"The {route.service} service gave an invalid answer.") from None
        g.upstream_ms = round((time.perf_counter() - g.started) * 1000, 2)
        status = upstream.status_code
        expect_body = request.method != "HEAD" and status not in (204, 304) and not 100 <= status < 200
        body = UpstreamBody(
            upstream, int(app.config["STREAM_CHUNK_BYTES"]), expect_body=expect_body, label=route.service,
            reusable=connection_reusable(request_body, status),
        )
        try:
            response = Response(body, status=status)
            response.headers = downstream_response_headers(
                upstream.raw.headers.items(), upstream_base=base_url.rstrip("/"), data_prefix=route.data_prefix
            )
        except Exception:
            body.complete = False
            body.close()  # never leave a half-read connection in the pool
            raise
        return response

    return app


def _log_when_sent(response: Response) -> None:
    """One access line per request, written when the body has been sent (or the client left)."""
    record = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "upstream": g.get("upstream"),
        "user": g.get("user"),
        "request_id": g.get("request_id"),
        "upstream_ms": g.get("upstream_ms"),
    }
    started = g.get("started", time.perf_counter())
    body = response.response if isinstance(response.response, UpstreamBody) else None

    def _write() -> None:
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
        if body is not None:
            record["bytes_out"] = body.bytes_sent
            if body.expect_body and not body.complete:
                record["incomplete"] = True
        elif response.content_length is not None:
            record["bytes_out"] = response.content_length
        access_log.info("%s %s %s", record["method"], record["path"], record["status"], extra=record)

    response.call_on_close(_write)
