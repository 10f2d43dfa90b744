"""Seed 001 "DATA MANAGEMENT" request examples replayed through the gateway by a logged-in user,
plus the binary (.npy) round trip through the gateway."""
from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import requests

DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
SEGMENT_CHILDREN = ("analogsignalarray", "eventarray", "irsaanalogsignal", "epoch", "epocharray", "spiketrain",
                    "spike", "analogsignal", "event")
N = 6000


def number(neo_id: str) -> int:
    return int(neo_id.rsplit("_", 1)[1])


@pytest.fixture
def user(logged_in, gateway):
    session = logged_in()
    session.base = f"{gateway}/electrophysiology"
    return session


@pytest.fixture
def recording(user):
    """A segment, a recording channel and the seed's "LFP FIX Signal-5" (20 kHz, t_start 0 ms) in them."""
    segment = user.post(f"{user.base}/segment/", json={"name": "Trial 12"}).json()["neo_id"]
    channel = user.post(f"{user.base}/recordingchannel/", json={"name": "Channel 13"}).json()["neo_id"]
    values = 100 * np.sin(np.arange(N) / 20.0)
    response = user.post(f"{user.base}/analogsignal/", json={
        "name": "LFP FIX Signal-5",
        "signal": {"units": "mV", "data": values.tolist()},
        "t_start": {"units": "ms", "data": 0},
        "sampling_rate": {"units": "Hz", "data": 20000},
        "segment": segment,
        "recordingchannel": channel,
    })
    assert response.status_code == 201, response.text
    return {"segment": segment, "channel": channel, "signal": response.json()["neo_id"], "values": values}


def test_seed_create_a_segment(user):
    response = user.post(f"{user.base}/segment/", json={
        "name": "Trial 12, Saccade, Stim. 45 grad color red",
        "filedatetime": "10/05/2011",
        "index": 12,
    })
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.match(r"^segment_\d+$", body["neo_id"])
    assert body["name"] == "Trial 12, Saccade, Stim. 45 grad color red"
    assert body["index"] == 12
    assert body["filedatetime"] == "2011-05-10 00:00:00"
    assert body["author"] == user.username and body["logged_in_as"] == user.username
    assert body["message"] == "Object created successfully."
    assert body["message_type"] == "object_created"
    assert DATE.match(body["date_created"])
    assert body["block"] is None and body["size"] == 0
    for child in SEGMENT_CHILDREN:
        assert body[child] == []


def test_seed_update_a_segment_name_and_link_it_to_a_block(user):
    segment = user.post(f"{user.base}/segment/", json={"name": "Trial 12, Saccade, Stim. 45 grad color red",
                                                       "index": 1}).json()
    block = user.post(f"{user.base}/block/", json={"name": "Experiment"}).json()["neo_id"]
    response = user.post(f"{user.base}/segment/{number(segment['neo_id'])}/", json={
        "name": "Trial 12, Saccade, Stim. 45 grad color green",
        "block": block,
    })
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["neo_id"] == segment["neo_id"]
    assert body["name"] == "Trial 12, Saccade, Stim. 45 grad color green"
    assert body["block"] == block
    assert body["index"] == 1  # everything else stays as it was
    assert body["date_created"] == segment["date_created"]
    assert body["message"] == "Object updated successfully. Data changes saved."
    assert body["logged_in_as"] == user.username
    assert user.get(f"{user.base}/block/{block}/").json()["segment"] == [segment["neo_id"]]


