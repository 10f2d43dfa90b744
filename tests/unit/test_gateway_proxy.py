"""Header filtering both ways, request bodies, and the gateway app's own answers (no upstream I/O)."""
from __future__ import annotations

import io
import logging
import re

import pytest

from gateway.app import create_app, request_id_from
from gateway.proxy import (
    ClientBodyError,
    RequestBody,
    SizedRequestBody,
    downstream_response_headers,
    strip_cookie,
    upstream_request_headers,
)
from shared.identity import IDENTITY_HEADER


def forward(headers, **kwargs):
    options = dict(
        cookie_name="sessionid", identity_header="signed", request_id="rid", client_addr="10.0.0.5",
        proto="https", host="gnode.example.org", data_prefix=False,
    )
    options.update(kwargs)
    return upstream_request_headers(headers, **options)


def test_identity_and_token_headers_are_never_forwarded():
    out = forward([
        ("X-Gnode-Identity", "forged"),
        ("x-gnode-identity", "forged2"),
        ("X-Gnode-Anything", "x"),
        ("X-Forwarded-User", "alice"),
        ("X-Remote-User", "alice"),
        ("Remote-User", "alice"),
        ("Authorization", "Bearer tok"),
        ("Cookie", "a=1; sessionid=tok; b=2"),
        ("X-Request-Id", "client"),
        ("Forwarded", "for=1.2.3.4"),
        ("X-Real-Ip", "1.2.3.4"),
    ])
    assert out == {
        "Cookie": "a=1; b=2",
        "X-Forwarded-For": "10.0.0.5",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "gnode.example.org",
        "X-Request-Id": "rid",
        IDENTITY_HEADER: "signed",
    }


