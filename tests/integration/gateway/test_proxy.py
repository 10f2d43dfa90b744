"""Routing, errors, identity forwarding and header pass-through, over real HTTP through the gateway."""
from __future__ import annotations

import re
import time

import pytest

from shared.identity import IDENTITY_HEADER, Identity, decode_identity, encode_identity

from stack.procs import wait_until

from .conftest import token_for
from .fakes import INTERNAL_SECRET, JWT_SECRET, FakeService, ServerThread


def headers_of(echo: dict) -> dict[str, str]:
    return {k.lower(): v for k, v in echo["headers"]}


# -- routing and errors --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/acl/", "/datafiles/9/acl/", "/data/electrophysiology/segment/segment_1/acl/"])
def test_unbuilt_service_is_503_json(gateway, http, path):
    response = http.get(gateway.url + path)
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["message_type"] == "service_unavailable"
    assert body["message"] == "The acl service is not available (not built yet or not running)."


def test_configured_but_down_service_is_503(gateway, http):
    response = http.get(gateway.url + "/metadata/sections/")
    assert response.status_code == 503
    body = response.json()
    assert body["message_type"] == "service_unavailable"
    assert body["message"] == "The metadata service is not available (not built yet or not running)."


@pytest.mark.parametrize("path", ["/nothing/here/", "/internal/revocations/", "/data/internal/revocations/",
                                  "/Internal/revocations/", "/account/../internal/revocations/",
                                  "/account/%2e%2e/internal/revocations/"])
def test_unknown_and_internal_paths_are_404(gateway, fakes, http, path):
    services, _ = fakes
    polls = services["auth"].revocation_polls
    response = http.get(gateway.url + path)
    assert response.status_code == 404
    assert response.json()["message_type"] == "not_found"
    assert "revoked" not in response.text
    assert services["auth"].revocation_polls >= polls  # the poller runs; the client never gets in


def test_routes_reach_the_owning_service(gateway, http):
    for path, service in [
        ("/account/ping/", "auth"),
        ("/profiles/profile/7/history/", "auth"),
        ("/electrophysiology/analogsignal/3/history/", "neo"),
        ("/labels/", "neo"),
        ("/selections/1/", "neo"),
        ("/datafiles/9/history/", "files"),
    ]:
        response = http.get(gateway.url + path)
        assert response.status_code == 200, (path, response.text)
        echo = response.json()
        assert echo["service"] == service and echo["path"] == path


def test_data_prefix_is_stripped(gateway, http):
    response = http.post(gateway.url + "/data/account/authenticate/", data={"username": "bob"})
    assert response.status_code == 200
    echo = response.json()
    assert echo["path"] == "/account/authenticate/"
    assert echo["body"] == "username=bob"
    headers = headers_of(echo)
    assert headers["x-forwarded-prefix"] == "/data"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == gateway.url.removeprefix("http://")
    plain = http.get(gateway.url + "/account/ping/").json()
    assert "x-forwarded-prefix" not in headers_of(plain)


def test_query_string_and_methods_pass_as_is(gateway, http):
    query = "max_results=5&offset=10&name=a%20b&x=%2F&flag"
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]:
        response = http.request(method, f"{gateway.url}/electrophysiology/segment/?{query}", json={"m": method})
        assert response.status_code == 200, (method, response.text)
        echo = response.json()
        assert echo["method"] == method and echo["query_string"] == query
        if method not in ("GET", "DELETE", "OPTIONS"):
            assert echo["body"] == '{"m": "' + method + '"}'


def test_path_is_requoted(gateway, http):
    response = http.get(gateway.url + "/labels/a%20b/%C3%A9/")
    assert response.json()["path"] == "/labels/a b/é/"


def test_upstream_connections_are_kept_alive_and_reused(gateway, http):
    ports = {http.get(gateway.url + "/labels/").json()["remote_port"] for _ in range(30)}
    assert len(ports) <= 4  # at most one pooled connection per gateway worker thread (4 threads)
    # after HEAD, 304 and errors too
    http.head(gateway.url + "/datafiles/9/headers/")
    http.get(gateway.url + "/datafiles/9/headers/", headers={"If-None-Match": '"v1-abc"'})
    more = {http.get(gateway.url + "/labels/").json()["remote_port"] for _ in range(30)}
    assert len(ports | more) <= 5


