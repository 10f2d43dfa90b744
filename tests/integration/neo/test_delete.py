"""Deleting objects: children guard (409), cascade, parents' children lists, HDF5 files."""
from __future__ import annotations

import pytest

from tests.integration.neo.conftest import h5_files
from tests.integration.neo.spec import CHILDREN, LINKS


def array_file(db, data_dir, type_name, neo_id):
    doc = db[f"neo_{type_name}"].find_one({"neo_id": neo_id})
    return data_dir / doc["arrays"]["file"]


def test_delete_a_leaf(api, db, data_dir):
    segment = api.create("segment")["neo_id"]
    signal = api.create("analogsignal", segment=segment)["neo_id"]
    path = array_file(db, data_dir, "analogsignal", signal)
    assert path.exists()
    response = api.delete(f"analogsignal/{signal}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["deleted"] == [signal] and body["message_type"] == "object_deleted"
    assert body["logged_in_as"] == api.username
    assert api.get(f"analogsignal/{signal}").status_code == 404
    assert api.get(f"segment/{segment}").get_json()["analogsignal"] == []
    assert not path.exists()
    assert api.get("analogsignal").get_json()["object_total"] == 0
    assert api.delete(f"analogsignal/{signal}").status_code == 404


@pytest.mark.parametrize("parent_type", sorted(CHILDREN))
def test_an_object_with_children_is_409_has_children_without_cascade(api, parent_type):
    child_type = CHILDREN[parent_type][0]
    parent = api.create(parent_type)["neo_id"]
    child = api.create(child_type, **{parent_type: parent})["neo_id"]
    response = api.delete(f"{parent_type}/{parent}")
    assert response.status_code == 409
    assert response.get_json()["message_type"] == "has_children"
    assert response.get_json()["details"]["children"] == {child_type: 1}
    assert api.get(f"{parent_type}/{parent}").get_json()[child_type] == [child]
    assert api.get(f"{child_type}/{child}").status_code == 200


@pytest.mark.parametrize("child_type,parent_type", LINKS)
def test_after_unlinking_or_deleting_its_child_a_parent_deletes_without_cascade(api, child_type, parent_type):
    parent = api.create(parent_type)["neo_id"]
    kept = api.create(child_type, **{parent_type: parent})["neo_id"]
    gone = api.create(child_type, **{parent_type: parent})["neo_id"]
    assert api.delete(f"{child_type}/{gone}").status_code == 200
    assert api.get(f"{parent_type}/{parent}").get_json()[child_type] == [kept]
    assert api.post(f"{child_type}/{kept}", {parent_type: None}).status_code == 200
    assert api.delete(f"{parent_type}/{parent}").status_code == 200
    assert api.get(f"{child_type}/{kept}").status_code == 200


def test_cascade_deletes_every_descendant_and_their_files(api, db, data_dir):
    block = api.create("block")["neo_id"]
    segment = api.create("segment", block=block)["neo_id"]
    group = api.create("recordingchannelgroup", block=block)["neo_id"]
    channel = api.create("recordingchannel", recordingchannelgroup=group)["neo_id"]
    signal = api.create("analogsignal", segment=segment, recordingchannel=channel)["neo_id"]
    unit = api.create("unit", recordingchannel=channel)["neo_id"]
    train = api.create("spiketrain", segment=segment, unit=unit)["neo_id"]
    outside = api.create("analogsignal")["neo_id"]
    files = [array_file(db, data_dir, "analogsignal", signal), array_file(db, data_dir, "spiketrain", train)]
    kept_file = array_file(db, data_dir, "analogsignal", outside)

    response = api.delete(f"block/{block}", cascade="true")
    assert response.status_code == 200, response.get_json()
    assert sorted(response.get_json()["deleted"]) == sorted([block, segment, group, channel, signal, unit, train])
    for neo_id in (block, segment, group, channel, signal, unit, train):
        assert api.get(f"{neo_id.rsplit('_', 1)[0]}/{neo_id}").status_code == 404
    assert not any(path.exists() for path in files)
    assert kept_file.exists() and api.get(f"analogsignal/{outside}").status_code == 200
    assert api.get("segment").get_json()["object_total"] == 0


def test_cascade_of_a_middle_object_updates_its_parent(api):
    block = api.create("block")["neo_id"]
    segments = [api.create("segment", block=block)["neo_id"] for _ in range(2)]
    api.create("event", segment=segments[0])
    assert api.delete(f"segment/{segments[0]}", cascade="true").status_code == 200
    assert api.get(f"block/{block}").get_json()["segment"] == [segments[1]]
    assert api.get(f"info/{block}").get_json()["descendants"] == {"segment": 1}


def test_deleting_a_child_updates_the_parents_size(api):
    segment = api.create("segment")["neo_id"]
    signals = [api.create("analogsignal", segment=segment)["neo_id"] for _ in range(2)]
    assert api.get(f"segment/{segment}", q="info").get_json()["size"] == 64
    api.delete(f"analogsignal/{signals[0]}")
    assert api.get(f"segment/{segment}", q="info").get_json()["size"] == 32


def test_another_user_cannot_delete(api, other, db, data_dir):
    signal = api.create("analogsignal")["neo_id"]
    response = other.delete(f"analogsignal/{signal}")
    assert response.status_code == 403
    assert api.get(f"analogsignal/{signal}").status_code == 200
    assert array_file(db, data_dir, "analogsignal", signal).exists()


@pytest.mark.parametrize("raw", ["segment_999999", "999999", "0", "abc", "block_1"])
def test_deleting_a_missing_or_mistyped_id_is_404(api, raw):
    assert api.delete(f"segment/{raw}").status_code == 404


def test_delete_removes_the_file_of_an_updated_array_too(api, data_dir):
    before = set(h5_files(data_dir))
    signal = api.create("analogsignal")["neo_id"]
    api.post(f"analogsignal/{signal}", {"signal": {"units": "mv", "data": [9.0] * 5}})
    assert len(set(h5_files(data_dir)) - before) == 1  # the old version's file is gone already
    api.delete(f"analogsignal/{signal}")
    assert set(h5_files(data_dir)) - before == set()
