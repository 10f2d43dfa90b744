"""Labels and selections through the gateway: the neo service asks the metadata service for values."""
from __future__ import annotations


def _fields(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()["selected"][0]["fields"]


def test_label_a_signal_with_a_metadata_value_and_select_by_it(gateway, logged_in):
    ada, bob = logged_in(), logged_in()
    section = _fields(ada.post(f"{gateway}/metadata/sections/", json={"name": "Stimulus"}))
    prop = _fields(ada.post(f"{gateway}/metadata/properties/", json={
        "section_id": section["id"], "name": "colour", "values": ["red"]}))
    value = prop["values"][0]["id"]
    segment = ada.post(f"{gateway}/electrophysiology/segment/", json={"name": "trial 1"}).json()["neo_id"]
    signal = ada.post(f"{gateway}/electrophysiology/analogsignal/", json={
        "name": "V1", "segment": segment, "sampling_rate": {"units": "khz", "data": 20},
        "t_start": {"units": "ms", "data": 0}, "signal": {"units": "mv", "data": [1.0, 2.0]}}).json()["neo_id"]
    other = ada.post(f"{gateway}/electrophysiology/analogsignal/", json={
        "name": "V2", "segment": segment, "sampling_rate": {"units": "hz", "data": 1000},
        "t_start": {"units": "ms", "data": 0}, "signal": {"units": "mv", "data": [1.0]}}).json()["neo_id"]

    labelled = ada.post(f"{gateway}/labels/", json={"value_id": value, "apply_to": [signal]})
    assert labelled.status_code == 201, labelled.text
    pairs = ada.get(f"{gateway}/electrophysiology/analogsignal/{signal}/metadata/").json()["metadata"]
    assert pairs == [["colour", "red"]]

    selection = ada.post(f"{gateway}/selections/", json={
        "obj_type": "analogsignal", "save_as": "red ones",
        "querysets": [{"filter": {"label": value, "segment__name__contains": "trial"}},
                      {"filter": {"sampling_rate": 1000}}]})
    assert selection.status_code == 201, selection.text
    assert sorted(selection.json()["selected"]) == sorted([signal, other])
    assert ada.get(f"{gateway}/selections/{selection.json()['selection_id']}/").json()["object_total"] == 2
    # bob may not label ada's objects, nor see them selected
    assert bob.post(f"{gateway}/labels/", json={"value_id": value, "apply_to": [signal]}).status_code in (403, 404)
    seen_by_bob = bob.post(f"{gateway}/selections/", params={"max_results": 10000},
                           json={"obj_type": "analogsignal", "querysets": [{"filter": {}}]}).json()["selected"]
    assert not {signal, other} & set(seen_by_bob)
