"""The streaming reverse proxy: headers filtered both ways, bodies streamed in constant memory.

Request bodies are read from the WSGI input in STREAM_CHUNK_BYTES pieces and sent upstream as they
arrive (with the client's Content-Length when it sent one, chunked otherwise); the WSGI input is
bounded (shared/bodies.py), and a body refused mid-stream aborts the upstream request, whose
connection urllib3 then closes instead of pooling it. Response bodies are read with
`raw.stream(..., decode_content=False)` and handed to the WSGI server piece by piece.
One `requests.Session` (with its connection pool) per thread.
"""
from __future__ import annotations

import http.cookiejar
import logging
import threading
import time
from typing import Iterable, Iterator, Mapping

import requests
import urllib3
from requests.adapters import HTTPAdapter
from werkzeug.datastructures import Headers

from gateway.routes import quote_path
from shared.errors import ApiError
from shared.identity import IDENTITY_HEADER, REQUEST_ID_HEADER

log = logging.getLogger("gnode.gateway.proxy")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers a client may never pass to a service: identity claims, the public token, and
# what the gateway sets itself.
_DROP_REQUEST = HOP_BY_HOP | frozenset(
    {
        "host",
        "content-length",
        "expect",
        "authorization",
        "x-forwarded-user",
        "x-remote-user",
        "remote-user",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-real-ip",
        "forwarded",
        REQUEST_ID_HEADER.lower(),
    }
)
_DROP_REQUEST_PREFIXES = ("x-gnode-",)
# Response headers the gateway's own server sets, or that must not leak from a service.
_DROP_RESPONSE = HOP_BY_HOP | frozenset({"date", "server", REQUEST_ID_HEADER.lower(), IDENTITY_HEADER.lower()})
_NO_BODY_STATUSES = frozenset({204, 304})
IDEMPOTENT_WITHOUT_BODY = frozenset({"GET", "HEAD", "OPTIONS"})
# Below the services' keep-alive (shared/gunicorn_conf.py, 5 s), with room for a slow answer.
UPSTREAM_IDLE_SECONDS = 2.5


class ClientBodyError(Exception):
    """The client's request body ended early or could not be read."""


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(token.strip().lower() for token in value.split(",") if token.strip())
    return tokens


def strip_cookie(cookie_header: str, cookie_name: str) -> str:
    """The Cookie header without the session cookie (services never see public tokens)."""
    kept = []
    for part in cookie_header.split(";"):
        name = part.split("=", 1)[0].strip()
        if name and name != cookie_name:
            kept.append(part.strip())
    return "; ".join(kept)


def upstream_request_headers(
    client_headers: Iterable[tuple[str, str]],
    *,
    cookie_name: str,
    identity_header: str,
    request_id: str,
    client_addr: str | None,
    proto: str,
    host: str | None,
    data_prefix: bool,
) -> dict[str, str]:
    """The headers sent upstream: the client's end-to-end headers minus everything identity-related,
    plus the gateway's identity, request id and X-Forwarded-* headers."""
    client_headers = list(client_headers)
    connection_tokens = _connection_tokens(client_headers)
    out: dict[str, str] = {}
    forwarded_for: list[str] = []
    for name, value in client_headers:
        lower = name.lower()
        if lower == "x-forwarded-for":
            forwarded_for.append(value.strip())
            continue
        if lower in _DROP_REQUEST or lower in connection_tokens or lower.startswith(_DROP_REQUEST_PREFIXES):
            continue
        if lower == "cookie":
            value = strip_cookie(value, cookie_name)
            if not value:
                continue
        if name in out:  # WSGI already folds repeated headers; be safe anyway
            out[name] = out[name] + ", " + value
        else:
            out[name] = value
    if client_addr:
        forwarded_for.append(client_addr)
    if forwarded_for:
        out["X-Forwarded-For"] = ", ".join(v for v in forwarded_for if v)
    out["X-Forwarded-Proto"] = proto
    if host:
        out["X-Forwarded-Host"] = host
    if data_prefix:
        out["X-Forwarded-Prefix"] = "/data"
    out[REQUEST_ID_HEADER] = request_id
    out[IDENTITY_HEADER] = identity_header
    return out


def downstream_response_headers(
    upstream_headers: Iterable[tuple[str, str]],
    *,
    upstream_base: str,
    data_prefix: bool,
) -> Headers:
    """The headers returned to the client: every end-to-end header (repeated ones kept apart)."""
    upstream_headers = list(upstream_headers)
    connection_tokens = _connection_tokens(upstream_headers)
    chunked = any(
        name.lower() == "transfer-encoding" and "chunked" in value.lower() for name, value in upstream_headers
    )
    headers = Headers()
    for name, value in upstream_headers:
        lower = name.lower()
        if lower in _DROP_RESPONSE or lower in connection_tokens:
            continue
        if lower == "content-length" and chunked:
            continue
        if lower in ("location", "content-location") and upstream_base and value.startswith(upstream_base):
            value = ("/data" if data_prefix else "") + (value[len(upstream_base):] or "/")
        headers.add(name, value)
    return headers


