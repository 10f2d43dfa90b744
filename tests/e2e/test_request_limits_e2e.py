"""Bounded request bodies through the gateway under gunicorn (issue 11, item 4).

A system of its own with small limits, so that oversized bodies stay small: every service gets
chunked bodies (no Content-Length) past its limit and answers 413 JSON, stores nothing and keeps
answering; past the gateway's own limits the gateway answers 413 itself, also when the client
only declares a Content-Length and never sends the body.
"""
from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import running_system

MiB = 1024 * 1024
SERVICE_BODY = 1 * MiB  # MAX_BODY_BYTES (auth, metadata, files, acl)
NEO_JSON = 16 * MiB  # neo's MAX_JSON_BYTES: above the gateway's small limit, to see the gateway answer
ARRAYS = 4 * MiB  # neo's MAX_ARRAY_UPLOAD_BYTES
FILES = 64 * MiB  # MAX_UPLOAD_BYTES (files): above the gateway's upload limit, to see the gateway answer
IMPORT = 2 * MiB  # IMPORT_MAX_BYTES (metadata)
MARGIN = 1 * MiB  # multipart framing on top of the upload limits
GATEWAY_BODY = 8 * MiB
GATEWAY_UPLOAD = 32 * MiB


@pytest.fixture(scope="module")
def bounded(tmp_path_factory, mongo_url, amqp_url):
    with running_system(tmp_path_factory.mktemp("bounded"), mongo_url, amqp_url, GUNICORN_WORKERS=1,
                        GUNICORN_THREADS=4, MAX_BODY_BYTES=SERVICE_BODY, MAX_JSON_BYTES=NEO_JSON, MAX_UPLOAD_BYTES=FILES,
                        MAX_ARRAY_UPLOAD_BYTES=ARRAYS, IMPORT_MAX_BYTES=IMPORT, GATEWAY_MAX_BODY_BYTES=GATEWAY_BODY,
                        GATEWAY_MAX_UPLOAD_BYTES=GATEWAY_UPLOAD) as system:
        yield system


@pytest.fixture(scope="module")
def user(bounded):
    """A logged-in session (cookie) on the bounded system, with one section and one datafile."""
    url = bounded.gateway_url
    name, password = f"u{uuid.uuid4().hex[:12]}", "a long enough password"
    registered = requests.post(f"{url}/account/register/",
                               json={"username": name, "email": f"{name}@example.org", "password": password})
    assert registered.status_code == 201, registered.text
    session = requests.Session()
    assert session.post(f"{url}/account/authenticate/", data={"username": name, "password": password}).status_code == 200
    session.url = url
    created = session.post(f"{url}/metadata/sections/", json={"name": "kept"})
    assert created.status_code == 201, created.text
    session.section = created.json()["selected"][0]["fields"]["id"]
    uploaded = session.post(f"{url}/datafiles/", files={"raw_file": ("small.bin", b"0123456789")}, data={"convert": "0"})
    assert uploaded.status_code == 201, uploaded.text
    session.datafile = uploaded.json()["selected"][0]["fields"]["id"]
    return session


def padding(size: int):
    """`size` bytes in 1 MiB pieces: requests sends a generator chunked, with no Content-Length."""
    sent = 0
    while sent < size:
        piece = min(MiB, size - sent)
        sent += piece
        yield b"x" * piece


def json_chunks(size: int):
    yield b'{"name": "'
    yield from padding(size)
    yield b'"}'


BOUNDARY = "gnode-limits-boundary"


def multipart_chunks(size: int, *, file_field: str, json_part: dict | None = None):
    if json_part is not None:
        yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="json"\r\n\r\n'
               f"{json.dumps(json_part)}\r\n").encode()
    yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file_field}"; filename="big.bin"\r\n'
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    yield from padding(size)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
JSON = {"Content-Type": "application/json"}


def _assert_413(response, limit: int):
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["message_type"] == "payload_too_large" and body["message"]
    assert body["details"] == {"limit_bytes": limit}, body  # which layer answered: a service or the gateway
    assert response.headers["Connection"] == "close"  # the rest of the body was never read


def _total(user, path: str) -> int:
    response = user.get(f"{user.url}{path}")
    assert response.status_code == 200, response.text
    body = response.json()
    return body.get("object_total", body.get("objects_selected"))


