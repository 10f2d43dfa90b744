"""The gateway refuses tokens until it has read the revocations once, and takes the client address
from X-Forwarded-For only from a trusted proxy (issue 11, items 6 and 7)."""
from __future__ import annotations

import pytest

from gateway.app import create_app
from shared.config import ConfigError
from stack.procs import wait_until

from .conftest import token_for
from .fakes import INTERNAL_SECRET, JWT_SECRET, FakeService, ServerThread


@pytest.fixture
def auth_fake():
    auth = FakeService("auth")
    server = ServerThread(auth)
    auth.base_url = server.url
    yield auth
    server.stop()


def test_tokens_are_refused_until_the_first_revocation_sync(make_gateway, http, auth_fake):
    auth_fake.down = True  # the revocation list cannot be read
    url = make_gateway(AUTH_URL=auth_fake.base_url)
    token, _ = token_for(12, "erin")
    bearer = {"Authorization": f"Bearer {token}"}
    for headers in (bearer, {"Cookie": f"sessionid={token}"}):
        response = http.get(url + "/labels/", headers=headers)
        assert response.status_code == 503, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Retry-After"] == "1"
        assert response.json()["message_type"] == "revocations_unavailable"
        assert "sessionid=;" not in response.headers.get("Set-Cookie", "")  # the token may be fine: kept
    assert http.get(url + "/labels/").status_code == 200  # no token: nothing to check
    assert http.get(url + "/labels/", headers={"Authorization": "Bearer garbage"}).status_code == 401

    auth_fake.down = False
    assert wait_until(lambda: http.get(url + "/labels/", headers=bearer).status_code == 200, timeout=2.0)
    assert http.get(url + "/labels/", headers=bearer).json()["identity"]["username"] == "erin"


def test_after_the_first_sync_an_outage_keeps_tokens_working(make_gateway, http, auth_fake):
    url = make_gateway(AUTH_URL=auth_fake.base_url)
    token, _ = token_for(13, "finn")
    bearer = {"Authorization": f"Bearer {token}"}
    assert http.get(url + "/labels/", headers=bearer).status_code == 200
    auth_fake.down = True
    polls = auth_fake.revocation_polls
    assert wait_until(lambda: auth_fake.revocation_polls >= polls + 2, timeout=3.0)
    assert http.get(url + "/labels/", headers=bearer).status_code == 200


# -- the client address ----------------------------------------------------------------------------

def _client_ip(http, url, forwarded_for: str | None) -> str:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return http.get(url + "/account/ping/", headers=headers).json()["identity"]["client_ip"]


def test_forwarded_for_is_ignored_from_an_untrusted_peer(make_gateway, http):
    for trusted in ("", "10.0.0.0/8, 192.0.2.1"):  # none, or proxies that are not the caller (127.0.0.1)
        url = make_gateway(TRUSTED_PROXIES=trusted)
        assert _client_ip(http, url, "198.51.100.7") == "127.0.0.1"
        assert _client_ip(http, url, None) == "127.0.0.1"


def test_forwarded_for_is_used_from_a_trusted_proxy(make_gateway, http):
    url = make_gateway(TRUSTED_PROXIES="127.0.0.0/8")
    assert _client_ip(http, url, "198.51.100.7") == "198.51.100.7"
    # what the client wrote itself, left of the address our proxy saw, is not believed
    assert _client_ip(http, url, "6.6.6.6, 198.51.100.7") == "198.51.100.7"
    assert _client_ip(http, url, "198.51.100.7, 127.0.0.9") == "198.51.100.7"  # through two of our proxies
    assert _client_ip(http, url, "not-an-address") == "127.0.0.1"
    assert _client_ip(http, url, None) == "127.0.0.1"


def test_a_trusted_proxy_names_the_client_of_a_token_bearing_request_too(make_gateway, http):
    url = make_gateway(TRUSTED_PROXIES="127.0.0.1")
    token, _ = token_for(14, "gail")
    echo = http.get(url + "/labels/", headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.8"})
    assert echo.json()["identity"]["client_ip"] == "198.51.100.8"
    assert echo.json()["identity"]["username"] == "gail"


def test_a_bad_trusted_proxies_setting_stops_the_gateway_at_start():
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app({"JWT_SECRET": JWT_SECRET, "INTERNAL_SECRET": INTERNAL_SECRET, "TRUSTED_PROXIES": "my-proxy"})
