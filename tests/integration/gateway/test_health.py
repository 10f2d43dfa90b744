"""The gateway's /healthz (every service's readiness), /readyz and /metrics."""
from __future__ import annotations


def test_healthz_reports_each_service(gateway, fakes, http):
    _, urls = fakes
    response = http.get(gateway.url + "/healthz")
    assert response.status_code == 503  # metadata is configured but down
    report = response.json()
    assert report["status"] == "degraded"
    services = report["services"]
    assert services["auth"] == {
        "status": "ok",
        "url": urls["auth"],
        "dependencies": {"mongodb": {"status": "ok"}, "rabbitmq": {"status": "ok"}},
    }
    assert services["files"]["status"] == "ok" and services["files"]["status"] == "ok"
    assert services["metadata"]["status"] == "unreachable"
    assert services["acl"] == {"status": "not_built"}


def test_healthz_is_200_when_every_configured_service_is_ready(make_gateway, fakes, http):
    services, _ = fakes
    url = make_gateway()
    response = http.get(url + "/healthz")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "ok"
    assert {name: s["status"] for name, s in report["services"].items()} == {
        "auth": "ok", "neo": "ok", "metadata": "not_built", "files": "ok", "acl": "not_built"}

    services["files"].ready = False
    try:
        response = http.get(url + "/healthz")
        assert response.status_code == 503
        files = response.json()["services"]["files"]
        assert files["status"] == "unavailable" and files["http_status"] == 503
    finally:
        services["files"].ready = True


def test_readyz_index_and_metrics(gateway, http):
    assert http.get(gateway.url + "/readyz").json()["status"] == "ok"
    index = http.get(gateway.url + "/")
    assert index.status_code == 200 and index.json()["links"]["login"] == "/account/login/"
    assert http.get(gateway.url + "/data/").json() == index.json()
    http.get(gateway.url + "/labels/")
    metrics = http.get(gateway.url + "/metrics")
    assert metrics.status_code == 200
    assert 'gnode_http_requests_total{method="GET",route="/<path:path>",service="gateway",status="200"}' in metrics.text
