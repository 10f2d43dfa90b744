"""Token extraction, verification and the revocation cache (no I/O: a fake fetch function)."""
from __future__ import annotations

import threading

import pytest

from gateway.auth import (
    RevocationCache,
    RevocationsUnavailable,
    RevokedToken,
    check_token,
    client_address,
    extract_token,
    parse_trusted_proxies,
)
from shared.config import ConfigError
from shared.tokens import LEEWAY_SECONDS, InvalidToken, issue_token

SECRET = "unit-jwt-secret-0123456789abcdef-xyz"


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_extract_token_prefers_bearer_then_cookie():
    assert extract_token({"Authorization": "Bearer abc"}, {"sessionid": "xyz"}, "sessionid").token == "abc"
    assert extract_token({"Authorization": "bearer  abc "}, {}, "sessionid").token == "abc"
    cookie = extract_token({}, {"sessionid": "xyz"}, "sessionid")
    assert cookie.token == "xyz" and cookie.from_cookie
    assert extract_token({"Authorization": "Basic dXNlcjpwdw=="}, {}, "sessionid") is None
    assert extract_token({"Authorization": "Bearer "}, {"sessionid": ""}, "sessionid") is None
    assert extract_token({}, {"other": "xyz"}, "sessionid") is None


def entry(seq, jti, exp=10**10):
    return {"seq": seq, "jti": jti, "exp": exp}


def test_cache_asks_for_the_revocations_after_the_last_number_it_has():
    clock = Clock()
    seen = []
    answers = [
        {"revoked": [entry(1, "a", 2000), entry(2, "b", 1500)], "last": 2, "more": False},
        {"revoked": [], "last": 2, "more": False},
        {"revoked": [entry(3, "c", 2000)], "last": 3, "more": False},
    ]

    def fetch(after):
        seen.append(after)
        return answers.pop(0)

    cache = RevocationCache("", 0.3, fetch=fetch, clock=clock)
    assert cache.enabled and not cache.synced
    for _ in range(3):
        cache.poll_once()
    assert seen == [0, 2, 2]
    assert cache.synced and cache.last_seq == 3
    assert cache.is_revoked("a") and cache.is_revoked("b") and cache.is_revoked("c") and not cache.is_revoked("d")
    # b expired at 1500; a token is still accepted for LEEWAY_SECONDS after: so is its revocation kept
    clock.now = 1500.0 + LEEWAY_SECONDS
    assert cache.is_revoked("b")
    clock.now = 1600.0
    assert not cache.is_revoked("b")
    cache.apply({"revoked": [], "last": 3, "more": False})
    assert len(cache) == 2


def test_cache_reads_every_page_before_it_counts_as_synced():
    pages = {0: {"revoked": [entry(1, "a"), entry(2, "b")], "last": 2, "more": True},
             2: {"revoked": [entry(3, "c")], "last": 3, "more": False}}
    seen = []
    cache = RevocationCache("", 0.3, fetch=lambda after: seen.append(after) or pages[after])
    cache.poll_once()
    assert seen == [0, 2] and cache.synced and len(cache) == 3


def test_cache_follows_a_log_that_is_behind_it():
    # the auth database restored from a backup: numbers it gives out again must not be skipped
    answers = [{"revoked": [entry(7, "a")], "last": 7, "more": False},
               {"revoked": [], "last": 4, "more": False},
               {"revoked": [entry(5, "e")], "last": 5, "more": False}]
    seen = []
    cache = RevocationCache("", 0.3, fetch=lambda after: seen.append(after) or answers.pop(0))
    for _ in range(3):
        cache.poll_once()
    assert seen == [0, 7, 4] and cache.is_revoked("e") and cache.is_revoked("a")


@pytest.mark.parametrize("answer", [{"revoked": []}, {"revoked": [], "last": "3"}, {"revoked": [], "last": -1}, {}])
def test_an_unreadable_answer_is_no_sync(answer):
    cache = RevocationCache("", 0.3, fetch=lambda after: answer)
    with pytest.raises(ValueError):
        cache.poll_once()
    assert not cache.synced and cache.last_seq == 0


def test_malformed_entries_are_skipped():
    clock = Clock()
    cache = RevocationCache("", 0.3, fetch=lambda after: {
        "revoked": [None, "x", {"seq": 1}, {"jti": "", "exp": 5}, {"jti": "ok", "exp": "soon"}], "last": 1,
        "more": False}, clock=clock)
    cache.poll_once()
    assert len(cache) == 1 and cache.is_revoked("ok")  # no usable expiry: kept for a day


def test_cache_keeps_what_it_knows_when_auth_fails():
    calls = {"n": 0}
    ready = threading.Event()

    def fetch(after):
        calls["n"] += 1
        if calls["n"] == 1:
            return {"revoked": [entry(1, "a")], "last": 1, "more": False}
        if calls["n"] >= 4:
            ready.set()
        raise ConnectionError("auth is down")

    cache = RevocationCache("", 0.05, fetch=fetch)
    cache.ensure_started()
    try:
        assert ready.wait(3)
        assert cache.is_revoked("a")
    finally:
        cache.stop()


def test_disabled_without_auth_url():
    cache = RevocationCache("", 0.3)
    assert not cache.enabled
    cache.ensure_started()  # no thread, no I/O
    token, session = issue_token(user_id=1, username="ann", secret=SECRET, ttl_seconds=60)
    assert check_token(token, SECRET, cache) == session