def test_hop_by_hop_and_connection_listed_headers_are_dropped():
    out = forward([
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("X-Secret-Hop", "1"),
        ("TE", "trailers"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Proxy-Authorization", "Basic x"),
        ("Host", "gnode.example.org"),
        ("Content-Length", "5"),
        ("Expect", "100-continue"),
        ("Range", "bytes=0-9"),
        ("If-None-Match", '"e"'),
        ("If-Match", '"e"'),
        ("Content-Type", "application/json"),
    ], data_prefix=True)
    assert out["Range"] == "bytes=0-9" and out["If-None-Match"] == '"e"' and out["If-Match"] == '"e"'
    assert out["Content-Type"] == "application/json"
    assert out["X-Forwarded-Prefix"] == "/data"
    lowered = {k.lower() for k in out}
    for name in ("connection", "keep-alive", "x-secret-hop", "te", "transfer-encoding", "upgrade",
                 "proxy-authorization", "host", "content-length", "expect"):
        assert name not in lowered


def test_x_forwarded_for_is_appended():
    out = forward([("X-Forwarded-For", "1.1.1.1, 2.2.2.2")])
    assert out["X-Forwarded-For"] == "1.1.1.1, 2.2.2.2, 10.0.0.5"


def test_strip_cookie():
    assert strip_cookie("sessionid=abc", "sessionid") == ""
    assert strip_cookie("a=1;sessionid=abc;b=2", "sessionid") == "a=1; b=2"
    assert strip_cookie("xsessionid=1; a=2", "sessionid") == "xsessionid=1; a=2"


def test_response_headers_keep_repeats_and_drop_hop_by_hop():
    headers = downstream_response_headers(
        [
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2; Path=/"),
            ("ETag", '"x"'),
            ("Content-Length", "10"),
            ("Connection", "close, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Date", "Mon"),
            ("Server", "gunicorn"),
            ("X-Request-Id", "upstream-id"),
            ("X-Gnode-Identity", "leak"),
            ("Location", "http://neo:5000/electrophysiology/segment/segment_1/"),
            ("Content-Disposition", 'attachment; filename="a.h5"'),
        ],
        upstream_base="http://neo:5000",
        data_prefix=True,
    )
    assert headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert headers["ETag"] == '"x"' and headers["Content-Length"] == "10"
    assert headers["Location"] == "/data/electrophysiology/segment/segment_1/"
    assert headers["Content-Disposition"] == 'attachment; filename="a.h5"'
    for name in ("Connection", "X-Hop", "Keep-Alive", "Date", "Server", "X-Request-Id", "X-Gnode-Identity"):
        assert name not in headers


def test_content_length_dropped_only_with_a_chunked_upstream_body():
    headers = downstream_response_headers(
        [("Transfer-Encoding", "chunked"), ("Content-Length", "10"), ("Location", "https://elsewhere/x")],
        upstream_base="http://neo:5000", data_prefix=False,
    )
    assert "Content-Length" not in headers and "Transfer-Encoding" not in headers
    assert headers["Location"] == "https://elsewhere/x"


def test_request_bodies():
    sized = SizedRequestBody(io.BytesIO(b"x" * 25), 25, 10)
    assert len(sized) == 25 and list(sized) == [b"x" * 10, b"x" * 10, b"x" * 5]
    chunked = RequestBody(io.BytesIO(b"y" * 12), None, 5)
    assert not hasattr(chunked, "__len__") and b"".join(chunked) == b"y" * 12
    short = SizedRequestBody(io.BytesIO(b"z" * 5), 10, 4)
    with pytest.raises(ClientBodyError):
        list(short)


def test_request_id_from():
    assert request_id_from("abc-1.2_X") == "abc-1.2_X"
    for bad in (None, "", "a b", "x" * 129, "a/b", "é"):
        assert re.fullmatch(r"[0-9a-f]{32}", request_id_from(bad))
    assert request_id_from("x" * 128) == "x" * 128


# -- the app's own answers (nothing configured: no upstream is ever contacted) ---------------------

@pytest.fixture
def client():
    app = create_app({"LOG_FORMAT": "text", "GNODE_DEV_MODE": True})
    return app.test_client()


def test_unbuilt_service_is_503(client):
    response = client.get("/electrophysiology/segment/")
    assert response.status_code == 503
    assert response.get_json()["message"] == "The neo service is not available (not built yet or not running)."
    assert response.get_json()["message_type"] == "service_unavailable"


@pytest.mark.parametrize("path", ["/internal/revocations/", "/data/internal/x", "/nope/", "/account/../internal/"])
def test_not_routed_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["message_type"] == "not_found"


def test_invalid_token_is_401_except_on_login_paths(client):
    response = client.get("/datafiles/", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.get_json()["message_type"] == "invalid_token"
    client.set_cookie("sessionid", "stale")
    response = client.get("/metadata/sections/")
    assert response.status_code == 401
    assert "sessionid=;" in response.headers["Set-Cookie"]
    # on the login paths the stale token is ignored; the request proceeds (here: to a 503)
    assert client.post("/account/authenticate/").status_code == 503
    assert client.post("/data/account/login/").status_code == 503


def test_index_readyz_and_healthz_with_nothing_built(client):
    assert client.get("/").get_json()["links"]["login"] == "/account/login/"
    assert client.get("/readyz").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.get_json()["services"]["auth"] == {"status": "not_built"}


def test_one_access_line_per_request(client):
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect()
    logging.getLogger("gnode.access").addHandler(handler)
    try:
        response = client.get("/nope/", headers={"X-Request-Id": "unit-1"})
        response.close()
    finally:
        logging.getLogger("gnode.access").removeHandler(handler)
    [record] = records
    assert record.method == "GET" and record.path == "/nope/" and record.status == 404
    assert record.request_id == "unit-1" and record.bytes_out > 0 and record.duration_ms >= 0
    assert response.headers["X-Request-Id"] == "unit-1"


def test_connections_idle_past_the_upstreams_keep_alive_are_dropped_before_reuse(monkeypatch):
    """A POST sent into a connection the service is just closing fails and cannot be retried: the
    pool is emptied once a thread's connections to a service have been idle for `idle_seconds`."""
    from gateway import proxy

    upstreams = proxy.Upstreams(connect_timeout=1, read_timeout=1, chunk_bytes=1024, idle_seconds=2.5)
    session = upstreams.session()
    cleared = []
    monkeypatch.setattr(session.get_adapter("http://svc:1").poolmanager, "clear", lambda: cleared.append(1))
    clock = iter([100.0, 101.0, 104.0, 104.5])
    monkeypatch.setattr(proxy.time, "monotonic", lambda: next(clock))
    upstreams._fresh_if_idle(session, "http://svc:1")  # first use
    upstreams._fresh_if_idle(session, "http://svc:1")  # 1 s later: keep the connection
    assert cleared == []
    upstreams._fresh_if_idle(session, "http://svc:1")  # 3 s idle: drop it
    assert cleared == [1]
    upstreams._fresh_if_idle(session, "http://svc:1")
    assert cleared == [1]
