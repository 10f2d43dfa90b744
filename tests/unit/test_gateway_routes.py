"""The gateway's routing table (DESIGN.md section 2): every prefix, /data/, acl, history, /internal."""
from __future__ import annotations

import pytest

from gateway.routes import PREFIXES, SERVICE_URL_KEYS, Route, is_login_path, quote_path, resolve, strip_data_prefix


@pytest.mark.parametrize(
    "path, service",
    [
        ("/account/authenticate/", "auth"),
        ("/account/", "auth"),
        ("/account", "auth"),
        ("/account/register/", "auth"),
        ("/account/logout", "auth"),
        ("/profiles/", "auth"),
        ("/profiles/profile/3/", "auth"),
        ("/electrophysiology/", "neo"),
        ("/electrophysiology/segment/", "neo"),
        ("/electrophysiology/segment/segment_1/", "neo"),
        ("/electrophysiology/analogsignal/analogsignal_3/data/", "neo"),
        ("/labels/", "neo"),
        ("/labels/12/", "neo"),
        ("/selections/", "neo"),
        ("/selections/4/", "neo"),
        ("/metadata/", "metadata"),
        ("/metadata/sections/12/", "metadata"),
        ("/metadata/properties/3/values/", "metadata"),
        ("/api/", "metadata"),
        ("/api/v1/subjects/", "metadata"),
        ("/rest/", "metadata"),
        ("/rest/v1/experiments/7/", "metadata"),
        ("/datafiles/", "files"),
        ("/datafiles/9/", "files"),
        ("/datafiles/9/data/", "files"),
        ("/acl/", "acl"),
        ("/acl/resources/3/", "acl"),
    ],
)
def test_every_prefix_goes_to_its_service(path, service):
    route = resolve(path)
    assert route == Route(service, path, False)


def test_every_prefix_is_covered_and_every_service_has_a_url_key():
    assert set(PREFIXES.values()) == set(SERVICE_URL_KEYS)
    for prefix, service in PREFIXES.items():
        assert resolve(f"/{prefix}/x/").service == service


@pytest.mark.parametrize(
    "path, service, upstream",
    [
        ("/data/account/authenticate/", "auth", "/account/authenticate/"),
        ("/data/profiles/profile/3/", "auth", "/profiles/profile/3/"),
        ("/data/electrophysiology/segment/segment_1/", "neo", "/electrophysiology/segment/segment_1/"),
        ("/data/metadata/sections/", "metadata", "/metadata/sections/"),
        ("/data/datafiles/9", "files", "/datafiles/9"),
        ("/data/acl/", "acl", "/acl/"),
        ("/data/datafiles/9/acl/", "acl", "/datafiles/9/acl/"),
    ],
)
def test_data_prefix_is_stripped(path, service, upstream):
    assert resolve(path) == Route(service, upstream, True)
    assert resolve(upstream) == Route(service, upstream, False)


def test_data_prefix_only_once_and_only_as_a_whole_segment():
    assert resolve("/data/data/account/") is None
    assert resolve("/datafiles/") == Route("files", "/datafiles/", False)  # not "/data" + "files/"
    assert resolve("/data") is None and resolve("/data/") is None  # the gateway's index
    assert strip_data_prefix("/data") == ("/", True)
    assert strip_data_prefix("/data/x") == ("/x", True)
    assert strip_data_prefix("/datax") == ("/datax", False)


@pytest.mark.parametrize(
    "path",
    [
        "/electrophysiology/segment/segment_1/acl/",
        "/electrophysiology/segment/1/acl",
        "/electrophysiology/sections/12/acl/",  # the seed's literal form
        "/electrophysiology/datafiles/9/acl/",  # the seed's literal form
        "/metadata/sections/12/acl/",
        "/metadata/sections/12/acl/bob/",
        "/datafiles/9/acl/",
        "/labels/3/acl/",
        "/selections/3/acl/",
        "/data/metadata/sections/12/acl/",
    ],
)
def test_acl_sub_resources_go_to_acl(path):
    route = resolve(path)
    assert route is not None and route.service == "acl"
    assert route.upstream_path == strip_data_prefix(path)[0]


def test_acl_as_a_type_or_id_name_is_not_an_acl_sub_resource():
    assert resolve("/datafiles/acl/").service == "files"  # only /<type>/<id>/acl/... counts
    assert resolve("/labels/acl").service == "neo"


@pytest.mark.parametrize(
    "path, service",
    [
        ("/datafiles/9/history/", "files"),
        ("/electrophysiology/analogsignal/3/history/", "neo"),
        ("/electrophysiology/segment/segment_1/history/", "neo"),
        ("/metadata/sections/12/history/", "metadata"),
        ("/labels/4/history/", "neo"),
        ("/selections/4/history/", "neo"),
        ("/profiles/profile/7/history/", "auth"),
        ("/data/datafiles/9/history/", "files"),
    ],
)
def test_history_goes_to_the_owning_service(path, service):
    assert resolve(path).service == service


@pytest.mark.parametrize(
    "path",
    [
        "/internal/revocations/",
        "/internal/",
        "/internal",
        "/data/internal/revocations/",
        "//internal/revocations/",
        "/Internal/users/",
        "/INTERNAL/",
    ],
)
def test_internal_is_never_routed(path):
    assert resolve(path) is None


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "",
        "/nothing/",
        "/accounts/",
        "/Account/",
        "/static2/",
        "/healthz-not/",
        "/account/../internal/revocations/",
        "/datafiles/./9/",
        "/electrophysiology/..",
    ],
)
def test_unknown_or_tricky_paths_are_not_routed(path):
    assert resolve(path) is None


def test_repeated_slashes_are_collapsed_and_trailing_slash_kept():
    assert resolve("//account//authenticate/") == Route("auth", "/account/authenticate/", False)
    assert resolve("/account/authenticate") == Route("auth", "/account/authenticate", False)


def test_internal_below_a_prefix_stays_with_the_prefix():
    assert resolve("/account/internal/") == Route("auth", "/account/internal/", False)


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/account/authenticate/", True),
        ("/account/authenticate", True),
        ("/account/login/", True),
        ("/account/register/", True),
        ("/account/logout/", True),
        ("/account/profile/", False),
        ("/account/", False),
        ("/account/authenticate/extra/", False),
        ("/profiles/login/", False),
    ],
)
def test_login_paths(path, expected):
    assert is_login_path(path) is expected


def test_quote_path():
    assert quote_path("/labels/a b/é/") == "/labels/a%20b/%C3%A9/"
    assert quote_path("/x/100%/") == "/x/100%25/"
    assert quote_path("/electrophysiology/segment/segment_1/") == "/electrophysiology/segment/segment_1/"
    assert quote_path("/a/b;c=d,e:f@g~h/") == "/a/b;c=d,e:f@g~h/"
