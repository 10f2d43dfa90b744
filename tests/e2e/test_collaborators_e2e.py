"""What collaborators and strangers get through the gateway (issue 11, item 7): a section lists only
the datafiles the caller may read, and an editor (share level 2) cannot take the owner's
properties and values away, while a move keeps the owner (docs/permissions.md)."""
from __future__ import annotations

import pytest
import requests

from stack.procs import wait_until

PROPAGATION_TIMEOUT = 10.0  # ACL changes reach the services through events


def _fields(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()["selected"][0]["fields"]


def _eventually(check) -> bool:
    return wait_until(check, timeout=PROPAGATION_TIMEOUT, interval=0.05)


def _share(gateway, owner, resource_url, body) -> None:
    response = owner.post(f"{resource_url}acl/", json=body)
    assert response.status_code == 200, response.text


def _upload(gateway, user, name, section) -> str:
    return _fields(user.post(f"{gateway}/datafiles/", files={"raw_file": (name, name.encode() * 10)},
                             data={"convert": "0", "section_id": section}))["id"]


@pytest.fixture
def cleanup(gateway):
    """Deletes (as their owners, with force) what a test made public: other tests list all they may read."""
    made: list[tuple[requests.Session, str]] = []
    yield lambda user, path: made.append((user, path))
    for user, path in reversed(made):
        user.delete(f"{gateway}{path}", params={"force": "true"})


def test_a_section_lists_only_the_datafiles_each_caller_may_read(gateway, logged_in, cleanup):
    owner, collaborator, stranger, anonymous = logged_in(), logged_in(), logged_in(), requests.Session()
    section = _fields(owner.post(f"{gateway}/metadata/sections/", json={"name": "Recordings"}))["id"]
    url = f"{gateway}/metadata/sections/{section}/"
    cleanup(owner, f"/metadata/sections/{section}/")
    private = _upload(gateway, owner, "private.bin", section)  # the section is private: so is the file
    cleanup(owner, f"/datafiles/{private}/")
    _share(gateway, owner, url, {"shared_with": {collaborator.username: 2}})
    assert _eventually(lambda: collaborator.get(url).status_code == 200)
    # the collaborator's file stays theirs, readable by the section's owner too
    theirs = _upload(gateway, collaborator, "collaborators.bin", section)
    cleanup(collaborator, f"/datafiles/{theirs}/")
    _share(gateway, owner, url, {"safety_level": 1, "shared_with": {collaborator.username: 2}})
    assert _eventually(lambda: anonymous.get(url).status_code == 200)
    public = _upload(gateway, owner, "public.bin", section)  # uploaded into the public section: public
    cleanup(owner, f"/datafiles/{public}/")

    def shown(caller) -> set[str]:
        return set(_fields(caller.get(url))["datafiles"])

    everything = {private, theirs, public}
    assert _eventually(lambda: shown(owner) == everything), shown(owner)  # links follow the files' events
    assert shown(collaborator) == {theirs, public}
    assert shown(stranger) == {public}
    assert shown(anonymous) == {public}
    for caller in (collaborator, stranger, anonymous):  # each agrees with the datafiles themselves
        assert caller.get(f"{gateway}/datafiles/{private}/").status_code in (401, 403)

    # shared with the stranger: listed in the section as soon as the file itself answers them
    _share(gateway, owner, f"{gateway}/datafiles/{private}/", {"shared_with": {stranger.username: 1}})
    assert _eventually(lambda: stranger.get(f"{gateway}/datafiles/{private}/").status_code == 200)
    assert shown(stranger) == {public, private}
    assert shown(anonymous) == {public}

    # a copy by the collaborator links only what they may read
    copy = collaborator.post(f"{gateway}/metadata/sections/", params={
        "source_section_id": section, "mode": "copy", "with_datafiles": "true"})
    assert copy.status_code == 201, copy.text
    assert copy.json()["datafile_links_created"] == 2 and set(_fields(copy)["datafiles"]) == {theirs, public}


def test_an_editor_cannot_take_the_owners_property_and_value_away(gateway, logged_in):
    owner, editor = logged_in(), logged_in()
    section = _fields(owner.post(f"{gateway}/metadata/sections/", json={"name": "Shared notes"}))["id"]
    prop = _fields(owner.post(f"{gateway}/metadata/properties/", json={
        "section_id": section, "name": "colour", "values": ["red", "green"]}))
    prop_url, value_url = f"{gateway}/metadata/properties/{prop['id']}/", f"{gateway}/metadata/values/{prop['values'][0]['id']}/"
    _share(gateway, owner, f"{gateway}/metadata/sections/{section}/", {"shared_with": {editor.username: 2}})
    assert _eventually(lambda: editor.post(prop_url, json={"unit": "nm"}).status_code == 200)  # edits: yes
    theirs = _fields(editor.post(f"{gateway}/metadata/sections/", json={"name": "The editor's"}))["id"]
    for method, url, body in [("DELETE", prop_url, None), ("POST", prop_url, {"section_id": theirs}),
                              ("DELETE", value_url, None), ("POST", prop_url, {"values": ["green"]})]:
        response = editor.request(method, url, json=body)
        assert response.status_code == 403, (method, url, body, response.text)
        assert response.json()["message_type"] == "forbidden"
    after = _fields(owner.get(prop_url))
    assert (after["section_id"], after["owner"], [v["value"] for v in after["values"]]) == \
        (section, owner.username, ["red", "green"])
    # the editor's own property: they delete or move it; moving keeps its owner
    mine = _fields(editor.post(f"{gateway}/metadata/properties/", json={"section_id": section, "name": "mine"}))
    moved = _fields(editor.post(f"{gateway}/metadata/properties/{mine['id']}/", json={"section_id": theirs}))
    assert (moved["section_id"], moved["owner"]) == (theirs, editor.username)
    assert editor.delete(f"{gateway}/metadata/properties/{mine['id']}/").status_code == 200
