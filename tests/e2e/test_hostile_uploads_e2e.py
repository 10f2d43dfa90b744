"""The issue's attack, tried as a new user would through the gateway, and a reader that never ends:
the system keeps its secrets and keeps converting other users' files. (Every class of hostile file:
tests/integration/files/test_hostile_uploads.py.)"""
from __future__ import annotations

import time

import pytest

from tests import hostile_files as hostile


@pytest.fixture
def user(logged_in, gateway):
    session = logged_in()
    session.base = gateway
    return session


def _upload(user, upload):
    name, data = upload
    response = user.post(f"{user.base}/datafiles/", files={"raw_file": (name, data)})
    assert response.status_code == 201, response.text
    return response.json()["selected"][0]["fields"]["id"].rsplit("_", 1)[1]


def _state(user, number, states=("converted", "failed", "non_convertible"), timeout=90.0):
    deadline = time.monotonic() + timeout
    while True:
        fields = user.get(f"{user.base}/datafiles/{number}/").json()["selected"][0]["fields"]
        if fields["current_state"] in states:
            return fields
        assert time.monotonic() < deadline, fields
        time.sleep(0.1)


def test_an_hdf5_upload_pointing_at_the_workers_environment_yields_no_secret(user, system):
    number = _upload(user, hostile.external_storage("/proc/self/environ"))
    fields = _state(user, number)
    assert fields["current_state"] == "failed"
    assert "external storage is refused" in fields["operations_log"]
    listed = user.get(f"{user.base}/electrophysiology/analogsignal/").json()
    assert listed["object_total"] == 0  # no signal holds the worker's environment
    secrets = [line.partition("=")[2] for line in (system.var_dir / "secrets.env").read_text().splitlines()]
    assert secrets and not any(value and value in str(fields) for value in secrets)


def test_a_reader_that_never_ends_does_not_hold_up_other_users(user, logged_in, gateway):
    stuck = _upload(user, hostile.reader_that_never_ends())
    _state(user, stuck, states=("converting",), timeout=30)
    other = logged_in()
    other.base = gateway
    quick = _upload(other, ("quick.csv", b"1,2,3\n"))
    assert _state(other, quick, timeout=60)["current_state"] == "converted"
    stopped = _state(user, stuck, timeout=120)
    assert stopped["current_state"] == "failed" and "CPU-time limit" in stopped["operations_log"]


def test_a_yaml_alias_bomb_imported_as_odml_is_a_clear_400(user):
    name, data = hostile.yaml_alias_bomb()
    response = user.post(f"{user.base}/metadata/import/", data=data, params={"format": "yaml"},
                         headers={"Content-Type": "application/x-yaml"})
    assert response.status_code == 400, response.text
    assert response.json()["message_type"] == "invalid_document" and "aliases" in response.json()["message"]
