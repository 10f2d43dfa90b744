"""Token extraction, verification and the revocation cache (no I/O: a fake fetch function)."""
from __future__ import annotations

import threading

import pytest

from gateway.auth import RevocationCache, RevokedToken, check_token, extract_token
from shared.tokens import InvalidToken, issue_token

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


def test_cache_merges_answers_and_moves_since_with_overlap():
    clock = Clock()
    seen = []
    answers = [
        {"revoked": [{"jti": "a", "exp": 2000, "revoked_at": 990.0}], "now": 1000.0},
        {"revoked": [{"jti": "b", "exp": 1500, "revoked_at": 1000.5}], "now": 1001.0},
    ]

    def fetch(since):
        seen.append(since)
        return answers.pop(0)

    cache = RevocationCache("", 0.3, fetch=fetch, clock=clock)
    assert cache.enabled and not cache.synced
    cache.poll_once()
    cache.poll_once()
    assert seen == [0.0, 998.0]
    assert cache.synced
    assert cache.is_revoked("a") and cache.is_revoked("b") and not cache.is_revoked("c")
    clock.now = 1600.0  # b expired: dropped at the next poll, and never reported revoked meanwhile
    assert not cache.is_revoked("b")
    cache.apply({"revoked": [], "now": 1600.0})
    assert len(cache) == 1


def test_cache_keeps_what_it_knows_when_auth_fails():
    calls = {"n": 0}
    ready = threading.Event()

    def fetch(since):
        calls["n"] += 1
        if calls["n"] == 1:
            return {"revoked": [{"jti": "a", "exp": 10**10, "revoked_at": 1.0}], "now": 2.0}
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
    cache = RevocationCache("", 0.3, fetch=lambda since: {"revoked": [], "now": 1.0})
    cache.poll_once()
    token, session = issue_token(user_id=5, username="eve", secret=SECRET, ttl_seconds=60)
    cache.ensure_started = lambda: None  # no thread in a unit test
    assert check_token(token, SECRET, cache).username == "eve"
    with pytest.raises(InvalidToken):
        check_token(token, "another-secret-0123456789abcdef-xyz", cache)
    with pytest.raises(InvalidToken):
        check_token("garbage", SECRET, cache)
    cache.apply({"revoked": [{"jti": session.session_id, "exp": session.expires_at, "revoked_at": 2.0}], "now": 3.0})
    with pytest.raises(RevokedToken):
        check_token(token, SECRET, cache)


def test_tokens_are_not_delayed_when_auth_is_down_at_start():
    def fetch(since):
        raise ConnectionError("auth is down")

    cache = RevocationCache("", 0.05, fetch=fetch)
    token, _ = issue_token(user_id=2, username="fay", secret=SECRET, ttl_seconds=60)
    try:
        import time

        started = time.monotonic()
        for _ in range(5):
            assert check_token(token, SECRET, cache).username == "fay"
        assert time.monotonic() - started < 0.9
        assert not cache.synced
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
    cache = RevocationCache("", 0.3, fetch=lambda since: {"revoked": [], "now": 1.0})
    cache.poll_once()
    cache.ensure_started = lambda: None  # type: ignore[method-assign]
    cached = VerifiedTokens()
    assert check_token(token, secret, cache, cached) == session
    cache.apply({"revoked": [{"jti": session.session_id, "exp": session.expires_at, "revoked_at": 2.0}], "now": 3.0})
    with pytest.raises(RevokedToken):
        check_token(token, secret, cache, cached)
