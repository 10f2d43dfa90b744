"""Conditional GETs (304) of NEO objects through the gateway, and what they leave in its upstream pool.

Kept apart from the seed replay: while the bug below stands, a 304 leaves a broken pooled connection
in the gateway thread that served it, and the next request with a body on that thread fails.
"""
from __future__ import annotations

import pytest


@pytest.fixture
def user(logged_in, gateway):
    session = logged_in()
    session.base = f"{gateway}/electrophysiology"
    return session


def _drain(user, signal):
    """GETs are retried once by the gateway, so they discard a broken pooled connection harmlessly."""
    for _ in range(40):
        user.get(f"{user.base}/analogsignal/{signal}/", params={"q": "info"})


def test_if_none_match_through_the_gateway_is_304(user):
    signal = user.post(f"{user.base}/analogsignal/", json={
        "name": "s", "signal": {"units": "mV", "data": [1.0, 2.0]}, "t_start": {"units": "ms", "data": 0},
        "sampling_rate": {"units": "Hz", "data": 20000}}).json()["neo_id"]
    first = user.get(f"{user.base}/analogsignal/{signal}/")
    cached = user.get(f"{user.base}/analogsignal/{signal}/", headers={"If-None-Match": first.headers["ETag"]})
    try:
        assert cached.status_code == 304
        assert cached.content == b""
        assert cached.headers["ETag"] == first.headers["ETag"]
    finally:
        _drain(user, signal)


def test_requests_after_a_304_through_the_gateway_still_succeed(user):
    signal = user.post(f"{user.base}/analogsignal/", json={
        "name": "s", "signal": {"units": "mV", "data": [1.0, 2.0]}, "t_start": {"units": "ms", "data": 0},
        "sampling_rate": {"units": "Hz", "data": 20000}}).json()["neo_id"]
    etag = user.get(f"{user.base}/analogsignal/{signal}/").headers["ETag"]
    assert user.get(f"{user.base}/analogsignal/{signal}/", headers={"If-None-Match": etag}).status_code == 304
    codes = [user.post(f"{user.base}/segment/", json={"name": f"after 304 #{i}"}).status_code for i in range(60)]
    _drain(user, signal)
    assert codes == [201] * 60, f"{codes.count(503)} of 60 POSTs after one 304 got 503"
