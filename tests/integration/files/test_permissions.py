"""Permissions of datafiles (docs/permissions.md): the acl service's changes and the friendships the
files worker consumes (handlers called straight, without a broker), who may read, change and
delete, anonymous reads of public files, and the internal ACL endpoint."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pymongo
import pytest

from services.files.acl import acl_handlers, apply_permissions_changed
from shared.access import acl_of
from shared.friends import friendship_handlers
from tests.integration.files.conftest import Api, envelope, number


@pytest.fixture
def apply(db):
    """`apply(*changes)` -> how many datafiles changed, from an `acl.permissions.changed` envelope."""
    def run(*changes, by=None, reason="acl"):
        event = envelope("acl.permissions.changed", {"changes": list(changes), "by": by, "reason": reason})
        return apply_permissions_changed(db, event)

    return run


def _doc(db, datafile_id):
    return db["datafiles"].find_one({"_id": number(datafile_id)}, {"_outbox": 0, "_outbox_pending": 0})


def change(resource, version, owner, *, level=3, shared=None, readers=(), writers=()):
    return {"resource": resource, "owner": owner, "safety_level": level, "shared_with": dict(shared or {}),
            "readers": list(readers), "writers": list(writers), "version": version}


def share(api, fields, version, *, level=3, users=None):
    """The change the acl service sends when `api` sets its datafile's ACL; `users`: {Api: 1 | 2}."""
    users = users or {}
    return change(fields["id"], version, api.user_id, level=level, shared={u.username: lvl for u, lvl in users.items()},
                  readers=[u.user_id for u in users], writers=[u.user_id for u, lvl in users.items() if lvl == 2])


@pytest.fixture
def friends(db):
    handlers = friendship_handlers(db)
    clock = iter(datetime(2030, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=i) for i in range(10**6))

    def run(kind, owner, friend):
        """`owner` counts (added) or stops counting (removed) `friend` as a friend."""
        event = envelope(f"auth.friendship.{kind}", {"user_id": owner.user_id, "friend_id": friend.user_id},
                         occurred_at=next(clock))
        handlers[event["type"]](event)

    return run


@pytest.fixture
def anonymous(client):
    return client


def listed(caller, owner, **params):
    """(ids, object_total) of `owner`'s datafiles in `caller`'s list (caller: an Api or the bare client)."""
    params = {"owner": owner.username, **params}
    if isinstance(caller, Api):
        response = caller.get("/datafiles/", **params)
    else:
        response = caller.get("/datafiles/", query_string=params)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return [item["fields"]["id"] for item in body["selected"]], body["object_total"]


# --- applying the acl service's changes -----------------------------------------------------------

def test_an_acl_change_updates_the_datafile(api, other, apply, db):
    fields = api.upload("a.txt", b"abc", convert=0)
    assert apply(share(api, fields, 1, level=1, users={other: 2})) == 1
    doc = _doc(db, fields["id"])
    assert doc["safety_level"] == 1 and doc["shared_with"] == {other.username: 2}
    assert doc["readers"] == [other.user_id] and doc["writers"] == [other.user_id] and doc["acl_version"] == 1
    assert doc["owner"] == api.user_id and doc["version"] == 1  # the datafile's own version is not the ACL's
    shown = api.fields(fields["id"])
    assert shown["safety_level"] == 1 and shown["shared_with"] == {other.username: 2}


def test_a_repeated_or_older_change_changes_nothing(api, other, apply, db):
    fields = api.upload("a.txt", b"abc", convert=0)
    newer = share(api, fields, 5, users={other: 1})
    assert apply(newer) == 1
    assert apply(newer) == 0  # the same event again
    assert apply(share(api, fields, 4, level=1)) == 0  # late: older than what the document holds
    assert apply(share(api, fields, 5, level=1)) == 0  # same version, other content: still not applied
    doc = _doc(db, fields["id"])
    assert (doc["safety_level"], doc["shared_with"], doc["acl_version"]) == (3, {other.username: 1}, 5)
    assert apply(share(api, fields, 6)) == 1
    assert other.get(f"/datafiles/{number(fields['id'])}/").status_code == 403


