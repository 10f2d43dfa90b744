"""The login form and throttling against hostile input (issue 11, item 7): no open redirect, no
burst past the limit, no locking the owner out from elsewhere, and never a 500."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from services.auth import throttle
from services.auth.throttle import BackoffRule, Throttled, WindowRule

from .conftest import identity_headers

PASSWORD = "correct horse battery"

# -- open redirect ---------------------------------------------------------------------------------

LEAVING_THE_SITE = [
    "/\t/evil.com", "/\n/evil.com", "/\r\n/evil.com", "\t//evil.com", " //evil.com", "/\t\n/evil.com",
    "/\\evil.com", "\\\\evil.com", "\\/evil.com", "/\\/evil.com",
    "/%09/evil.com", "/%0a/evil.com", "/%0D%0A/evil.com", "/%2F/evil.com", "/%2f%2fevil.com", "%2F%2Fevil.com",
    "/%5Cevil.com", "/%5c%5cevil.com",
    "//evil.com", "///evil.com", "https://evil.com/", "http:evil.com", "HTTPS://evil.com", "//evil.com/%2F..",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "/.//evil.com", "/./\\evil.com", "/%2e//evil.com",
    "/\x00/evil.com", "\x01//evil.com", "/\x7f/evil.com", "", "evil.com", "./evil.com",
    "/" + "a" * 5000,
]
STAYING = ["/account/me/", "/metadata/sections/?name=x&max_results=5", "/electrophysiology/segment/#top", "/"]


def _browser_target(location: str) -> str:
    """Where a browser goes from a Location header on http://127.0.0.1:8000/account/authenticate/."""
    from urllib.parse import urljoin

    from services.auth.redirects import as_browser_reads

    read = as_browser_reads(location)
    assert read is not None
    return urljoin("http://127.0.0.1:8000/account/authenticate/", read)


@pytest.mark.parametrize("target", LEAVING_THE_SITE)
def test_the_login_form_never_carries_a_next_that_leaves_the_site(client, target):
    response = client.get("/account/login/", query_string={"next": target})
    assert response.status_code == 200
    assert 'name="next" value=""' in response.get_data(as_text=True)


@pytest.mark.parametrize("target", LEAVING_THE_SITE)
def test_logging_in_never_redirects_off_the_site(client, make_user, target):
    user = make_user()
    response = client.post("/account/authenticate/", data={"username": user["username"], "password": PASSWORD,
                                                           "next": target})
    assert response.status_code in (200, 303)
    if response.status_code == 303:
        assert urlsplit(_browser_target(response.headers["Location"])).netloc == "127.0.0.1:8000"
    failed = client.post("/account/authenticate/", data={"username": user["username"], "password": "wrong!",
                                                         "next": target})
    assert failed.status_code == 303
    location = failed.headers["Location"]
    assert location.startswith("../login/?error=invalid_credentials")
    assert parse_qs(urlsplit(location).query).get("next", [""]) == [""]


@pytest.mark.parametrize("target", STAYING)
def test_paths_on_the_site_are_kept(client, make_user, target):
    page = client.get("/account/login/", query_string={"next": target}).get_data(as_text=True)
    assert 'name="next" value=""' not in page
    user = make_user()
    response = client.post("/account/authenticate/", data={"username": user["username"], "password": PASSWORD,
                                                           "next": target})
    assert response.status_code == 303 and response.headers["Location"] == target
    failed = client.post("/account/authenticate/", data={"username": user["username"], "password": "wrong!",
                                                         "next": target})
    assert parse_qs(urlsplit(failed.headers["Location"]).query)["next"] == [target]  # encoded, not spliced in


