"""ETag / If-None-Match (304), Last-Modified, and If-Match on updates (412 when stale)."""
from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import pytest


def etag_of(api, path, **params):
    response = api.get(path, **params)
    assert response.status_code == 200
    return response.headers["ETag"]


def test_a_get_carries_an_etag_and_if_none_match_gives_304(api):
    signal = api.create("analogsignal")["neo_id"]
    first = api.get(f"analogsignal/{signal}")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = api.get(f"analogsignal/{signal}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    listed = api.get(f"analogsignal/{signal}", headers={"If-None-Match": f'"other", {etag}'})
    assert listed.status_code == 304
    assert api.get(f"analogsignal/{signal}", headers={"If-None-Match": '"other"'}).status_code == 200


def test_an_update_changes_the_etag(api):
    segment = api.create("segment")["neo_id"]
    etag = etag_of(api, f"segment/{segment}")
    updated = api.post(f"segment/{segment}", {"name": "new"})
    assert updated.status_code == 200 and updated.headers["ETag"] != etag
    response = api.get(f"segment/{segment}", headers={"If-None-Match": etag})
    assert response.status_code == 200 and response.get_json()["name"] == "new"
    assert response.headers["ETag"] == updated.headers["ETag"]


def test_a_new_child_changes_the_parents_etag(api):
    segment = api.create("segment")["neo_id"]
    etag = etag_of(api, f"segment/{segment}")
    event = api.create("event", segment=segment)["neo_id"]
    response = api.get(f"segment/{segment}", headers={"If-None-Match": etag})
    assert response.status_code == 200 and response.get_json()["event"] == [event]


def test_representations_have_their_own_etags(api):
    signal = api.create("analogsignal", signal={"units": "mv", "data": [float(i) for i in range(50)]})["neo_id"]
    path = f"analogsignal/{signal}"
    tags = {
        etag_of(api, path),
        etag_of(api, path, q="info"),
        etag_of(api, path, start_index=5),
        etag_of(api, path, start_index=6),
        etag_of(api, path, downsample=10),
        etag_of(api, path, format="npy"),
    }
    assert len(tags) == 6
    windowed = api.get(path, start_index=5)
    assert api.get(path, start_index=5, headers={"If-None-Match": windowed.headers["ETag"]}).status_code == 304
    npy = api.get(path, format="npy")
    assert api.get(path, format="npy", headers={"If-None-Match": npy.headers["ETag"]}).status_code == 304


def test_last_modified_is_an_http_date_that_moves_with_updates(api):
    segment = api.create("segment")["neo_id"]
    first = parsedate_to_datetime(api.get(f"segment/{segment}").headers["Last-Modified"])
    assert first.tzinfo is not None
    time.sleep(1.05)
    api.post(f"segment/{segment}", {"name": "later"})
    second = parsedate_to_datetime(api.get(f"segment/{segment}").headers["Last-Modified"])
    assert second > first


def test_if_match_with_the_current_etag_updates(api):
    segment = api.create("segment")["neo_id"]
    etag = etag_of(api, f"segment/{segment}")
    response = api.post(f"segment/{segment}", {"name": "first"}, headers={"If-Match": etag})
    assert response.status_code == 200, response.get_json()
    response = api.post(f"segment/{segment}", {"name": "second"}, headers={"If-Match": response.headers["ETag"]})
    assert response.status_code == 200
    assert api.post(f"segment/{segment}", {"name": "third"}, headers={"If-Match": "*"}).status_code == 200


def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(api):
    segment = api.create("segment", name="original")["neo_id"]
    stale = etag_of(api, f"segment/{segment}")
    assert api.post(f"segment/{segment}", {"name": "by someone else"}).status_code == 200
    response = api.post(f"segment/{segment}", {"name": "mine"}, headers={"If-Match": stale})
    assert response.status_code == 412
    assert response.get_json()["message_type"] == "precondition_failed"
    assert api.get(f"segment/{segment}").get_json()["name"] == "by someone else"
    assert api.post(f"segment/{segment}", {"name": "x"}, headers={"If-Match": '"made-up"'}).status_code == 412


def test_if_match_is_stale_after_a_new_child(api):
    segment = api.create("segment")["neo_id"]
    etag = etag_of(api, f"segment/{segment}")
    api.create("event", segment=segment)
    assert api.post(f"segment/{segment}", {"name": "x"}, headers={"If-Match": etag}).status_code == 412


def test_another_user_gets_403_not_304(api, other):
    segment = api.create("segment")["neo_id"]
    etag = etag_of(api, f"segment/{segment}")
    assert other.get(f"segment/{segment}", headers={"If-None-Match": etag}).status_code == 403


def test_a_grandchild_changes_the_size_and_so_the_etag_of_a_block(api):
    block = api.create("block")["neo_id"]
    segment = api.create("segment", block=block)["neo_id"]
    etag = etag_of(api, f"block/{block}")
    api.create("analogsignal", segment=segment)
    response = api.get(f"block/{block}", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.get_json()["size"] == 32


def test_a_childs_new_array_changes_the_etag_of_its_segment(api):
    segment = api.create("segment")["neo_id"]
    signal = api.create("analogsignal", segment=segment)["neo_id"]
    etag = etag_of(api, f"segment/{segment}")
    api.post(f"analogsignal/{signal}", {"signal": {"units": "mv", "data": [0.0] * 100}})
    response = api.get(f"segment/{segment}", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.get_json()["size"] == 800