def test_chunked_bodies_past_each_services_limit_are_413_and_the_services_keep_answering(user):
    url = user.url
    sections, datafiles, segments = (_total(user, p) for p in ("/metadata/sections/", "/datafiles/",
                                                                 "/electrophysiology/segment/"))
    cases = [
        # (service, method, path, headers, body, the limit that answers, a request that must still work)
        ("auth", "POST", "/account/register/", JSON, json_chunks(2 * SERVICE_BODY), SERVICE_BODY, "/account/me/"),
        ("neo", "POST", "/electrophysiology/segment/", JSON, json_chunks(NEO_JSON + MiB), NEO_JSON,
         "/electrophysiology/segment/"),
        ("neo", "POST", "/electrophysiology/analogsignal/", MULTIPART,
         multipart_chunks(ARRAYS + 2 * MARGIN, file_field="signal", json_part={"name": "s"}), ARRAYS + MARGIN,
         "/electrophysiology/analogsignal/"),
        ("metadata", "POST", "/metadata/sections/", JSON, json_chunks(2 * SERVICE_BODY), SERVICE_BODY,
         "/metadata/sections/"),
        ("metadata", "POST", "/metadata/import/", {"Content-Type": "application/xml"}, padding(IMPORT + 2 * MARGIN),
         IMPORT + MARGIN, "/metadata/sections/"),
        ("files", "POST", f"/datafiles/{user.datafile}/", JSON, json_chunks(2 * SERVICE_BODY), SERVICE_BODY,
         f"/datafiles/{user.datafile}/"),
        ("acl", "POST", "/acl/", JSON, json_chunks(2 * SERVICE_BODY), SERVICE_BODY,
         f"/metadata/sections/{user.section}/acl/"),
        ("acl", "POST", f"/metadata/sections/{user.section}/acl/", JSON, json_chunks(2 * SERVICE_BODY), SERVICE_BODY,
         f"/metadata/sections/{user.section}/acl/"),
    ]
    for service, method, path, headers, body, limit, probe in cases:
        response = user.request(method, url + path, data=body, headers=headers, timeout=60)
        _assert_413(response, limit)
        follow_up = user.get(url + probe, timeout=30)
        assert follow_up.status_code == 200, (service, path, follow_up.text)

    assert _total(user, "/metadata/sections/") == sections
    assert _total(user, "/datafiles/") == datafiles
    assert _total(user, "/electrophysiology/segment/") == segments
    # bodies within the limits still go through, on every service
    assert user.post(f"{url}/metadata/sections/", json={"name": "small"}).status_code == 201
    assert user.post(f"{url}/electrophysiology/segment/", json={"name": "small"}).status_code == 201


def test_past_the_gateways_limits_the_gateway_answers_itself(user):
    url = user.url
    # /labels/ belongs to neo, whose JSON limit is larger than the gateway's small one here
    _assert_413(user.post(f"{url}/labels/", data=json_chunks(GATEWAY_BODY + MiB), headers=JSON, timeout=60),
                GATEWAY_BODY)
    # the upload routes have the gateway's upload limit (the files service's is larger here)
    _assert_413(user.post(f"{url}/datafiles/", data=multipart_chunks(GATEWAY_UPLOAD + MiB, file_field="raw_file"),
                          headers=MULTIPART, timeout=60), GATEWAY_UPLOAD)
    for n in range(4):  # every gateway thread and pooled upstream connection is still usable
        assert user.get(f"{url}/account/me/").status_code == 200
        assert user.post(f"{url}/metadata/sections/", json={"name": f"after {n}"}).status_code == 201


@pytest.mark.parametrize("path, declared", [("/labels/", GATEWAY_BODY + 1), ("/datafiles/", 64 * 1024**3)])
def test_a_declared_length_past_the_gateways_limit_is_refused_before_any_byte_is_sent(bounded, path, declared):
    parts = urlsplit(bounded.gateway_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(declared))
        connection.endheaders()  # and no body at all: the answer must not wait for one
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["message_type"] == "payload_too_large"
    finally:
        connection.close()
    assert requests.get(f"{bounded.gateway_url}/healthz", timeout=10).status_code == 200


def test_a_declared_length_past_a_services_limit_is_413_through_the_gateway(user):
    response = user.post(f"{user.url}/metadata/sections/", data=b"x" * (2 * SERVICE_BODY), headers=JSON, timeout=60)
    _assert_413(response, SERVICE_BODY)
    assert user.get(f"{user.url}/metadata/sections/").status_code == 200
