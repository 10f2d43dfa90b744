"""The gateway under gunicorn bounds request bodies while streaming them (issue 11, item 4) and
refuses cross-site requests carrying the session cookie (item 7).

A gateway of its own with small limits; /metadata/ and /acl/ go to a recorder that counts the
bytes it receives, so that the tests see how much of a refused body reached a service.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests
from werkzeug.wrappers import Request, Response

from stack.procs import free_port

from .conftest import REPO, _gunicorn_child, gateway_env
from .fakes import MiB, ServerThread, pattern_chunks

BODY_LIMIT = 1 * MiB
UPLOAD_LIMIT = 4 * MiB
OUR_ORIGIN_HOST = "127.0.0.1"


class Recorder:
    """A service that reads every body to its end and records how much arrived, and whether whole."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        received, complete = 0, True
        try:
            while piece := request.stream.read(256 * 1024):
                received += len(piece)
        except Exception:  # the gateway hung up mid-body
            complete = False
        with self.lock:
            self.bodies.append({"path": request.path, "received": received, "complete": complete})
        response = Response(json.dumps({"received": received}), status=201, mimetype="application/json")
        return response(environ, start_response)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.bodies) >= count:
                    return list(self.bodies)
            time.sleep(0.02)
        raise AssertionError(f"the recorder saw {len(self.bodies)} bodies, not {count}")


@pytest.fixture(scope="module")
def recorder():
    app = Recorder()
    server = ServerThread(app)
    app.url = server.url
    yield app
    server.stop()


@pytest.fixture(scope="module")
def bounded_gateway(fakes, recorder, dead_url, tmp_path_factory):
    _, urls = fakes
    env = gateway_env(urls, dead_url)
    env.update(METADATA_URL=recorder.url, ACL_URL=recorder.url, GATEWAY_MAX_BODY_BYTES=str(BODY_LIMIT),
               GATEWAY_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT), PUBLIC_URL="https://data.example.org",
               TRUSTED_ORIGINS="https://ui.example.org")
    port = free_port()
    child = _gunicorn_child("bounded gateway", "gateway.app:create_app()", port, env,
                            tmp_path_factory.mktemp("bounded-gateway") / "gateway.log",
                            "-c", str(REPO / "shared" / "gunicorn_conf.py"))
    yield f"http://127.0.0.1:{port}"
    child.stop()


@pytest.fixture
def recorded(recorder):
    """The recorder's bodies from now on."""
    with recorder.lock:
        recorder.bodies.clear()
    return recorder


def _assert_413(response, limit: int) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["message_type"] == "payload_too_large"
    assert response.json()["details"] == {"limit_bytes": limit}
    assert response.headers["Connection"] == "close"  # the rest of the body is never read


# --- bodies ------------------------------------------------------------------------------------------

def test_a_chunked_body_past_the_limit_is_413_and_the_service_got_at_most_the_limit(bounded_gateway, recorded):
    response = requests.post(f"{bounded_gateway}/metadata/sections/", data=pattern_chunks(3 * BODY_LIMIT))
    _assert_413(response, BODY_LIMIT)
    [seen] = recorded.wait_for(1)
    assert not seen["complete"] and seen["received"] <= BODY_LIMIT  # the upstream request was aborted
    # within the limit, chunked bodies pass whole
    response = requests.post(f"{bounded_gateway}/metadata/sections/", data=pattern_chunks(BODY_LIMIT))
    assert response.status_code == 201 and response.json() == {"received": BODY_LIMIT}


def test_acl_sub_resources_get_the_small_limit_even_under_upload_prefixes(bounded_gateway, recorded):
    response = requests.post(f"{bounded_gateway}/electrophysiology/segment/segment_1/acl/",
                             data=pattern_chunks(2 * BODY_LIMIT))
    _assert_413(response, BODY_LIMIT)


def test_upload_routes_get_the_upload_limit(bounded_gateway):
    response = requests.post(f"{bounded_gateway}/datafiles/upload/", data=pattern_chunks(3 * MiB))
    assert response.status_code == 201 and response.json()["length"] == 3 * MiB
    _assert_413(requests.post(f"{bounded_gateway}/datafiles/upload/", data=pattern_chunks(UPLOAD_LIMIT + MiB)),
                UPLOAD_LIMIT)
    _assert_413(requests.post(f"{bounded_gateway}/electrophysiology/upload/", data=pattern_chunks(UPLOAD_LIMIT + MiB)),
                UPLOAD_LIMIT)


def test_a_declared_length_past_the_limit_is_answered_before_any_body_is_sent(bounded_gateway, recorded):
    parts = urlsplit(bounded_gateway)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("POST", "/metadata/sections/")
        connection.putheader("Content-Length", str(BODY_LIMIT + 1))
        connection.endheaders()  # no body follows: the answer must not wait for it
        response = connection.getresponse()
        assert response.status == 413 and response.getheader("Connection") == "close"
        assert json.loads(response.read())["details"] == {"limit_bytes": BODY_LIMIT}
    finally:
        connection.close()
    time.sleep(0.2)
    assert recorded.bodies == []  # the service never heard of it


