"""Fake upstream services for the gateway tests, and servers to run them.

`FakeService` is a WSGI app standing in for one service. The tests run it in-process (werkzeug's
threaded server, which closes every connection) when they need to steer it, and under gunicorn
(keep-alive) to check that the gateway reuses its upstream connections.
"""
from __future__ import annotations

import gzip
import hashlib
import random
import threading
import time
from typing import Any, Iterator

import orjson
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from shared.identity import IDENTITY_HEADER, InvalidIdentity, decode_identity
from stack.procs import free_port

INTERNAL_SECRET = "gw-test-internal-secret-0123456789abcdef"
JWT_SECRET = "gw-test-jwt-secret-0123456789abcdef-xyz"
MiB = 1024 * 1024

_BLOCK = random.Random(20240601).randbytes(MiB)


def pattern_chunks(size: int) -> Iterator[bytes]:
    """`size` deterministic bytes, yielded in 1 MiB pieces (never the whole body at once)."""
    sent, n = 0, 0
    while sent < size:
        piece = _BLOCK[: min(MiB, size - sent)]
        # vary the pieces so that a dropped or repeated piece changes the hash
        piece = n.to_bytes(8, "big") + piece[8:] if len(piece) >= 8 else piece
        sent += len(piece)
        n += 1
        yield piece


def pattern_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for piece in pattern_chunks(size):
        digest.update(piece)
    return digest.hexdigest()


def _json(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json", headers=headers)


class FakeService:
    """A WSGI app standing in for one service: it echoes what it received, streams big bodies,
    answers with headers to pass through, and (as auth) serves the revocation list."""

    def __init__(self, name: str):
        self.name = name
        self.ready = True
        self.revoked: list[dict[str, Any]] = []
        self.revocation_polls = 0
        self.down = False  # the revocation endpoint answers 503 while True
        self.base_url = ""

    def revoke(self, jti: str, exp: int) -> None:
        """Append to the revocation log, numbered as the auth service numbers it."""
        self.revoked.append({"seq": len(self.revoked) + 1, "jti": jti, "exp": exp})

    def __call__(self, environ, start_response):
        return self.dispatch(Request(environ))(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path == "/readyz":
            deps = {"mongodb": {"status": "ok"}, "rabbitmq": {"status": "ok"}}
            return _json({"status": "ok" if self.ready else "unavailable", "service": self.name, "dependencies": deps},
                         200 if self.ready else 503)
        if path == "/internal/revocations/":
            self.revocation_polls += 1
            if self.down:
                return _json({"message": "down", "message_type": "service_unavailable"}, 503)
            after = int(request.args.get("after") or 0)
            entries = [e for e in self.revoked if e["seq"] > after]
            return _json({"revoked": entries, "last": entries[-1]["seq"] if entries else min(after, len(self.revoked)),
                          "more": False})
        if "/upload" in path:
            return self.upload(request)
        if "/big" in path:
            return self.download(request)
        if "/headers" in path:
            return self.with_headers(request)
        if "/broken" in path:
            return self.broken(request)
        if "/gzip" in path:
            compressed = gzip.compress(b'{"compressed": true}' * 100)
            return Response(compressed, mimetype="application/json", headers={"Content-Encoding": "gzip"})
        if "/slow" in path:
            time.sleep(float(request.args.get("seconds", "2")))
            return _json({"slow": True})
        return self.echo(request)

    def echo(self, request: Request) -> Response:
        body = request.get_data()
        header_value = request.headers.get(IDENTITY_HEADER)
        identity: Any = None
        if header_value:
            try:
                identity = decode_identity(header_value, INTERNAL_SECRET).claims()
            except InvalidIdentity as exc:
                identity = {"error": str(exc)}
        payload = {
            "service": self.name,
            "method": request.method,
            "path": request.path,
            "raw_uri": request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI"),
            "remote_port": request.environ.get("REMOTE_PORT"),
            "query_string": request.query_string.decode("latin-1"),
            "headers": [[k, v] for k, v in request.headers.items()],
            "identity_header": header_value,
            "identity": identity,
            "cookies": dict(request.cookies),
            "body_length": len(body),
            "body": body.decode("utf-8", "replace"),
        }
        return _json(payload, headers={"X-Upstream": self.name})

    def upload(self, request: Request) -> Response:
        digest, length = hashlib.sha256(), 0
        while True:
            piece = request.stream.read(256 * 1024)
            if not piece:
                break
            digest.update(piece)
            length += len(piece)
        return _json(
            {
                "sha256": digest.hexdigest(),
                "length": length,
                "content_length": request.environ.get("CONTENT_LENGTH"),
                "transfer_encoding": request.environ.get("HTTP_TRANSFER_ENCODING"),
            },
            201,
        )

    def download(self, request: Request) -> Response:
        size = int(request.args.get("size", str(MiB)))
        chunked = request.args.get("chunked") == "1"
        headers = {"Content-Disposition": 'attachment; filename="big.bin"'}
        if not chunked:
            headers["Content-Length"] = str(size)
        response = Response(pattern_chunks(size), mimetype="application/octet-stream", headers=headers)
        return response

    def broken(self, request: Request) -> Response:
        """A body that stops after 1 MiB of the 4 MiB announced (the service died mid-answer)."""

        def pieces():
            yield from pattern_chunks(MiB)
            raise ConnectionAbortedError("the service died")

        headers = {} if request.args.get("chunked") == "1" else {"Content-Length": str(4 * MiB)}
        return Response(pieces(), mimetype="application/octet-stream", headers=headers)

    def with_headers(self, request: Request) -> Response:
        etag = '"v1-abc"'
        status = int(request.args.get("status", "200"))
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        if_match = request.headers.get("If-Match")
        if if_match and if_match != etag:
            return _json({"message": "The resource has changed.", "message_type": "precondition_failed"}, 412)
        content = b"0123456789" * 10
        headers = [
            ("ETag", etag),
            ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("Content-Disposition", 'attachment; filename="data.h5"'),
            ("Accept-Ranges", "bytes"),
            ("Set-Cookie", "first=1; Path=/; HttpOnly"),
            ("Set-Cookie", "second=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT"),
            ("X-Custom", "kept"),
            ("Keep-Alive", "timeout=99"),
        ]
        if request.args.get("location"):
            headers.append(("Location", self.base_url + "/datafiles/9/"))
        range_header = request.headers.get("Range")
        if range_header and range_header.startswith("bytes="):
            first, _, last = range_header[6:].partition("-")
            first, last = int(first), int(last or len(content) - 1)
            headers.append(("Content-Range", f"bytes {first}-{last}/{len(content)}"))
            return Response(content[first : last + 1], status=206, headers=headers, mimetype="application/octet-stream")
        return Response(content, status=status, headers=headers, mimetype="application/octet-stream")


class ServerThread:
    """A threaded werkzeug server on a free port, in a daemon thread."""

    def __init__(self, app):
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