def test_a_non_ascii_next_becomes_an_ascii_location(client, make_user):
    user = make_user()
    response = client.post("/account/authenticate/", data={"username": user["username"], "password": PASSWORD,
                                                           "next": "/metadata/sections/?name=Zürich"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/metadata/sections/?name=Z%C3%BCrich"


@pytest.mark.parametrize("target", [["/account/me/"], {"path": "/"}, 7, None, True, "/\ud800"])
def test_a_next_that_is_not_text_is_ignored_not_a_500(client, make_user, target):
    user = make_user()
    response = client.post("/account/authenticate/", json={"username": user["username"], "password": PASSWORD,
                                                           "next": target})
    assert response.status_code == 200 and response.get_json()["message_type"] == "authenticated"


# -- throttling through the service ---------------------------------------------------------------

def _attempt(auth_app, username, password, client_ip):
    with auth_app.test_client() as own_client:  # one client per thread
        return own_client.post("/account/authenticate/", json={"username": username, "password": password},
                               headers=identity_headers(client_ip=client_ip)).status_code


def _burst(auth_app, attempts):
    """Run the attempts at the same moment, one thread each; their status codes."""
    start = threading.Barrier(len(attempts))
    codes: list[int] = []

    def run(username, password, client_ip):
        start.wait()
        codes.append(_attempt(auth_app, username, password, client_ip))

    threads = [threading.Thread(target=run, args=attempt) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return codes


def test_a_concurrent_burst_of_wrong_passwords_cannot_exceed_the_limit(auth_app, make_user):
    user = make_user()  # LOGIN_MAX_FAILURES_PER_USER is 3 in these tests
    codes = _burst(auth_app, [(user["username"], f"wrong {n}", "198.51.100.1") for n in range(16)])
    assert codes.count(401) == 3 and codes.count(429) == 13, codes
    assert _attempt(auth_app, user["username"], PASSWORD, "198.51.100.1") == 429  # even the right one now


def test_a_concurrent_burst_over_many_usernames_cannot_exceed_the_address_limit(auth_app):
    codes = _burst(auth_app, [(f"nobody{n}", "wrong", "198.51.100.2") for n in range(16)])
    assert codes.count(401) == 6 and codes.count(429) == 10, codes  # LOGIN_MAX_FAILURES_PER_IP is 6


def test_a_strangers_failures_elsewhere_never_lock_the_owner_out(auth_app, make_user):
    owner = make_user()
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        codes = [_attempt(auth_app, owner["username"], "guess", address) for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
    assert _attempt(auth_app, owner["username"], PASSWORD, "192.0.2.10") == 200


def test_the_retry_after_is_the_back_off(client, make_user):
    user = make_user()
    for _ in range(3):
        client.post("/account/authenticate/", json={"username": user["username"], "password": "wrong"})
    response = client.post("/account/authenticate/", json={"username": user["username"], "password": PASSWORD})
    assert response.status_code == 429
    assert response.get_json()["message_type"] == "too_many_failed_logins"
    assert 1 <= int(response.headers["Retry-After"]) <= 30  # LOGIN_BACKOFF_BASE_SECONDS


@pytest.mark.parametrize("body", [{"username": "x" * 100_000, "password": "wrong"},
                                  {"username": "\x00\uffff", "password": "wrong"},
                                  {"username": "\ud800", "password": "wrong"},
                                  {"username": "x", "password": "\ud800"},
                                  {"username": {"$gt": ""}, "password": "wrong"},
                                  {"username": "x", "password": ["wrong"]}])
def test_odd_usernames_are_4xx_not_500(client, body):
    assert client.post("/account/authenticate/", json=body).status_code in (400, 401)


@pytest.mark.parametrize("field", ["email", "password", "first_name"])
def test_registering_with_a_lone_surrogate_is_4xx_not_500(client, unique, field):
    body = {"username": f"s_{unique}", "email": f"s_{unique}@example.org", "password": "long enough password",
            field: "ab\ud800cdefghij"}
    assert client.post("/account/register/", json=body).status_code in (201, 400)


# -- the throttle itself, on a clock of our own ----------------------------------------------------

BACKOFF = BackoffRule(free_attempts=3, base_seconds=30, max_seconds=900, forget_after_seconds=900)
PER_ADDRESS = WindowRule(limit=1000, window_seconds=900)
T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def _claim(db, at, username="owner", client_ip="203.0.113.5"):
    return throttle.claim_attempt(db["login_attempts"], backoff=BACKOFF, per_address=PER_ADDRESS,
                                  username=username, client_ip=client_ip, now=at)


def test_the_back_off_doubles_and_is_bounded(db):
    now = T0
    for _ in range(3):
        _claim(db, now)
    waits = []
    for _ in range(12):  # a patient attacker: one attempt each time the lock ends
        with pytest.raises(Throttled) as locked:
            _claim(db, now)
        waits.append(locked.value.retry_after)
        now += timedelta(seconds=locked.value.retry_after)
        _claim(db, now)
    assert waits[:6] == [30, 60, 120, 240, 480, 900]
    assert set(waits[6:]) == {900}  # never longer than LOGIN_BACKOFF_MAX_SECONDS


def test_the_failures_are_forgotten_after_the_window(db):
    for _ in range(3):
        _claim(db, T0)
    with pytest.raises(Throttled):
        _claim(db, T0 + timedelta(seconds=29))
    later = T0 + timedelta(seconds=30 + 900 + 1)  # the lock ended, then a quiet window
    for _ in range(3):
        _claim(db, later)


def test_success_forgets_the_failures_and_gives_the_address_attempt_back(db):
    for _ in range(2):
        _claim(db, T0)
    claim = _claim(db, T0)
    address = db["login_attempts"].find_one({"_id": "ip:203.0.113.5"})
    assert address["attempts"] == 3
    throttle.forget_success(db["login_attempts"], claim)
    assert db["login_attempts"].find_one({"_id": claim.backoff_key}) is None
    assert db["login_attempts"].find_one({"_id": "ip:203.0.113.5"})["attempts"] == 2
    for _ in range(3):
        _claim(db, T0)  # three free attempts again


def test_a_refused_attempt_does_not_count_against_the_address(db):
    for _ in range(3):
        _claim(db, T0)
    for _ in range(5):
        with pytest.raises(Throttled):
            _claim(db, T0)
    assert db["login_attempts"].find_one({"_id": "ip:203.0.113.5"})["attempts"] == 3


def test_usernames_are_one_record_whatever_their_case(db):
    for name in ("Owner", "OWNER", "owner"):
        _claim(db, T0, username=name)
    with pytest.raises(Throttled):
        _claim(db, T0, username="oWnEr")
