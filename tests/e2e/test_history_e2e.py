"""The whole story of an uploaded and converted file, told by the history endpoints through the
gateway: upload, conversion, the objects it created, a label, a share; and the user's own history."""
from __future__ import annotations

import time

import pytest


def _fields(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()["selected"][0]["fields"]


def _eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _history(session, url: str, **params) -> list[dict]:
    response = session.get(url, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message_type"] == "history" and body["object_total"] == len(body["history"])
    return body["history"]


def _actions(entries: list[dict]) -> list[str]:
    return [entry["action"] for entry in entries]


@pytest.fixture
def converted(gateway, logged_in):
    """ada uploads a CSV file that the files worker converts into a block of signals."""
    ada = logged_in()
    text = "1.0,2.0,3.0\n4.0,5.0,6.0\n"
    number = _fields(ada.post(f"{gateway}/datafiles/", files={"raw_file": ("ascii_csv.txt", text.encode())}))["id"]
    number = number.rsplit("_", 1)[1]

    def done():
        fields = _fields(ada.get(f"{gateway}/datafiles/{number}/"))
        return fields if fields["current_state"] in ("converted", "failed", "non_convertible") else None

    fields = _eventually(done, timeout=60)
    assert fields and fields["current_state"] == "converted", fields
    return ada, number, fields["extracted_info"]["blocks"][0]


def test_the_history_of_a_converted_file_tells_its_whole_story(gateway, logged_in, converted):
    ada, number, block = converted
    bob = logged_in()
    file_url = f"{gateway}/datafiles/{number}/history/"

    # upload and conversion, on the datafile
    story = _history(ada, file_url)
    assert _actions(story)[:3] == ["uploaded", "conversion_requested", "converted"], story
    assert all(entry["user"] == ada.username for entry in story)
    assert block in story[2]["result"]["created"]

    # the objects it created say where they came from
    block_story = _history(ada, f"{gateway}/electrophysiology/block/{block}/history/")
    assert block_story[0]["action"] == "created" and block_story[0]["user"] == ada.username
    assert block_story[0]["source"] == {"kind": "conversion", "resource": f"datafile_{number}"}
    assert f"the conversion of datafile {number}" in block_story[0]["description"]
    segment = ada.get(f"{gateway}/electrophysiology/block/{block}/").json()["segment"][0]
    signal = ada.get(f"{gateway}/electrophysiology/segment/{segment}/").json()["analogsignal"][0]
    signal_url = f"{gateway}/electrophysiology/analogsignal/{signal}/history/"
    assert _history(ada, signal_url)[0]["source"]["resource"] == f"datafile_{number}"

    # a label on a created signal
    section = _fields(ada.post(f"{gateway}/metadata/sections/", json={"name": "Stimulus"}))
    prop = _fields(ada.post(f"{gateway}/metadata/properties/", json={
        "section_id": section["id"], "name": "colour", "values": ["red"]}))
    value = prop["values"][0]["id"]
    assert ada.post(f"{gateway}/labels/", json={"value_id": value, "apply_to": [signal]}).status_code == 201
    labelled = _history(ada, signal_url)[-1]
    assert labelled["action"] == "labelled" and labelled["user"] == ada.username

    # a share of the file and of the block, seen by the new reader in both histories
    assert ada.post(f"{gateway}/datafiles/{number}/acl/", json={"shared_with": {bob.username: 1}}).status_code == 200
    assert ada.post(f"{gateway}/electrophysiology/block/{block}/acl/",
                    json={"shared_with": {bob.username: 1}}).status_code == 200
    assert bob.get(file_url).status_code in (200, 403)  # allowed once the change reached the files service

    def shared_in(session, url):
        entries = [e for e in _history(session, url) if e["action"] == "permissions_changed"] \
            if session.get(url).status_code == 200 else []
        return entries[-1] if entries else None

    file_share = _eventually(lambda: shared_in(bob, file_url))
    assert file_share and file_share["user"] == ada.username, file_share
    assert file_share["result"]["shared_with"] == {bob.username: 1}
    block_share = _eventually(lambda: shared_in(bob, f"{gateway}/electrophysiology/block/{block}/history/"))
    assert block_share and block_share["user"] == ada.username, block_share

    # ada's own history holds all of it, across the services; bob may not read it
    me = ada.get(f"{gateway}/account/me/").json()["user"]["id"]
    mine = _history(ada, f"{gateway}/profiles/profile/{me}/history/", max_results=1000)
    seen = {(entry["service"], entry["action"]) for entry in mine}
    for expected in [("auth", "registered"), ("files", "uploaded"), ("files", "converted"), ("neo", "created"),
                     ("metadata", "created"), ("neo", "labelled"), ("neo", "permissions_changed"),
                     ("files", "permissions_changed")]:
        assert expected in seen, (expected, seen)
    stamps = [entry["timestamp"] for entry in mine]
    assert stamps == sorted(stamps)
    assert bob.get(f"{gateway}/profiles/profile/{me}/history/").status_code == 403


def test_history_dates_and_access(gateway, logged_in, converted):
    ada, number, block = converted
    stranger = logged_in()
    url = f"{gateway}/datafiles/{number}/history/"
    assert _history(ada, url, start_date="2999-01-01") == []
    assert len(_history(ada, url, start_date="2000-01-01", end_date="2999-12-31")) >= 3
    bad = ada.get(url, params={"start_date": "yesterday"})
    assert bad.status_code == 400 and "start_date" in bad.json()["message"]
    assert stranger.get(url).status_code == 403
    assert stranger.get(f"{gateway}/electrophysiology/block/{block}/history/").status_code == 403
    assert ada.get(f"{gateway}/electrophysiology/block/{block}/history/", params={"end_date": "1999-01-01"}).json()[
        "history"] == []