def test_seed_get_an_analogsignal(user, recording):
    response = user.get(f"{user.base}/analogsignal/{number(recording['signal'])}/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["neo_id"] == recording["signal"]
    assert body["name"] == "LFP FIX Signal-5"
    assert body["author"] == user.username and body["logged_in_as"] == user.username
    assert body["message_type"] == "retrieved" and body["message"] == "Object retrieved successfully."
    assert list(body["signal"]) == ["units", "data"] and body["signal"]["units"] == "mv"
    np.testing.assert_allclose(body["signal"]["data"], recording["values"])
    assert body["t_start"] == {"units": "ms", "data": 0}
    assert body["sampling_rate"] == {"units": "hz", "data": 20000}
    assert body["recordingchannel"] == recording["channel"]
    assert body["segment"] == recording["segment"]
    assert body["analogsignalarray"] is None
    assert DATE.match(body["date_created"])
    assert body["size"] == N * 8


def test_seed_slice_30_to_100_downsampled_to_10(user, recording):
    response = user.get(f"{user.base}/analogsignal/{number(recording['signal'])}/",
                        params={"start_index": 30, "end_index": 100, "downsample": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    data = body["signal"]["data"]
    assert len(data) == 10
    window = recording["values"][30:101]
    assert min(data) == pytest.approx(window.min()) and max(data) == pytest.approx(window.max())
    assert body["t_start"] == {"units": "ms", "data": 1.5}
    assert body["sampling_rate"] == {"units": "hz", "data": 20000}
    assert body["name"] == "LFP FIX Signal-5" and body["segment"] == recording["segment"]


def test_seed_partial_requests(user, recording):
    url = f"{user.base}/segment/{recording['segment']}/"
    children = user.get(url, params={"q": "children"}).json()
    assert children["analogsignal"] == [recording["signal"]] and "name" not in children
    info = user.get(url, params={"q": "info"}).json()
    assert info["name"] == "Trial 12" and info["size"] == N * 8 and "analogsignal" not in info
    parents = user.get(f"{user.base}/analogsignal/{recording['signal']}/", params={"q": "parents"}).json()
    assert parents["segment"] == recording["segment"] and "signal" not in parents
    data = user.get(f"{user.base}/analogsignal/{recording['signal']}/", params={"q": "data"}).json()
    assert data["t_start"] == {"units": "ms", "data": 0} and "name" not in data
    cascaded = user.get(url, params={"cascade": "True"}).json()
    assert cascaded["analogsignal"][0]["name"] == "LFP FIX Signal-5"
    assert len(cascaded["analogsignal"][0]["signal"]["data"]) == N


def test_seed_list_analogsignals(user, recording):
    more = [user.post(f"{user.base}/analogsignal/", json={
        "name": f"LFP {i}", "signal": {"units": "mV", "data": [1.0, 2.0]}, "t_start": {"units": "ms", "data": 0},
        "sampling_rate": {"units": "Hz", "data": 20000}}).json()["neo_id"] for i in range(2)]
    response = user.get(f"{user.base}/analogsignal/")
    assert response.status_code == 200
    assert response.json() == {
        "message": "Here is the list of requested objects.",
        "message_type": "object_selected",
        "logged_in_as": user.username,
        "selected": [recording["signal"], *more],
        "object_total": 3,
        "object_selected": 3,
        "selected_as_of": 0,
    }
    rest = user.get(f"{user.base}/analogsignal/", params={"range_start": 1}).json()
    assert rest["selected"] == more and rest["selected_as_of"] == 1 and rest["object_total"] == 3
    by_segment = user.get(f"{user.base}/analogsignal/", params={"segment": recording["segment"]}).json()
    assert by_segment["selected"] == [recording["signal"]]


def test_seed_list_with_the_plural_type_name_and_range_start(user, recording):
    response = user.get(f"{user.base}/analogsignals/", params={"range_start": 0})
    assert response.status_code == 200
    assert response.json()["selected"] == [recording["signal"]]


def test_binary_round_trip_through_the_gateway(user):
    values = np.linspace(-5, 5, 100_000, dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, values)
    fields = {"name": "binary", "signal": {"units": "mV"}, "t_start": {"units": "ms", "data": 0},
              "sampling_rate": {"units": "kHz", "data": 20}}
    response = user.post(f"{user.base}/analogsignal/", files={
        "json": (None, json.dumps(fields), "application/json"),
        "signal": ("signal.npy", buffer.getvalue(), "application/octet-stream"),
    })
    assert response.status_code == 201, response.text
    neo_id = response.json()["neo_id"]
    assert response.json()["size"] == values.nbytes

    whole = user.get(f"{user.base}/analogsignal/{neo_id}/", params={"format": "npy"})
    assert whole.status_code == 200 and whole.headers["Content-Type"].startswith("application/x-npy")
    array = np.load(io.BytesIO(whole.content), allow_pickle=False)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, values)

    window = user.get(f"{user.base}/analogsignal/{neo_id}/", headers={"Accept": "application/x-npy"},
                      params={"start_index": 30, "end_index": 100})
    assert window.status_code == 200
    np.testing.assert_array_equal(np.load(io.BytesIO(window.content)), values[30:101])
    assert window.headers["X-Neo-Id"] == neo_id
    assert window.headers["X-Neo-Units"] == "mv"
    assert window.headers["X-Neo-T-Start"] == "1.5 ms"
    assert window.headers["X-Neo-Sampling-Rate"] == "20.0 khz"

    assert window.headers["ETag"]  # conditional GETs through the gateway: test_neo_via_gateway_conditional.py


def test_anonymous_is_401_and_another_user_is_403_through_the_gateway(user, logged_in, gateway):
    created = user.post(f"{user.base}/segment/", json={"name": "private"})
    assert created.status_code == 201, (created.status_code, created.text)
    segment = created.json()["neo_id"]
    anonymous = requests.get(f"{gateway}/electrophysiology/segment/{segment}/")
    assert anonymous.status_code == 401
    assert requests.post(f"{gateway}/electrophysiology/segment/", json={"name": "x"}).status_code == 401
    stranger = logged_in()
    assert stranger.get(f"{gateway}/electrophysiology/segment/{segment}/").status_code == 403
    assert stranger.post(f"{gateway}/electrophysiology/segment/{segment}/", json={"name": "x"}).status_code == 403
    assert stranger.delete(f"{gateway}/electrophysiology/segment/{segment}/").status_code == 403
    assert stranger.get(f"{gateway}/electrophysiology/segment/").json()["object_total"] == 0
    assert user.get(f"{user.base}/segment/{segment}/").json()["name"] == "private"