def test_foreign_and_malformed_ids_are_ignored(api, apply, db):
    fields = api.upload("a.txt", b"abc", convert=0)
    n = number(fields["id"])
    before = _doc(db, fields["id"])
    changes = [change(resource, 9, api.user_id, level=1) for resource in
               (f"section_{n}", f"segment_{n}", f"block_{n}", str(n), f"Datafile_{n}", f"datafile_{n}x", "datafile_",
                "garbage", "datafile_0", "")]
    handle = acl_handlers(db)["acl.permissions.changed"]
    handle(envelope("acl.permissions.changed", {"changes": changes, "by": api.user_id, "reason": "bulk"}))
    assert _doc(db, fields["id"]) == before
    assert apply_permissions_changed(db, envelope("acl.permissions.changed", {"changes": []})) == 0
    # A change of a datafile that does not exist creates nothing.
    apply_permissions_changed(db, envelope("acl.permissions.changed", {"changes": [change("datafile_987654321", 1, 1)]}))
    assert db["datafiles"].count_documents({"_id": 987654321}) == 0


def test_a_mixed_event_applies_only_the_datafiles(api, apply, db):
    first, second = api.upload("a.txt", b"a", convert=0), api.upload("b.txt", b"b", convert=0)
    handle = acl_handlers(db)["acl.permissions.changed"]
    handle(envelope("acl.permissions.changed", {"changes": [
        change("section_1", 3, api.user_id, level=1), change(first["id"], 3, api.user_id, level=1),
        change("segment_1", 3, api.user_id, level=1), change(second["id"], 1, api.user_id, level=2)]}))
    assert _doc(db, first["id"])["safety_level"] == 1 and _doc(db, second["id"])["safety_level"] == 2


# --- friends ---------------------------------------------------------------------------------------

def test_a_friendly_datafile_is_read_by_the_owners_friends(api, other, users, apply, friends):
    stranger = users()
    fields = api.upload("friendly.txt", b"for friends", convert=0)
    path = f"/datafiles/{number(fields['id'])}/"
    apply(change(fields["id"], 1, api.user_id, level=2))
    assert other.get(path).status_code == 403 and listed(other, api) == ([], 0)

    friends("added", api, other)  # api counts other as a friend
    friends("added", other, stranger)  # one-way, and not api's
    assert other.get(path).status_code == 200
    download = other.get(path + "download/")
    assert download.status_code == 200 and download.data == b"for friends"
    assert listed(other, api) == ([fields["id"]], 1)
    assert listed(other, api, visibility="shared") == ([], 0)  # friendly is not shared
    assert other.post(path, {"caption": "mine"}).status_code == 403  # friends read, never write
    assert other.delete(path).status_code == 403
    assert stranger.get(path).status_code == 403

    friends("removed", api, other)
    assert other.get(path).status_code == 403 and other.get(path + "download/").status_code == 403
    assert listed(other, api) == ([], 0)


def test_a_private_datafile_is_not_read_by_friends(api, other, friends):
    fields = api.upload("private.txt", b"mine", convert=0)
    friends("added", api, other)
    assert other.get(f"/datafiles/{number(fields['id'])}/").status_code == 403
    assert listed(other, api) == ([], 0)


# --- shares ----------------------------------------------------------------------------------------

def test_shared_for_reading(api, other, apply):
    fields = api.upload("shared.txt", b"to read", convert=0)
    path = f"/datafiles/{number(fields['id'])}/"
    apply(share(api, fields, 1, users={other: 1}))
    assert other.get(path).status_code == 200
    assert other.get(path + "download/").data == b"to read"
    assert listed(other, api) == ([fields["id"]], 1)
    assert listed(other, api, visibility="shared") == ([fields["id"]], 1)
    response = other.post(path, {"caption": "changed"})
    assert response.status_code == 403 and response.get_json()["message_type"] == "forbidden"
    assert other.get(path + "convert/").status_code == 403
    assert other.delete(path).status_code == 403
    assert api.fields(fields["id"])["caption"] == ""


