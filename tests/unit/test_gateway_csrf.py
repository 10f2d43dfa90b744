"""Cross-site request rules and the body-limit routes of the gateway, as pure functions (issue 11)."""
import pytest

from gateway.csrf import is_cross_site, is_foreign_origin, trusted_origins
from gateway.routes import changes_state, resolve, starts_a_session, takes_uploads

TRUSTED = trusted_origins("https://Data.Example.org/some/path", " https://ui.example.org , ,not a url")
HOST = "127.0.0.1:8000"


def test_trusted_origins_are_normalised():
    assert TRUSTED == frozenset({"https://data.example.org", "https://ui.example.org"})
    assert trusted_origins("", "") == frozenset()


@pytest.mark.parametrize("origin, foreign", [
    ("http://127.0.0.1:8000", False),  # the host the browser addressed
    ("https://127.0.0.1:8000", False),  # TLS ended in front of the gateway
    ("https://data.example.org", False),  # PUBLIC_URL
    ("https://UI.example.org", False),  # TRUSTED_ORIGINS, any case
    ("http://127.0.0.1:8001", True),  # another port is another origin
    ("https://evil.example", True),
    ("https://data.example.org.evil.example", True),
    ("null", True),  # sandboxed frames and privacy redirects
    ("", True),
])
def test_foreign_origins(origin, foreign):
    assert is_foreign_origin(origin, host=HOST, trusted=TRUSTED) is foreign


@pytest.mark.parametrize("headers, cross", [
    ({}, False),  # scripts send neither header
    ({"Sec-Fetch-Site": "same-origin"}, False),
    ({"Sec-Fetch-Site": "same-site"}, False),
    ({"Sec-Fetch-Site": "none"}, False),
    ({"Sec-Fetch-Site": "Cross-Site"}, True),
    ({"Origin": "http://127.0.0.1:8000"}, False),
    ({"Origin": "https://evil.example"}, True),
    ({"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"}, True),
    ({"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1:8000"}, True),
])
def test_cross_site_is_what_either_header_says(headers, cross):
    assert is_cross_site(headers, host=HOST, trusted=TRUSTED) is cross


@pytest.mark.parametrize("headers, cross", [
    ({"Sec-Fetch-Site": "same-site"}, True),  # a sibling subdomain's link to .../convert/ or logout
    ({"Sec-Fetch-Site": "same-origin"}, False),
    ({"Sec-Fetch-Site": "none"}, False),  # typed in the address bar
    ({}, False),
])
def test_a_state_changing_get_from_a_sibling_subdomain_is_cross_site(headers, cross):
    assert is_cross_site(headers, host=HOST, trusted=TRUSTED, without_origin=True) is cross


@pytest.mark.parametrize("method, path, changes", [
    ("POST", "/metadata/sections/", True),
    ("PUT", "/datafiles/9/", True),
    ("PATCH", "/electrophysiology/segment/1/", True),
    ("DELETE", "/acl/shared_with_me/", True),
    ("GET", "/datafiles/9/", False),
    ("GET", "/datafiles/9/convert/", True),  # the seed's conversion by GET
    ("HEAD", "/datafiles/datafile_9/convert", True),
    ("GET", "/datafiles/9/convert/extra/", False),
    ("GET", "/account/logout/", True),  # the seed's logout by GET
    ("GET", "/account/me/", False),
    ("OPTIONS", "/account/logout/", False),
])
def test_state_changing_requests(method, path, changes):
    assert changes_state(method, path) is changes


def test_logging_in_starts_a_session():
    assert starts_a_session("POST", "/account/authenticate/")
    assert starts_a_session("POST", "/account/authenticate")
    assert not starts_a_session("GET", "/account/login/")
    assert not starts_a_session("POST", "/account/register/")


@pytest.mark.parametrize("path, uploads", [
    ("/datafiles/", True),
    ("/data/datafiles/9/", True),
    ("/electrophysiology/analogsignal/", True),
    ("/electrophysiology/segment/segment_1/acl/", False),  # routed to the acl service
    ("/datafiles/9/acl/", False),
    ("/labels/", False),
    ("/metadata/import/", False),
    ("/account/register/", False),
])
def test_upload_routes(path, uploads):
    assert takes_uploads(resolve(path)) is uploads