class RequestBody:
    """The client's body, read from the WSGI input in chunks; sized when Content-Length is known,
    so the upstream sees a plain (not chunked) body."""

    def __init__(self, stream, length: int | None, chunk_bytes: int):
        self.stream = stream
        self.length = length
        self.chunk_bytes = chunk_bytes
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        remaining = self.length
        while remaining is None or remaining > 0:
            size = self.chunk_bytes if remaining is None else min(self.chunk_bytes, remaining)
            try:
                data = self.stream.read(size)
            except ApiError:
                # The body guard's answer (413 past the limit, 400 for a body the server could not
                # read): raised through the upstream request, which is then closed, never reused.
                raise
            except Exception as exc:  # client went away mid-upload
                raise ClientBodyError(f"{type(exc).__name__}: {exc}") from None
            if not data:
                break
            self.bytes_read += len(data)
            if remaining is not None:
                remaining -= len(data)
            yield data
        if remaining:
            raise ClientBodyError(f"the request body ended {remaining} bytes before its Content-Length")


class SizedRequestBody(RequestBody):
    def __len__(self) -> int:
        return self.length or 0


def connection_reusable(request_body: RequestBody | bytes | None, status: int) -> bool:
    """Whether the upstream connection may carry another request after this answer.

    A service that refuses a request (4xx, 5xx) may not have read its body: gunicorn then closes
    the connection right after answering, and the next request sent on it would fail."""
    return not (isinstance(request_body, RequestBody) and status >= 400)


class UpstreamBody:
    """The upstream response body as a WSGI iterable; `close()` returns or discards the connection."""

    def __init__(self, response: requests.Response, chunk_bytes: int, *, expect_body: bool, label: str,
                 reusable: bool = True):
        self.response = response
        self.chunk_bytes = chunk_bytes
        self.expect_body = expect_body
        self.label = label
        self.reusable = reusable
        # urllib3 hands the connection back to the pool as soon as the body has been read: keep
        # hold of it to close it there when it must not be reused.
        self._connection = getattr(response.raw, "connection", None)
        self.bytes_sent = 0
        self.complete = not expect_body
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        if not self.expect_body:
            return
        try:
            for data in self.response.raw.stream(self.chunk_bytes, decode_content=False):
                if data:
                    self.bytes_sent += len(data)
                    yield data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # Headers are out already: abort the client connection rather than end the body cleanly.
            log.warning(
                "upstream body broken after %d bytes: %s",
                self.bytes_sent,
                f"{type(exc).__name__}: {exc}",
                extra={"upstream": self.label},
            )
            raise
        self.complete = True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        raw = self.response.raw
        try:
            if not self.expect_body:
                # 204/304/HEAD: http.client only marks such a response finished once it is read,
                # and a connection with an unfinished response fails the next request sent on it.
                raw.drain_conn()
            elif not self.complete:
                raw.close()  # unread bytes on the wire: this connection cannot be reused
            raw.release_conn()
            if not self.reusable and self._connection is not None:
                self._connection.close()  # the pool reconnects it before its next request
        except Exception:  # closing must never fail a response
            log.debug("error releasing an upstream connection", exc_info=True)


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A proxy must never remember one client's cookies and replay them for another."""

    def set_ok(self, cookie, request) -> bool:
        return False

    def return_ok(self, cookie, request) -> bool:
        return False


class Upstreams:
    """Per-thread `requests.Session`s with a small connection pool per upstream host.

    Requests are prepared explicitly and handed to the session's adapter: no cookie jar, no
    environment settings, no redirects, no default headers; just the pooled connection.
    """

    def __init__(self, *, connect_timeout: float, read_timeout: float, chunk_bytes: int,
                 idle_seconds: float = UPSTREAM_IDLE_SECONDS):
        self.timeout = (connect_timeout, read_timeout)
        self.chunk_bytes = chunk_bytes
        self.idle_seconds = idle_seconds
        self._local = threading.local()

    def _fresh_if_idle(self, session: requests.Session, base_url: str) -> None:
        """Drop this thread's pooled connections to `base_url` once they have been idle long enough
        that the upstream may be closing them (gunicorn's keep-alive is 5 s): a request with a body
        sent into a connection the server is closing fails, and cannot be retried safely."""
        now = time.monotonic()
        last_used = getattr(self._local, "last_used", None)
        if last_used is None:
            last_used = self._local.last_used = {}
        if now - last_used.get(base_url, now) > self.idle_seconds:
            adapter = session.get_adapter(base_url)
            adapter.poolmanager.clear()
        last_used[base_url] = now

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or .netrc from the environment
            session.headers.clear()  # only what the client sent (plus what we add)
            session.cookies.set_policy(_NoCookies())
            # No urllib3 retries (read timeouts must surface as timeouts); `send` retries once itself.
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=4)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def send(
        self,
        method: str,
        base_url: str,
        path: str,
        query_string: bytes,
        headers: Mapping[str, str],
        body: RequestBody | bytes | None,
    ) -> requests.Response:
        url = base_url.rstrip("/") + quote_path(path)
        if query_string:
            url += "?" + query_string.decode("latin-1")
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers=dict(headers), data=body)
        session = self.session()
        self._fresh_if_idle(session, base_url)
        adapter = session.get_adapter(url)
        attempts = 2 if method in IDEMPOTENT_WITHOUT_BODY and body is None else 1
        for attempt in range(attempts):
            try:
                return adapter.send(prepared, stream=True, timeout=self.timeout, verify=True, proxies={})
            except requests.ConnectionError as exc:
                # A pooled keep-alive connection the upstream closed meanwhile: retry once when safe.
                if attempt + 1 >= attempts or isinstance(exc, requests.Timeout):
                    raise
        raise AssertionError("unreachable")
