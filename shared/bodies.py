"""Request bodies bounded while they are read (DESIGN.md section 8), chunked ones included.

`bound_request_bodies(app, default_key=..., limit_for=...)` wraps the WSGI input of every request
in a `LimitedInput`, so that whatever reads the body (`request.get_data`, the form parser, a
streaming upload, the gateway's proxy) gets a 413 `BodyTooLarge` as soon as it reads past the
limit, whether or not the client declared a Content-Length. A declared Content-Length over the
limit is refused before anything is read. `limit_for()` chooses the limit of the current request
once it is routed; until then, and when it answers None, `app.config[default_key]` applies.

Services get this from `shared.app.build_service_app` with one limit for every route
(`MAX_BODY_BYTES` unless the service names another key) and raise it for the routes that take
uploads with `allow_large_bodies`.

A refused body is left unread, so the connection cannot carry another request: under gunicorn every
413 says `Connection: close` (see `remember_server_request`), so that clients, and the gateway's
connection pool, open a new connection rather than send the next request into a closing one.
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from shared.envelope import json_response
from shared.errors import BadRequest, PayloadTooLarge

MiB = 1024 * 1024
# Room for the multipart framing and the small form fields that travel with an uploaded file.
MULTIPART_MARGIN = MiB
_INPUT_KEY = "gnode.limited_input"
# Reading a body of unknown size in pieces this large keeps the number of reads small.
_READ_ALL_PIECE = 256 * 1024


_served = threading.local()


def remember_server_request(request_of_the_server) -> None:
    """gunicorn's `pre_request` hook (shared/gunicorn_conf.py): the request this thread serves.

    gunicorn decides `Connection: keep-alive` or `close` itself and ignores the header from the
    app; `force_close()` on its request object is the way to ask for `close`."""
    _served.request = request_of_the_server


def _close_the_connection_after_answering() -> None:
    server_request = getattr(_served, "request", None)
    if server_request is not None and hasattr(server_request, "force_close"):
        server_request.force_close()
    _served.request = None


class BodyTooLarge(PayloadTooLarge):
    def __init__(self, limit: int):
        super().__init__(
            f"The request body is larger than the {limit} bytes allowed here.", details={"limit_bytes": limit}
        )


class UnreadableBody(BadRequest):
    """The server could not deliver the body: the client went away or sent broken chunked framing."""

    message_type = "incomplete_body"
    message = "The request body could not be read to its end."


class LimitedInput(io.RawIOBase):
    """A WSGI input stream that raises `BodyTooLarge` once more than `limit` bytes were read.

    It never asks the server for more than one byte past the limit, so an endless chunked body
    costs at most `limit + 1` bytes. The limit may be raised before the first read (once the
    request is routed). Errors of the server's own stream become `UnreadableBody` (400).
    """

    def __init__(self, stream, limit: int):
        super().__init__()
        self._stream = stream
        self.limit = limit
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def _allowance(self, size: int) -> int:
        return min(size, self.limit + 1 - self.bytes_read)

    def _count(self, data: bytes) -> bytes:
        self.bytes_read += len(data)
        if self.bytes_read > self.limit:
            raise BodyTooLarge(self.limit)
        return data

    def _server_read(self, method, size: int) -> bytes:
        try:
            return method(size)
        except Exception as exc:
            raise UnreadableBody(details=f"{type(exc).__name__}: {exc}") from exc

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        return self._count(self._server_read(self._stream.read, max(1, self._allowance(size))))

    def readall(self) -> bytes:
        pieces = []
        while piece := self.read(_READ_ALL_PIECE):
            pieces.append(piece)
        return b"".join(pieces)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        wanted = self.limit + 1 if size is None or size < 0 else size
        return self._count(self._server_read(self._stream.readline, max(1, self._allowance(wanted))))


def request_input() -> LimitedInput | None:
    """The bounded input of the current request (None outside `bound_request_bodies`)."""
    return request.environ.get(_INPUT_KEY)


def bound_request_bodies(app: Flask, *, default_key: str, limit_for: Callable[[], int | None] = lambda: None) -> None:
    """Bound every request body of `app` by `app.config[default_key]`, or by what `limit_for()`
    answers (None: the default) once the request is routed."""
    int(app.config[default_key])  # a service without its limit fails at start-up, not on a request
    inner = app.wsgi_app

    def bounded_wsgi_app(environ, start_response):
        limited = LimitedInput(environ["wsgi.input"], int(app.config[default_key]))
        environ["wsgi.input"] = environ[_INPUT_KEY] = limited
        return inner(environ, start_response)

    app.wsgi_app = bounded_wsgi_app  # type: ignore[method-assign]

    @app.before_request
    def _apply_the_route_limit():
        limit = limit_for()
        limit = int(current_app.config[default_key]) if limit is None else limit
        limited = request_input()
        if limited is not None:
            limited.limit = limit
        if (request.content_length or 0) > limit:
            raise BodyTooLarge(limit)

    @app.after_request
    def _close_after_refusing_a_body(response):
        if response.status_code == 413:  # whoever refused it, the rest of the body is still on its way
            _close_the_connection_after_answering()
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        # werkzeug's own limits (form fields held in memory) answer in the same words as ours.
        error = PayloadTooLarge()
        return json_response(error.to_dict(), error.http_status)


@dataclass(frozen=True)
class LargeBodies:
    """A route (Flask endpoint) whose bodies may be larger than the service's default limit."""

    endpoint: str
    limit_key: str  # the configuration key holding the limit
    media_types: frozenset[str] = frozenset()  # only bodies of these media types; empty means any
    margin: int = 0  # bytes allowed on top of the configured limit (multipart framing)

    def applies(self, media_type: str) -> bool:
        return not self.media_types or media_type in self.media_types

    def limit(self, config) -> int:
        return int(config[self.limit_key]) + self.margin


def bound_service_bodies(app: Flask, *, default_key: str) -> None:
    """Every route of a service gets `app.config[default_key]`, except those `allow_large_bodies` names."""
    large: dict[str, list[LargeBodies]] = {}
    app.extensions["large_bodies"] = large

    def limit_for() -> int | None:
        for route in large.get(request.endpoint or "", ()):
            if route.applies(request.mimetype):
                return route.limit(current_app.config)
        return None

    bound_request_bodies(app, default_key=default_key, limit_for=limit_for)


def allow_large_bodies(app: Flask, routes: Iterable[LargeBodies]) -> None:
    """Raise the body limit of some routes; call it after the blueprints are registered."""
    large: dict[str, list[LargeBodies]] = app.extensions["large_bodies"]
    for route in routes:
        if route.endpoint not in app.view_functions:
            raise ValueError(f"allow_large_bodies: no endpoint {route.endpoint!r} in {app.name}")
        app.config[route.limit_key]  # a missing key fails at start-up, not on the first upload
        large.setdefault(route.endpoint, []).append(route)
