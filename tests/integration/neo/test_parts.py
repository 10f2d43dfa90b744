"""Partial reads (`q=full|info|data|parents|children`) and `cascade=true`."""
from __future__ import annotations

import pytest

from tests.integration.neo.spec import CHILDREN, DATA_FIELDS, PARENTS

ENVELOPE = {"message", "message_type", "logged_in_as"}


@pytest.fixture
def tree(api):
    """block > segment > (analogsignal, event); recordingchannel > analogsignal."""
    block = api.create("block", name="Experiment")["neo_id"]
    segment = api.create("segment", name="Trial 1", block=block)["neo_id"]
    channel = api.create("recordingchannel")["neo_id"]
    signal = api.create("analogsignal", name="LFP", segment=segment, recordingchannel=channel)["neo_id"]
    event = api.create("event", segment=segment)["neo_id"]
    return {"block": block, "segment": segment, "channel": channel, "signal": signal, "event": event}


def part(api, path, q):
    response = api.get(path, q=q)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert ENVELOPE <= set(body)
    return {k: v for k, v in body.items() if k not in ENVELOPE}


def test_q_full_is_the_default(api, tree):
    path = f"analogsignal/{tree['signal']}"
    assert part(api, path, "full") == {k: v for k, v in api.get(path).get_json().items() if k not in ENVELOPE}


def test_q_info_has_attributes_and_generic_information_only(api, tree):
    body = part(api, f"analogsignal/{tree['signal']}", "info")
    assert body["name"] == "LFP" and body["author"] == api.username and body["size"] == 32
    assert "date_created" in body
    for field in (*DATA_FIELDS["analogsignal"], *PARENTS["analogsignal"]):
        assert field not in body


def test_q_data_has_data_fields_only(api, tree):
    body = part(api, f"analogsignal/{tree['signal']}", "data")
    assert set(body) == {"neo_id", *DATA_FIELDS["analogsignal"]}
    assert body["signal"] == {"units": "mv", "data": [1.0, 2.0, 3.0, 4.0]}


def test_q_parents_has_parents_only(api, tree):
    body = part(api, f"analogsignal/{tree['signal']}", "parents")
    assert body == {"neo_id": tree["signal"], "segment": tree["segment"], "analogsignalarray": None,
                    "recordingchannel": tree["channel"]}


def test_q_children_has_children_lists_only(api, tree):
    body = part(api, f"segment/{tree['segment']}", "children")
    expected = {child: [] for child in CHILDREN["segment"]}
    expected.update(analogsignal=[tree["signal"]], event=[tree["event"]])
    assert body == {"neo_id": tree["segment"], **expected}
    assert part(api, f"event/{tree['event']}", "children") == {"neo_id": tree["event"]}


@pytest.mark.parametrize("q,has,lacks", [("INFO", "label", "time"), (" Data ", "time", "label"), ("", "time", None)])
def test_q_is_case_and_space_insensitive(api, tree, q, has, lacks):
    body = part(api, f"event/{tree['event']}", q)
    assert has in body and (lacks is None or lacks not in body)


@pytest.mark.parametrize("params", [{"q": "everything"}, {"q": "1"}, {"cascade": "maybe"}, {"format": "xml"}])
def test_a_bad_read_parameter_is_400(api, tree, params):
    response = api.get(f"segment/{tree['segment']}", **params)
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_parameter"


@pytest.mark.parametrize("flag", ["true", "True", "1", "yes"])
def test_cascade_nests_whole_children_objects(api, tree, flag):
    body = api.get(f"block/{tree['block']}", cascade=flag).get_json()
    assert body["name"] == "Experiment"
    assert body["recordingchannelgroup"] == []
    [segment] = body["segment"]
    assert segment["neo_id"] == tree["segment"] and segment["name"] == "Trial 1" and segment["block"] == tree["block"]
    [signal] = segment["analogsignal"]
    assert signal["neo_id"] == tree["signal"] and signal["name"] == "LFP"
    assert signal["signal"] == {"units": "mv", "data": [1.0, 2.0, 3.0, 4.0]}
    assert signal["recordingchannel"] == tree["channel"]
    [event] = segment["event"]
    assert event["time"] == {"units": "ms", "data": 1.5}
    assert segment["spiketrain"] == []


def test_cascade_false_keeps_ids(api, tree):
    body = api.get(f"block/{tree['block']}", cascade="false").get_json()
    assert body["segment"] == [tree["segment"]]


def test_cascade_of_an_object_without_children_is_the_object(api, tree):
    body = api.get(f"event/{tree['event']}", cascade="true").get_json()
    assert body["neo_id"] == tree["event"] and body["label"] == "Event"


def test_cascade_shows_only_readable_children(api, other, tree):
    other.create("segment")  # not linked: another user's objects never hang under mine
    body = api.get(f"block/{tree['block']}", cascade="true").get_json()
    assert [s["neo_id"] for s in body["segment"]] == [tree["segment"]]


def test_cascade_beyond_the_object_limit_is_400_cascade_too_large(make_app, users):
    small = make_app(CASCADE_MAX_OBJECTS=3).test_client()
    api = users()
    api.client = small
    block = api.create("block")["neo_id"]
    segment = api.create("segment", block=block)["neo_id"]
    api.create("event", segment=segment)
    api.create("event", segment=segment)
    assert api.get(f"block/{block}", cascade="true").status_code == 200  # 3 descendants: at the limit
    api.create("event", segment=segment)
    response = api.get(f"block/{block}", cascade="true")
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "cascade_too_large"
    assert api.get(f"block/{block}").status_code == 200  # without cascade it is fine
    assert api.get(f"segment/{segment}", cascade="true").status_code == 200


def test_cascade_beyond_the_sample_limit_is_400_cascade_too_large(make_app, users):
    small = make_app(CASCADE_MAX_SAMPLES=10).test_client()
    api = users()
    api.client = small
    segment = api.create("segment")["neo_id"]
    api.create("analogsignal", segment=segment, signal={"units": "mv", "data": [0.0] * 8})
    assert api.get(f"segment/{segment}", cascade="true").status_code == 200
    api.create("analogsignal", segment=segment, signal={"units": "mv", "data": [0.0] * 8})
    response = api.get(f"segment/{segment}", cascade="true")
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "cascade_too_large"


def test_a_signal_too_large_for_json_asks_for_a_window(make_app, users):
    small = make_app(JSON_MAX_SAMPLES=50).test_client()
    api = users()
    api.client = small
    signal = api.create("analogsignal", signal={"units": "mv", "data": [0.0] * 100})["neo_id"]
    response = api.get(f"analogsignal/{signal}")
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "too_large_for_json"
    assert api.get(f"analogsignal/{signal}", q="info").status_code == 200
    assert len(api.get(f"analogsignal/{signal}", start_index=0, samples_count=50).get_json()["signal"]["data"]) == 50
    assert len(api.get(f"analogsignal/{signal}", downsample=10).get_json()["signal"]["data"]) == 10