def test_shared_for_writing(api, other, apply):
    fields = api.upload("shared.txt", b"to change", convert=0)
    path = f"/datafiles/{number(fields['id'])}/"
    apply(share(api, fields, 1, users={other: 2}))
    response = other.post(path, {"caption": "changed by a collaborator"})
    assert response.status_code == 200, response.get_json()
    assert api.fields(fields["id"])["caption"] == "changed by a collaborator"
    response = other.get(path + "convert/")
    assert response.status_code == 202 and response.get_json()["task_id"]  # writers may convert
    response = other.delete(path, force="true")
    assert response.status_code == 403 and "owner" in response.get_json()["message"]  # only the owner deletes
    assert api.delete(path, force="true").status_code == 200


# --- public, private, missing ----------------------------------------------------------------------

def test_a_public_datafile_is_read_anonymously(api, other, apply, anonymous):
    public = api.upload("public.txt", b"for everyone", convert=0)
    private = api.upload("private.txt", b"mine", convert=0)
    path = f"/datafiles/{number(public['id'])}/"
    apply(change(public["id"], 1, api.user_id, level=1))

    response = anonymous.get(path)
    assert response.status_code == 200
    body = response.get_json()
    assert body["selected"][0]["fields"]["id"] == public["id"] and body["logged_in_as"] is None
    download = anonymous.get(path + "download/")
    assert download.status_code == 200 and download.data == b"for everyone"
    assert anonymous.get(path + "binary/").status_code == 200
    assert listed(anonymous, api) == ([public["id"]], 1)  # the total counts only what may be read
    assert listed(anonymous, api, **{"max-results": 1, "offset": 1}) == ([], 1)
    assert listed(anonymous, api, visibility="public") == ([public["id"]], 1)
    assert listed(anonymous, api, visibility="private") == ([], 0)
    assert listed(anonymous, api, visibility="shared") == ([], 0)
    assert listed(other, api) == ([public["id"]], 1)
    assert listed(api, api) == ([public["id"], private["id"]], 2)

    # Every write needs a login.
    for response in (anonymous.post(path, json={"caption": "x"}), anonymous.patch(path, json={"caption": "x"}),
                     anonymous.delete(path), anonymous.post(path + "convert/"), anonymous.get(path + "convert/")):
        assert response.status_code == 401, response.get_json()
        assert response.get_json()["message_type"] == "not_authenticated"
    assert anonymous.post("/datafiles/", data={}, content_type="multipart/form-data").status_code == 401
    # A signed-in stranger reads it but may not change it.
    assert other.get(path).status_code == 200
    assert other.post(path, {"caption": "x"}).status_code == 403
    assert other.delete(path).status_code == 403
    assert api.fields(public["id"])["caption"] == ""


def test_a_private_datafile_answers_401_anonymous_403_stranger_404_missing(api, other, anonymous):
    fields = api.upload("private.txt", b"mine", convert=0)
    path = f"/datafiles/{number(fields['id'])}/"
    for suffix in ("", "download/", "binary/", "convert/"):
        response = anonymous.get(path + suffix)
        assert response.status_code == 401 and response.get_json()["message_type"] == "not_authenticated", suffix
        response = other.get(path + suffix)
        assert response.status_code == 403 and response.get_json()["message_type"] == "forbidden", suffix
    assert anonymous.get(path, query_string={"format": "csv"}).status_code == 401
    assert other.post(path, {"caption": "x"}).status_code == 403 and other.delete(path).status_code == 403
    assert listed(anonymous, api) == ([], 0) and listed(other, api) == ([], 0)
    for caller in (anonymous, other):
        for missing in ("/datafiles/987654321/", "/datafiles/987654321/download/", "/datafiles/section_1/"):
            response = caller.get(missing)
            assert response.status_code == 404 and response.get_json()["message_type"] == "not_found", missing
    assert other.post("/datafiles/987654321/", {"caption": "x"}).status_code == 404
    assert other.delete("/datafiles/987654321/").status_code == 404