# -- identity -------------------------------------------------------------------------------------

def test_anonymous_request_carries_an_identity_with_the_client_address(gateway, http):
    echo = http.get(gateway.url + "/account/ping/").json()
    assert echo["identity"] == {"user_id": None, "username": None, "session_id": None, "client_ip": "127.0.0.1"}


@pytest.mark.parametrize("how", ["bearer", "cookie"])
def test_verified_identity_is_forwarded_and_token_is_not(gateway, http, how):
    token, session = token_for(7, "bob")
    headers = {"Authorization": f"Bearer {token}"} if how == "bearer" else {
        "Cookie": f"theme=dark; sessionid={token}; csrftoken=abc"}
    response = http.get(gateway.url + "/datafiles/9/", headers=headers)
    assert response.status_code == 200
    echo = response.json()
    assert echo["identity"] == {"user_id": 7, "username": "bob", "session_id": session.session_id,
                                "client_ip": "127.0.0.1"}
    forwarded = headers_of(echo)
    assert "authorization" not in forwarded
    assert token not in response.text.replace(echo["identity_header"], "")
    if how == "cookie":
        assert echo["cookies"] == {"theme": "dark", "csrftoken": "abc"}
    else:
        assert "cookie" not in forwarded


def test_forged_identity_with_a_wrong_secret_never_reaches_a_service(gateway, http):
    forged = encode_identity(Identity(1, "admin", "s", "1.2.3.4"), "not-the-internal-secret-0123456789abcdef")
    echo = http.get(gateway.url + "/account/ping/", headers={IDENTITY_HEADER: forged}).json()
    assert echo["identity_header"] != forged
    assert echo["identity"]["user_id"] is None and echo["identity"]["username"] is None
    assert echo["identity"]["client_ip"] == "127.0.0.1"


def test_forged_identity_with_the_right_secret_gets_the_caller_nothing(gateway, http):
    forged = encode_identity(Identity(1, "alice", "alice-session", "10.9.9.9"), INTERNAL_SECRET)
    sneaky = {
        IDENTITY_HEADER.lower(): forged,
        "X-Gnode-Something": "x",
        "X-Forwarded-User": "alice",
        "X-Remote-User": "alice",
        "Remote-User": "alice",
        "X-Forwarded-For": "10.9.9.9",
    }
    anonymous = http.get(gateway.url + "/electrophysiology/segment/", headers=sneaky).json()
    assert anonymous["identity_header"] != forged
    assert anonymous["identity"] == {"user_id": None, "username": None, "session_id": None, "client_ip": "127.0.0.1"}
    forwarded = headers_of(anonymous)
    for name in ("x-gnode-something", "x-forwarded-user", "x-remote-user", "remote-user"):
        assert name not in forwarded
    assert forwarded["x-forwarded-for"] == "10.9.9.9, 127.0.0.1"  # appended, never trusted for identity

    token, session = token_for(8, "mallory")
    as_mallory = http.get(gateway.url + "/electrophysiology/segment/",
                          headers={**sneaky, "Authorization": f"Bearer {token}"}).json()
    assert as_mallory["identity"]["username"] == "mallory"
    assert as_mallory["identity"]["user_id"] == 8
    assert [v for k, v in as_mallory["headers"] if k.lower() == IDENTITY_HEADER.lower()] == [
        as_mallory["identity_header"]]


