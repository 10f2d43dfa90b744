"""Request bodies as a WSGI server hands them to an app, for Flask test clients.

gunicorn gives a chunked body (no Content-Length) as an input stream that ends where the body ends
and sets `wsgi.input_terminated`; `send_chunked` builds the same environ. `EndlessBody` never ends
and counts what was asked of it; `UntouchableBody` fails the test if anything reads it.
"""
from __future__ import annotations

import io

from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

MiB = 1024 * 1024


class EndlessBody:
    """A chunked body that never ends (of `piece` bytes repeated); `served` counts what was read."""

    def __init__(self, piece: bytes = b"x"):
        self.piece = piece
        self.served = 0

    def read(self, size=-1):
        assert size is not None and size >= 0, "an unbounded read of an endless body"
        self.served += size
        return (self.piece * (size // len(self.piece) + 1))[:size]

    def readline(self, size=-1):
        return self.read(size)


class UntouchableBody:
    """A body that must never be read (its Content-Length alone must be refused)."""

    def read(self, size=-1):
        raise AssertionError("the body was read although its declared length is over the limit")

    readline = read


class EndlessMultipart(EndlessBody):
    """A multipart body whose file part never ends: the fields, then the part's headers, then bytes."""

    def __init__(self, boundary: str, file_field: str, fields: dict[str, str] | None = None):
        super().__init__()
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in (fields or {}).items()
        )
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="big.bin"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode()
        self.head = io.BytesIO(head)

    def read(self, size=-1):
        data = self.head.read(size)
        return data if data else super().read(size)


def multipart(fields: dict) -> tuple[bytes, str]:
    """(body, content type) of a multipart form; file values are (bytes, filename)."""
    values = {name: FileStorage(io.BytesIO(value[0]), filename=value[1]) if isinstance(value, tuple) else value
              for name, value in fields.items()}
    boundary, body = encode_multipart(values)
    return body, f"multipart/form-data; boundary={boundary}"


def send_chunked(client, method: str, path: str, stream, *, content_type: str = "application/json",
                 headers: dict | None = None, **kwargs):
    """`stream` (bytes or a file-like object) as a chunked body: no Content-Length, the input terminated."""
    if isinstance(stream, bytes):
        stream = io.BytesIO(stream)
    # CONTENT_TYPE as an override: given as a header, a multipart type makes the test client encode a form.
    return client.open(path, method=method, headers={**(headers or {}), "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input": stream, "wsgi.input_terminated": True,
                                          "CONTENT_TYPE": content_type}, **kwargs)


def send_declared(client, method: str, path: str, length: int, *, content_type: str = "application/json",
                  headers: dict | None = None, **kwargs):
    """A request that declares `length` bytes of body and must be answered without reading any."""
    return client.open(path, method=method, headers=headers or {},
                       environ_overrides={"wsgi.input": UntouchableBody(), "CONTENT_LENGTH": str(length),
                                          "CONTENT_TYPE": content_type}, **kwargs)


def assert_payload_too_large(response, limit: int | None = None) -> None:
    assert response.status_code == 413, response.get_data(as_text=True)
    body = response.get_json()
    assert body["message_type"] == "payload_too_large" and body["message"], body
    if limit is not None:
        assert body["details"] == {"limit_bytes": limit}, body