def test_a_running_conversion_is_visible_to_readers(api, other, apply, db):
    fields = api.upload("queued.txt", b"1,2,3", convert=0)
    path = f"/datafiles/{number(fields['id'])}/"
    assert api.get(path + "convert/").status_code == 202  # queued (no worker in this module)
    apply(share(api, fields, 1, users={other: 1}))
    response = other.get(path + "convert/")
    assert response.status_code == 202 and response.get_json()["task_id"] == api.fields(fields["id"])["last_task_id"]
    assert other.post(path + "convert/").status_code == 202  # the running task, nothing queued anew
    assert db["datafiles"].find_one({"_id": number(fields["id"])})["version"] == 2


# --- sections, moves, the created event --------------------------------------------------------------

def _metadata_db(api):
    config = api.client.application.config
    return pymongo.MongoClient(config["MONGO_URL"])[config["MONGO_DB_PREFIX"] + "metadata"]


def test_upload_into_a_section_starts_with_its_acl_and_moving_keeps_it(api, other, db):
    section, plain = api.section("shared folder"), api.section("plain folder")
    _metadata_db(api)["sections"].update_one({"_id": number(section["id"])}, {"$set": {
        "safety_level": 2, "shared_with": {other.username: 2}, "readers": [other.user_id],
        "writers": [other.user_id], "acl_version": 7}})
    fields = api.upload("data.txt", b"1,2,3", convert=0, section_id=section["id"])
    doc = db["datafiles"].find_one({"_id": number(fields["id"])})
    assert acl_of(doc) == {"owner": api.user_id, "safety_level": 2, "shared_with": {other.username: 2},
                           "readers": [other.user_id], "writers": [other.user_id]}
    assert "acl_version" not in doc  # the section's version is not the datafile's
    (created,) = [e for e in doc["_outbox"] if e["type"] == "files.datafile.created"]
    assert created["payload"]["acl"] == acl_of(doc) and created["payload"]["section_id"] == number(section["id"])

    response = api.post(f"/datafiles/{number(fields['id'])}/", {"section": plain["id"]})
    assert response.status_code == 200
    moved = db["datafiles"].find_one({"_id": number(fields["id"])})
    assert moved["section"] == number(plain["id"]) and acl_of(moved) == acl_of(doc)
    assert [e["type"] for e in moved["_outbox"]][-2:] == ["files.datafile.moved", "files.datafile.updated"]


def test_a_private_upload_announces_its_acl(api, db):
    fields = api.upload("alone.txt", b"x", convert=0)
    doc = db["datafiles"].find_one({"_id": number(fields["id"])})
    (created,) = [e for e in doc["_outbox"] if e["type"] == "files.datafile.created"]
    assert created["payload"]["acl"] == {"owner": api.user_id, "safety_level": 3, "shared_with": {}, "readers": [],
                                         "writers": []}
    assert created["payload"]["section_id"] is None


# --- the internal ACL endpoint ---------------------------------------------------------------------

def test_the_internal_acl_endpoint(api, other, apply, anonymous):
    section = api.section("acl folder")
    fields = api.upload("in.txt", b"x", convert=0, section_id=section["id"])
    loose = api.upload("loose.txt", b"y", convert=0)
    resource = fields["id"]

    response = anonymous.get(f"/internal/acl/{resource}/")  # no identity needed
    assert response.status_code == 200
    assert response.get_json() == {"resource": resource, "owner": api.user_id, "safety_level": 3, "shared_with": {},
                                   "readers": [], "writers": [], "acl_version": 0,
                                   "parents": [f"section_{number(section['id'])}"]}
    assert anonymous.get(f"/internal/acl/{loose['id']}/").get_json()["parents"] == []

    apply(share(api, fields, 3, level=2, users={other: 1}))
    body = anonymous.get(f"/internal/acl/{resource}").get_json()
    assert (body["safety_level"], body["shared_with"], body["readers"], body["acl_version"]) == (
        2, {other.username: 1}, [other.user_id], 3)

    assert api.delete(f"/datafiles/{number(loose['id'])}/").status_code == 200
    for wrong in (loose["id"], "datafile_987654321", f"section_{number(section['id'])}", f"segment_{number(resource)}",
                  str(number(resource)), "garbage"):
        response = anonymous.get(f"/internal/acl/{wrong}/")
        assert response.status_code == 404, wrong
        assert response.get_json()["message_type"] == "not_found"
