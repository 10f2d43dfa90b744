"""Storage quotas for NEO array data (issue 11, item 7; docs/neo.md, *Storage quota*): the bytes of
the arrays a user owns count against `ARRAY_QUOTA_BYTES`; over it, 507 `quota_exceeded` before
anything is written; deletes and smaller replacements give bytes back."""
from __future__ import annotations

import numpy as np
import pytest

from services.neo.quota import COUNTERS
from tests.integration.neo.conftest import change, h5_files, minimal_body
from tests.integration.neo.test_binary import multipart, signal_fields

QUOTA = 8_000  # bytes: 1,000 float64 samples


@pytest.fixture
def quota_client(make_app):
    return make_app(ARRAY_QUOTA_BYTES=QUOTA).test_client()


@pytest.fixture
def limited(users, quota_client):
    """`limited()` -> a new user of an app with the quota."""

    def new():
        api = users()
        api.client = quota_client
        return api

    return new


@pytest.fixture
def used(db):
    def of(api) -> int:
        doc = db[COUNTERS].find_one({"_id": api.user_id})
        return int(doc["used"]) if doc else 0

    return of


def signal(samples: int) -> dict:
    return {**minimal_body("analogsignal"), "signal": {"units": "mv", "data": [0.5] * samples}}


def assert_quota_exceeded(response, *, requested: int, used_bytes: int):
    assert response.status_code == 507, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "quota_exceeded"
    assert body["details"] == {"quota_bytes": QUOTA, "used_bytes": used_bytes, "requested_bytes": requested}


def test_creates_count_until_the_quota_then_507_with_nothing_written(limited, used, counts, data_dir):
    api = limited()
    first = api.post("analogsignal", signal(600))
    assert first.status_code == 201 and first.get_json()["size"] == 4_800
    assert used(api) == 4_800
    before, files = counts("analogsignal"), h5_files(data_dir)
    assert_quota_exceeded(api.post("analogsignal", signal(500)), requested=4_000, used_bytes=4_800)
    npy = multipart(api, "analogsignal", signal_fields(), {"signal": np.zeros(500, dtype=np.float64)})
    assert_quota_exceeded(npy, requested=4_000, used_bytes=4_800)
    listed = api.post("analogsignal", [signal(100), signal(200), signal(150)])  # 3,600 bytes together
    assert_quota_exceeded(listed, requested=3_600, used_bytes=4_800)
    assert counts("analogsignal") == before  # no document, no id used
    assert h5_files(data_dir) == files  # no HDF5 file
    assert used(api) == 4_800
    assert api.post("analogsignal", signal(400)).status_code == 201  # exactly up to the quota
    assert used(api) == QUOTA


def test_the_stored_dtype_is_what_counts(limited, used):
    api = limited()
    response = multipart(api, "analogsignal", signal_fields(), {"signal": np.zeros(2_000, dtype=np.float32)})
    assert response.status_code == 201 and used(api) == 8_000


def test_objects_without_arrays_need_no_quota(limited, used):
    api = limited()
    assert api.post("analogsignal", signal(1_000)).status_code == 201
    assert api.post("segment", [{"name": f"s{i}"} for i in range(3)]).status_code == 201
    assert used(api) == QUOTA


def test_a_delete_gives_the_bytes_back(limited, used):
    api = limited()
    neo_id = api.post("analogsignal", signal(1_000)).get_json()["neo_id"]
    assert api.post("analogsignal", signal(1)).status_code == 507
    assert api.delete(f"analogsignal/{neo_id}").status_code == 200
    assert used(api) == 0
    assert api.post("analogsignal", signal(1_000)).status_code == 201


def test_a_cascade_delete_gives_back_every_descendants_bytes(limited, used):
    api = limited()
    segment = api.create("segment")["neo_id"]
    for samples in (300, 200):
        assert api.post("analogsignal", {**signal(samples), "segment": segment}).status_code == 201
    assert used(api) == 4_000
    assert api.delete(f"segment/{segment}", cascade="true").status_code == 200
    assert used(api) == 0


def test_a_replacement_counts_the_difference(limited, used, data_dir):
    api = limited()
    neo_id = api.post("analogsignal", signal(500)).get_json()["neo_id"]  # 4,000
    grown = api.post(f"analogsignal/{neo_id}", {"signal": {"units": "mv", "data": [1.0] * 900}})
    assert grown.status_code == 200 and used(api) == 7_200
    files = h5_files(data_dir)
    too_big = api.post(f"analogsignal/{neo_id}", {"signal": {"units": "mv", "data": [1.0] * 1_001}})
    assert_quota_exceeded(too_big, requested=808, used_bytes=7_200)
    assert h5_files(data_dir) == files
    assert api.get(f"analogsignal/{neo_id}", q="info").get_json()["size"] == 7_200  # unchanged
    shrunk = multipart(api, f"analogsignal/{neo_id}", {"signal": {"units": "mv"}}, {"signal": np.zeros(100)})
    assert shrunk.status_code == 200 and used(api) == 800
    assert api.post(f"analogsignal/{neo_id}", {"name": "renamed"}).status_code == 200  # no array: no change
    assert used(api) == 800


def test_a_collaborator_replacing_arrays_uses_the_owners_quota(limited, used, permissions):
    owner, collaborator = limited(), limited()
    neo_id = owner.post("analogsignal", signal(500)).get_json()["neo_id"]
    permissions(change(neo_id, owner, 3, {collaborator: 2}))
    assert collaborator.post(f"analogsignal/{neo_id}", {"signal": {"units": "mv", "data": [1.0] * 800}}).status_code == 200
    assert (used(owner), used(collaborator)) == (6_400, 0)
    refused = collaborator.post(f"analogsignal/{neo_id}", {"signal": {"units": "mv", "data": [1.0] * 2_000}})
    assert refused.status_code == 507
    assert owner.username in refused.get_json()["message"]


def test_each_user_has_a_quota_of_their_own(limited, used):
    alice, bob = limited(), limited()
    assert alice.post("analogsignal", signal(1_000)).status_code == 201
    assert bob.post("analogsignal", signal(1_000)).status_code == 201
    assert (used(alice), used(bob)) == (QUOTA, QUOTA)


def test_objects_stored_before_counting_are_counted_at_the_first_reservation(limited, used, db):
    api = limited()
    assert api.post("analogsignal", signal(700)).status_code == 201
    db[COUNTERS].delete_one({"_id": api.user_id})  # as if stored before quotas were counted
    assert_quota_exceeded(api.post("analogsignal", signal(400)), requested=3_200, used_bytes=5_600)
    assert used(api) == 5_600


def test_without_a_quota_bytes_are_still_counted(api, used):
    neo_id = api.post("analogsignal", signal(10_000)).get_json()["neo_id"]
    assert used(api) == 80_000
    api.delete(f"analogsignal/{neo_id}")
    assert used(api) == 0