def test_an_aborted_upstream_connection_is_never_reused(bounded_gateway):
    """After a body is cut off mid-stream, the next requests to the same (keep-alive, gunicorn)
    service arrive intact: no half-written request was left on a pooled connection."""
    with requests.Session() as http:
        for attempt in range(3):
            _assert_413(http.post(f"{bounded_gateway}/electrophysiology/upload/",
                                  data=pattern_chunks(UPLOAD_LIMIT + MiB)), UPLOAD_LIMIT)
            for n in range(8):  # the gateway has 4 threads, each with its own pool
                payload = f"request {attempt}.{n} ".encode() * 1000
                echoed = http.post(f"{bounded_gateway}/electrophysiology/echo/", data=payload)
                assert echoed.status_code == 200, echoed.text
                assert echoed.json()["body"].encode() == payload


# --- cross-site requests -----------------------------------------------------------------------------

COOKIE = {"Cookie": "sessionid=some.session.token"}
CROSS_SITE = {"Sec-Fetch-Site": "cross-site"}
FOREIGN_ORIGIN = {"Origin": "https://evil.example"}


@pytest.mark.parametrize("browser", [CROSS_SITE, FOREIGN_ORIGIN, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site", "Origin": "https://data.example.org"}])
@pytest.mark.parametrize("method, path", [
    ("POST", "/metadata/sections/"),
    ("DELETE", "/metadata/sections/1/"),
    ("PUT", "/acl/"),
    ("GET", "/datafiles/9/convert/"),
    ("HEAD", "/datafiles/9/convert/"),
    ("GET", "/data/datafiles/datafile_9/convert"),
    ("GET", "/account/logout/"),
    ("POST", "/account/logout/"),
])
def test_cross_site_requests_with_the_cookie_are_refused(bounded_gateway, recorded, browser, method, path):
    response = requests.request(method, f"{bounded_gateway}{path}", headers={**COOKIE, **browser}, data=b"{}")
    assert response.status_code == 403
    if method != "HEAD":
        assert response.json()["message_type"] == "cross_site_request"
    assert recorded.bodies == []


def test_a_login_from_another_site_is_refused_even_without_a_cookie(bounded_gateway):
    for browser in (CROSS_SITE, FOREIGN_ORIGIN):
        response = requests.post(f"{bounded_gateway}/account/authenticate/", headers=browser,
                                 data={"username": "victim", "password": "attacker's password"})
        assert response.status_code == 403 and response.json()["message_type"] == "cross_site_request"
        assert "Set-Cookie" not in response.headers
    # scripts (no browser headers) and the login form of the site itself still log in
    for headers in ({}, {"Sec-Fetch-Site": "same-origin", "Origin": bounded_gateway}):
        response = requests.post(f"{bounded_gateway}/account/authenticate/", headers=headers,
                                 data={"username": "u", "password": "p"})
        assert response.status_code == 200 and response.json()["service"] == "auth"


@pytest.mark.parametrize("headers, get_passes", [
    ({}, True),  # a script: no browser headers at all
    ({"Sec-Fetch-Site": "same-origin", "Origin": f"http://{OUR_ORIGIN_HOST}:{{port}}"}, True),
    # a sibling subdomain: its POST says where it comes from (Origin), its GET does not
    ({"Sec-Fetch-Site": "same-site"}, False),
    ({"Sec-Fetch-Site": "none"}, True),  # typed into the address bar
    ({"Origin": "https://data.example.org"}, True),  # PUBLIC_URL
    ({"Origin": "https://ui.example.org"}, True),  # TRUSTED_ORIGINS
])
def test_same_site_and_script_requests_with_the_cookie_pass(bounded_gateway, headers, get_passes):
    port = urlsplit(bounded_gateway).port
    headers = {name: value.format(port=port) for name, value in headers.items()}
    # The cookie is not a valid session here: passing the cross-site check shows as the token's 401.
    response = requests.post(f"{bounded_gateway}/metadata/sections/", headers={**COOKIE, **headers}, data=b"{}")
    assert response.status_code == 401 and response.json()["message_type"] == "invalid_token"
    # logout ignores a stale cookie, so it reaches the auth service
    response = requests.get(f"{bounded_gateway}/account/logout/", headers={**COOKIE, **headers})
    if get_passes:
        assert response.status_code == 200 and response.json()["service"] == "auth"
    else:
        assert response.status_code == 403 and response.json()["message_type"] == "cross_site_request"


def test_bearer_and_anonymous_requests_are_not_cross_site_checked(bounded_gateway, recorded):
    browser = {**CROSS_SITE, **FOREIGN_ORIGIN}
    response = requests.post(f"{bounded_gateway}/metadata/sections/",
                             headers={**browser, **COOKIE, "Authorization": "Bearer not.a.token"}, data=b"{}")
    assert response.status_code == 401 and response.json()["message_type"] == "invalid_token"
    # without any credential, another site can do nothing an anonymous script could not
    response = requests.post(f"{bounded_gateway}/metadata/sections/", headers=browser, data=b"{}")
    assert response.status_code == 201
    # and safe requests are never refused
    response = requests.get(f"{bounded_gateway}/labels/", headers={**COOKIE, **browser})
    assert response.status_code != 403