# -- tokens ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["garbage", "wrong_secret", "expired"])
def test_bad_tokens_are_401_invalid_token(gateway, http, kind):
    if kind == "garbage":
        token = "not.a.jwt"
    elif kind == "wrong_secret":
        token, _ = token_for(secret="another-secret-0123456789abcdef-xyz")
    else:
        token, _ = token_for(ttl=60, now=time.time() - 3600)
    response = http.get(gateway.url + "/electrophysiology/segment/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    body = response.json()
    assert body["message_type"] == "invalid_token"
    if kind == "expired":
        assert body["details"]["reason"] == "expired"


def test_stale_cookie_still_allows_logging_in(gateway, http):
    stale, _ = token_for(ttl=60, now=time.time() - 3600)
    for path in ["/account/authenticate/", "/data/account/authenticate", "/account/login/", "/account/register/",
                 "/account/logout/"]:
        response = http.post(gateway.url + path, headers={"Cookie": f"sessionid={stale}"}, data={"u": "x"})
        assert response.status_code == 200, (path, response.text)
        assert response.json()["identity"]["username"] is None
    other = http.get(gateway.url + "/account/profile/", headers={"Cookie": f"sessionid={stale}"})
    assert other.status_code == 401
    assert "sessionid=;" in other.headers["Set-Cookie"]  # the stale cookie is cleared


def test_revoked_token_is_rejected_within_one_second(gateway, fakes, http):
    services, _ = fakes
    token, session = token_for(9, "carol")
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get(gateway.url + "/datafiles/", headers=headers).status_code == 200
    services["auth"].revoke(session.session_id, session.expires_at)
    revoked_at = time.monotonic()
    while True:
        response = http.get(gateway.url + "/datafiles/", headers=headers)
        if response.status_code == 401:
            break
        assert time.monotonic() - revoked_at < 1.0, "still accepted one second after logout"
        time.sleep(0.02)
    assert time.monotonic() - revoked_at < 1.0
    assert response.json()["message_type"] == "invalid_token"
    assert response.json()["details"]["reason"] == "revoked"
    # another session of the same user is unaffected
    other, _ = token_for(9, "carol")
    assert http.get(gateway.url + "/datafiles/", headers={"Authorization": f"Bearer {other}"}).status_code == 200


# -- headers --------------------------------------------------------------------------------------

def test_request_headers_pass_through(gateway, http):
    sent = {"If-None-Match": '"x"', "If-Match": '"y"', "Range": "bytes=0-9", "Accept": "application/json",
            "X-Custom-Thing": "42", "Accept-Language": "de", "Keep-Alive": "timeout=5", "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "hop"}
    forwarded = headers_of(http.get(gateway.url + "/datafiles/1/", headers=sent).json())
    for name in ("If-None-Match", "If-Match", "Range", "Accept", "X-Custom-Thing", "Accept-Language"):
        assert forwarded[name.lower()] == sent[name]
    assert "keep-alive" not in forwarded and "x-drop-me" not in forwarded


def test_response_headers_pass_through(gateway, http):
    response = http.get(gateway.url + "/datafiles/9/headers/?status=201")
    assert response.status_code == 201
    assert response.content == b"0123456789" * 10
    assert response.headers["ETag"] == '"v1-abc"'
    assert response.headers["Last-Modified"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert response.headers["Content-Disposition"] == 'attachment; filename="data.h5"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["X-Custom"] == "kept"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == "100"
    assert "Keep-Alive" not in response.headers
    assert response.raw.headers.getlist("Set-Cookie") == [
        "first=1; Path=/; HttpOnly", "second=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT"]
    assert {c.name: c.value for c in response.cookies} == {"first": "1", "second": "2"}
    assert len(response.raw.headers.getlist("Date")) == 1
    assert len(response.raw.headers.getlist("X-Request-Id")) == 1


def test_cookies_set_by_a_service_are_never_replayed_for_another_client(gateway, http):
    import requests

    for _ in range(8):  # every worker thread sees a Set-Cookie answer
        assert http.get(gateway.url + "/datafiles/9/headers/").headers["Set-Cookie"]
    for _ in range(8):
        with requests.Session() as stranger:
            stranger.trust_env = False
            echo = stranger.get(gateway.url + "/datafiles/9/").json()
        assert echo["cookies"] == {} and "cookie" not in headers_of(echo)


def test_conditional_and_range_requests(gateway, http):
    url = gateway.url + "/datafiles/9/headers/"
    not_modified = http.get(url, headers={"If-None-Match": '"v1-abc"'})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["ETag"] == '"v1-abc"'
    failed = http.put(url, headers={"If-Match": '"v0-old"'}, data=b"new")
    assert failed.status_code == 412 and failed.json()["message_type"] == "precondition_failed"
    partial = http.get(url, headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206
    assert partial.content == b"0123456789"
    assert partial.headers["Content-Range"] == "bytes 10-19/100"


def test_location_pointing_at_the_service_is_made_relative(gateway, http):
    response = http.post(gateway.url + "/datafiles/headers/?status=201&location=1", allow_redirects=False)
    assert response.headers["Location"] == "/datafiles/9/"
    prefixed = http.post(gateway.url + "/data/datafiles/headers/?status=201&location=1", allow_redirects=False)
    assert prefixed.headers["Location"] == "/data/datafiles/9/"


def test_compressed_bodies_pass_through_undecoded(gateway, http):
    import gzip

    with http.get(gateway.url + "/datafiles/9/gzip/", stream=True) as response:
        raw = response.raw.read(decode_content=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Length"] == str(len(raw))
    assert gzip.decompress(raw) == b'{"compressed": true}' * 100


def test_head_has_no_body(gateway, http):
    response = http.head(gateway.url + "/datafiles/9/headers/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == "100"
    assert response.headers["ETag"] == '"v1-abc"'
    # the connection is still usable afterwards
    assert http.get(gateway.url + "/datafiles/9/headers/").content == b"0123456789" * 10


def test_request_id_is_assigned_forwarded_and_returned(gateway, http):
    response = http.get(gateway.url + "/labels/")
    request_id = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert headers_of(response.json())["x-request-id"] == request_id

    mine = http.get(gateway.url + "/labels/", headers={"X-Request-Id": "client-req.42_A"})
    assert mine.headers["X-Request-Id"] == "client-req.42_A"
    assert headers_of(mine.json())["x-request-id"] == "client-req.42_A"

    for insane in ["has space", "x" * 129, "semi;colon", "<script>"]:
        replaced = http.get(gateway.url + "/labels/", headers={"X-Request-Id": insane})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-Id"])
        assert headers_of(replaced.json())["x-request-id"] == replaced.headers["X-Request-Id"]

    errored = http.get(gateway.url + "/nothing/")
    assert re.fullmatch(r"[0-9a-f]{32}", errored.headers["X-Request-Id"])


def test_access_log_has_one_line_per_request(gateway, http):
    request_id = "access-log-check-1"
    http.get(gateway.url + "/datafiles/big/?size=300000", headers={"X-Request-Id": request_id}).content
    time.sleep(0.2)
    lines = [line for line in gateway.log_tail(400).splitlines() if request_id in line and "gnode.access" in line]
    assert len(lines) == 1, lines
    import json

    entry = json.loads(lines[0])
    assert entry["status"] == 200 and entry["method"] == "GET" and entry["upstream"] == "files"
    assert entry["bytes_out"] == 300000 and entry["duration_ms"] > 0
    assert entry["service"] == "gateway"


# -- in-process gateways for other configurations -------------------------------------------------

def test_upstream_timeout_is_504(make_gateway, http):
    url = make_gateway(UPSTREAM_READ_TIMEOUT=0.3)
    response = http.get(url + "/electrophysiology/slow/?seconds=1")
    assert response.status_code == 504
    assert response.json()["message_type"] == "gateway_timeout"


def test_revocations_survive_an_auth_outage(make_gateway, http):
    auth = FakeService("auth")
    server = ServerThread(auth)
    try:
        url = make_gateway(AUTH_URL=server.url)
        first, first_session = token_for(11, "dave")
        second, second_session = token_for(11, "dave")

        def status(token):
            return http.get(url + "/labels/", headers={"Authorization": f"Bearer {token}"}).status_code

        assert status(first) == 200 and status(second) == 200
        auth.revoke(first_session.session_id, first_session.expires_at)
        assert wait_until(lambda: status(first) == 401, timeout=1.0)

        auth.down = True  # the revocation endpoint fails: what is known is kept
        polls = auth.revocation_polls
        assert wait_until(lambda: auth.revocation_polls >= polls + 3, timeout=3.0)
        assert status(first) == 401 and status(second) == 200

        auth.revoke(second_session.session_id, second_session.expires_at)
        auth.down = False  # back: the next poll brings what was missed
        assert wait_until(lambda: status(second) == 401, timeout=1.0)
        assert status(first) == 401
    finally:
        server.stop()


def test_identity_header_is_signed_with_the_internal_secret(gateway, http):
    echo = http.get(gateway.url + "/account/ping/").json()
    assert decode_identity(echo["identity_header"], INTERNAL_SECRET).client_ip == "127.0.0.1"
    with pytest.raises(Exception):
        decode_identity(echo["identity_header"], JWT_SECRET)
