"""The request body guard (shared/bodies.py): bounded while read, chunked or not; no I/O."""
from __future__ import annotations

import io

import pytest
from flask import Flask, request

from shared.bodies import (
    BodyTooLarge,
    LargeBodies,
    LimitedInput,
    UnreadableBody,
    allow_large_bodies,
    bound_service_bodies,
    remember_server_request,
)
from shared.errors import register_error_handlers
from tests.request_bodies import EndlessBody, assert_payload_too_large, send_chunked, send_declared

LIMIT = 1000


class BrokenStream:
    """A client that went away after a few bytes (gunicorn raises from its own stream then)."""

    def __init__(self):
        self.calls = 0

    def read(self, size=-1):
        self.calls += 1
        if self.calls > 1:
            raise OSError("NoMoreData")
        return b"{"


def test_reads_up_to_the_limit_and_no_further():
    body = LimitedInput(io.BytesIO(b"a" * LIMIT), LIMIT)
    assert body.read() == b"a" * LIMIT
    assert body.read(10) == b""

    endless = EndlessBody()
    body = LimitedInput(endless, LIMIT)
    assert body.read(600) == b"x" * 600
    with pytest.raises(BodyTooLarge) as raised:
        body.read(600)
    assert endless.served == LIMIT + 1  # never asked the server for more than one byte past the limit
    assert raised.value.http_status == 413 and raised.value.message_type == "payload_too_large"
    assert raised.value.details == {"limit_bytes": LIMIT}


@pytest.mark.parametrize("how", ["read_all", "read_none", "readinto", "readline", "iterate"])
def test_every_way_of_reading_is_bounded(how):
    endless = EndlessBody()
    body = LimitedInput(endless, LIMIT)
    with pytest.raises(BodyTooLarge):
        if how == "read_all":
            body.read()
        elif how == "read_none":
            body.read(None)
        elif how == "readinto":
            buffer = bytearray(400)
            while body.readinto(buffer):
                pass
        elif how == "readline":
            body.readline()
        else:
            for _ in body:
                pass
    assert endless.served <= LIMIT + 1


def test_server_stream_errors_become_a_400():
    body = LimitedInput(BrokenStream(), LIMIT)
    assert body.read(1) == b"{"
    with pytest.raises(UnreadableBody) as raised:
        body.read(10)
    assert raised.value.http_status == 400 and raised.value.message_type == "incomplete_body"


def _service(**config) -> Flask:
    app = Flask("svc")
    app.config.update({"MAX_BODY_BYTES": LIMIT, "UPLOAD_BYTES": 10 * LIMIT, **config})
    register_error_handlers(app)
    bound_service_bodies(app, default_key="MAX_BODY_BYTES")

    @app.post("/json/")
    def json_route():
        return {"length": len(request.get_data())}

    @app.post("/form/")
    def form_route():
        return {"fields": len(request.form)}

    @app.post("/upload/")
    def upload():
        length = 0
        while piece := request.stream.read(256):
            length += len(piece)
        return {"length": length}

    allow_large_bodies(app, [LargeBodies("upload", "UPLOAD_BYTES", media_types=frozenset({"application/octet-stream"}))])
    return app


def test_a_chunked_body_over_the_limit_is_413_json():
    client = _service().test_client()
    endless = EndlessBody()
    assert_payload_too_large(send_chunked(client, "POST", "/json/", endless), LIMIT)
    assert endless.served <= LIMIT + 1
    response = send_chunked(client, "POST", "/form/", EndlessBody(), content_type="application/x-www-form-urlencoded")
    assert_payload_too_large(response, LIMIT)
    # within the limit, chunked bodies are read as usual
    assert send_chunked(client, "POST", "/json/", b"y" * LIMIT).get_json() == {"length": LIMIT}


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    client = _service().test_client()
    assert_payload_too_large(send_declared(client, "POST", "/json/", LIMIT + 1), LIMIT)
    # also where nothing is routed: the default limit
    assert_payload_too_large(send_declared(client, "POST", "/nowhere/", 10**12), LIMIT)


def test_routes_allowed_large_bodies_get_their_own_limit_for_their_media_types():
    client = _service().test_client()
    octets = "application/octet-stream"
    response = send_chunked(client, "POST", "/upload/", b"z" * (5 * LIMIT), content_type=octets)
    assert response.status_code == 200 and response.get_json() == {"length": 5 * LIMIT}
    assert_payload_too_large(send_chunked(client, "POST", "/upload/", EndlessBody(), content_type=octets), 10 * LIMIT)
    assert_payload_too_large(send_declared(client, "POST", "/upload/", 10 * LIMIT + 1, content_type=octets), 10 * LIMIT)
    # another media type on the same route: the default limit
    response = send_chunked(client, "POST", "/upload/", b"z" * (2 * LIMIT), content_type="text/plain")
    assert_payload_too_large(response, LIMIT)


def test_a_refused_body_closes_the_connection_under_gunicorn():
    class ServerRequest:  # what gunicorn's pre_request hook hands over
        closed = False

        def force_close(self):
            self.closed = True

    client = _service().test_client()
    accepted, refused = ServerRequest(), ServerRequest()
    remember_server_request(accepted)
    assert send_chunked(client, "POST", "/json/", b"{}").status_code == 200
    remember_server_request(refused)
    assert send_chunked(client, "POST", "/json/", EndlessBody()).status_code == 413
    assert refused.closed and not accepted.closed


def test_a_body_cut_short_is_a_400_not_a_500():
    client = _service().test_client()
    response = send_chunked(client, "POST", "/json/", BrokenStream())
    assert response.status_code == 400 and response.get_json()["message_type"] == "incomplete_body"


def test_werkzeug_form_limits_answer_as_payload_too_large():
    client = _service(MAX_FORM_MEMORY_SIZE=10).test_client()
    assert_payload_too_large(client.post("/form/", data={"field": "v" * 100}, content_type="multipart/form-data"))


def test_misnamed_routes_and_missing_limits_fail_at_start_up():
    app = _service()
    with pytest.raises(ValueError, match="no endpoint"):
        allow_large_bodies(app, [LargeBodies("no_such_view", "UPLOAD_BYTES")])
    with pytest.raises(KeyError):
        allow_large_bodies(app, [LargeBodies("upload", "NO_SUCH_KEY")])
    with pytest.raises(KeyError):
        bound_service_bodies(Flask("bare"), default_key="MAX_BODY_BYTES")