def test_check_token():
    cache = RevocationCache("", 0.3, fetch=lambda after: {"revoked": [], "last": 0, "more": False})
    cache.poll_once()
    token, session = issue_token(user_id=5, username="eve", secret=SECRET, ttl_seconds=60)
    cache.ensure_started = lambda: None  # no thread in a unit test
    assert check_token(token, SECRET, cache).username == "eve"
    with pytest.raises(InvalidToken):
        check_token(token, "another-secret-0123456789abcdef-xyz", cache)
    with pytest.raises(InvalidToken):
        check_token("garbage", SECRET, cache)
    cache.apply({"revoked": [entry(1, session.session_id, session.expires_at)], "last": 1, "more": False})
    with pytest.raises(RevokedToken):
        check_token(token, SECRET, cache)


def test_tokens_are_refused_until_the_first_sync_succeeded():
    import time

    state = {"down": True}

    def fetch(after):
        if state["down"]:
            raise ConnectionError("auth is down")
        return {"revoked": [], "last": 0, "more": False}

    cache = RevocationCache("", 0.05, fetch=fetch)
    token, _ = issue_token(user_id=2, username="fay", secret=SECRET, ttl_seconds=60)
    try:
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(RevocationsUnavailable) as refused:
                check_token(token, SECRET, cache)
        # the first request waits for the first poll only; later ones are refused at once
        assert time.monotonic() - started < 1.5
        assert refused.value.http_status == 503 and refused.value.headers == {"Retry-After": "1"}
        assert refused.value.message_type == "revocations_unavailable"
        assert not cache.synced
        state["down"] = False
        assert cache.wait_synced(2)
        assert check_token(token, SECRET, cache).username == "fay"
    finally:
        cache.stop()


def test_verified_tokens_are_reused_until_they_expire_and_revocation_still_applies(monkeypatch):
    import time as real_time

    from gateway import auth
    from gateway.auth import VerifiedTokens

    secret = "s" * 40
    calls = []
    original = auth.verify_token
    monkeypatch.setattr(auth, "verify_token", lambda token, key: calls.append(token) or original(token, key))
    verified = VerifiedTokens(capacity=2)
    token, session = issue_token(user_id=1, username="ann", secret=secret, ttl_seconds=60)
    assert verified.verify(token, secret) == session
    assert verified.verify(token, secret) == session
    assert len(calls) == 1
    with pytest.raises(InvalidToken):
        verified.verify(token, "another secret that is long enough!!")
    others = [issue_token(user_id=i, username="x", secret=secret, ttl_seconds=60)[0] for i in (2, 3)]
    for other in others:
        verified.verify(other, secret)
    verified.verify(token, secret)  # pushed out by the two newer ones: verified again
    assert len(calls) == 5  # first use, the wrong secret, two others, and again after eviction
    wall_clock = real_time.time
    monkeypatch.setattr(auth.time, "time", lambda: wall_clock() + 3600)
    with pytest.raises(InvalidToken):
        verified.verify(token, secret)  # expired: never served from the cache

    monkeypatch.setattr(auth.time, "time", wall_clock)
    cache = RevocationCache("", 0.3, fetch=lambda after: {"revoked": [], "last": 0, "more": False})
    cache.poll_once()
    cache.ensure_started = lambda: None  # type: ignore[method-assign]
    cached = VerifiedTokens()
    assert check_token(token, secret, cache, cached) == session
    cache.apply({"revoked": [entry(1, session.session_id, session.expires_at)], "last": 1, "more": False})
    with pytest.raises(RevokedToken):
        check_token(token, secret, cache, cached)


# -- the client address ---------------------------------------------------------------------------

PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.0.2.1 2001:db8::/32")


@pytest.mark.parametrize("peer, forwarded, expected", [
    # no proxy configured, or a peer that is not one: the header is the client's own words
    ("203.0.113.9", ["1.2.3.4"], "203.0.113.9"),
    ("203.0.113.9", [], "203.0.113.9"),
    # a trusted proxy: the rightmost address it did not add itself
    ("10.0.0.5", ["198.51.100.7"], "198.51.100.7"),
    ("10.0.0.5", ["6.6.6.6, 198.51.100.7"], "198.51.100.7"),  # the client wrote 6.6.6.6 itself
    ("10.0.0.5", ["6.6.6.6", "198.51.100.7, 10.1.2.3"], "198.51.100.7"),  # two proxies, two headers
    ("192.0.2.1", ["198.51.100.7:51234"], "198.51.100.7"),
    ("10.0.0.5", ["[2001:db9::1]:443"], "2001:db9::1"),
    ("::ffff:10.0.0.5", ["198.51.100.7"], "198.51.100.7"),  # an IPv4 proxy seen on a dual-stack socket
    ("10.0.0.5", ["10.0.0.9, 10.0.0.8"], "10.0.0.9"),  # all proxies: the farthest one
    ("10.0.0.5", [], "10.0.0.5"),
    # garbage from a proxy: believe no further than the last trusted hop
    ("10.0.0.5", ["198.51.100.7, unknown"], "10.0.0.5"),
    ("10.0.0.5", ["198.51.100.7, nonsense, 10.0.0.6"], "10.0.0.6"),
])
def test_forwarded_for_is_read_only_from_trusted_proxies(peer, forwarded, expected):
    assert client_address(peer, forwarded, PROXIES) == expected


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_address("10.0.0.5", ["198.51.100.7"], ()) == "10.0.0.5"
    assert client_address(None, ["198.51.100.7"], PROXIES) is None


@pytest.mark.parametrize("spec", ["10.0.0.0/33", "proxy.example.org", "10.0.0.1;10.0.0.2"])
def test_trusted_proxies_must_be_addresses(spec):
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        parse_trusted_proxies(spec)


def test_trusted_proxies_may_be_empty():
    assert parse_trusted_proxies("") == () and parse_trusted_proxies(" , ") == ()
