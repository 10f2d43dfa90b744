"""Permissions (docs/permissions.md): the acl service's changes, friendships, and who may do what.

The acl and friendship consumers' handlers are called directly with envelopes, as the worker's
consumers would call them (no RabbitMQ here).
"""
from __future__ import annotations

import itertools
import uuid

import pytest

from services.metadata.acl import ACL_QUEUE, FRIENDSHIPS_QUEUE, acl_handlers, apply_changes, consumer_specs
from services.metadata.store import MetadataStore
from shared.friends import friendship_handlers
from tests.integration.metadata.conftest import number, only

_clock = itertools.count(1)


def envelope(kind: str, payload: dict, producer: str = "acl") -> dict:
    # occurred_at grows with every envelope (the friendship projection orders events by it)
    return {"event_id": uuid.uuid4().hex, "type": kind, "occurred_at": f"2030-01-01T00:00:00.{next(_clock):09d}Z",
            "producer": producer, "payload": payload}


def change(resource, owner, version, safety_level=3, shared=None):
    """An `acl.permissions.changed` change; `shared` maps Api objects to 1 (read) or 2 (read and write)."""
    shared = shared or {}
    return {"resource": resource if isinstance(resource, str) else resource["id"], "owner": owner.user_id,
            "safety_level": safety_level, "shared_with": {u.username: level for u, level in shared.items()},
            "readers": [u.user_id for u in shared], "writers": [u.user_id for u, level in shared.items() if level == 2],
            "version": version}


@pytest.fixture
def permissions_changed(db):
    handler = acl_handlers(MetadataStore(db))["acl.permissions.changed"]

    def send(*changes, event=None):
        event = event or envelope("acl.permissions.changed", {"changes": list(changes), "by": None, "reason": "acl"})
        handler(event)
        return event

    return send


@pytest.fixture
def friendship(db):
    handlers = friendship_handlers(db)

    def send(kind, user, friend):
        handlers[f"auth.friendship.{kind}"](envelope(f"auth.friendship.{kind}", {"user_id": user.user_id,
                                                                                "friend_id": friend.user_id}, "auth"))

    return send


@pytest.fixture
def stranger(users):
    return users()


@pytest.fixture
def owned(api):
    """A section of `api` with a property (two values) and a subsection."""
    section = api.section("Experiment")
    prop = api.prop(section, "colour", ["red", "green"])
    child = api.section("Trial", parent=section)
    return {"section": section, "prop": prop, "value": prop["values"][0], "child": child}


def paths(owned) -> dict[str, str]:
    return {"section": f"sections/{owned['section']['id']}", "prop": f"properties/{owned['prop']['id']}",
            "value": f"values/{owned['value']['id']}"}


def acl_fields(doc) -> tuple:
    return (doc.get("safety_level"), doc.get("shared_with"), doc.get("readers"), doc.get("writers"), doc.get("acl_version"))


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["fields"]["id"] for item in response.get_json()["selected"]]


# --- the acl service's changes -------------------------------------------------------------------

def test_the_consumers_and_their_queues(db):
    specs = {spec.queue: spec for spec in consumer_specs(db)}
    assert set(specs) == {ACL_QUEUE, FRIENDSHIPS_QUEUE} == {"metadata.acl", "metadata.friendships"}
    assert set(specs["metadata.acl"].handlers) == {"acl.permissions.changed"}
    assert set(specs["metadata.friendships"].handlers) == {"auth.friendship.added", "auth.friendship.removed"}
    from services.metadata.worker import consumers
    assert [spec.queue for spec in consumers(db)] == ["metadata.datafile-links", "metadata.acl", "metadata.friendships"]


def test_a_change_updates_the_section_and_its_properties_not_its_subsections(api, other, anonymous, owned, db,
                                                                             permissions_changed):
    permissions_changed(change(owned["section"], api, 1, safety_level=1, shared={other: 2}))
    section = db["sections"].find_one({"_id": number(owned["section"]["id"])})
    expected = (1, {other.username: 2}, [other.user_id], [other.user_id], 1)
    assert acl_fields(section) == expected
    assert acl_fields(db["properties"].find_one({"_id": number(owned["prop"]["id"])})) == expected
    child = db["sections"].find_one({"_id": number(owned["child"]["id"])})
    assert acl_fields(child) == (3, {}, [], [], None)  # a subsection is a resource of its own
    for path in paths(owned).values():
        assert anonymous.get(path).status_code == 200, path
        assert other.get(path).status_code == 200, path
    assert other.post(paths(owned)["value"], {"value": "blue"}).status_code == 200
    assert api.fields(paths(owned)["section"])["safety_level"] == 1


def test_the_same_change_twice_and_an_older_one_after_a_newer_change_nothing(api, other, owned, db,
                                                                            permissions_changed):
    store = MetadataStore(db)
    newer = change(owned["section"], api, 5, safety_level=2, shared={other: 1})
    event = permissions_changed(newer)

    def snapshot():
        return (acl_fields(db["sections"].find_one({"_id": number(owned["section"]["id"])})),
                acl_fields(db["properties"].find_one({"_id": number(owned["prop"]["id"])})))

    after = snapshot()
    assert after[0] == after[1] == (2, {other.username: 1}, [other.user_id], [], 5)
    permissions_changed(event=event)  # a redelivery
    assert snapshot() == after
    permissions_changed(change(owned["section"], api, 4, safety_level=1))  # late
    permissions_changed(change(owned["section"], api, 5, safety_level=1))  # same version, other content
    assert snapshot() == after
    assert apply_changes(store, [newer]) == 0
    permissions_changed(change(owned["section"], api, 6, safety_level=3))
    assert snapshot()[0] == snapshot()[1] == (3, {}, [], [], 6)


def test_other_services_ids_and_garbage_are_ignored(api, owned, db, permissions_changed, counts):
    n = number(owned["section"]["id"])
    before = counts(), [acl_fields(d) for d in db["sections"].find()], [acl_fields(d) for d in db["properties"].find()]
    foreign = [f"datafile_{n}", f"segment_{n}", f"block_{n}", f"property_{n}", f"value_{n}", str(n), n,
               f"section_{n}x", f"Section_{n}", "section_", "section_0", "", None, "garbage"]
    permissions_changed(*[{**change(owned["section"], api, 9, safety_level=1), "resource": r} for r in foreign])
    after = counts(), [acl_fields(d) for d in db["sections"].find()], [acl_fields(d) for d in db["properties"].find()]
    assert after == before
    # a malformed change of one of ours is skipped; the good one next to it is applied
    permissions_changed({"resource": owned["section"]["id"], "safety_level": "nine", "version": 1},
                        {"resource": owned["section"]["id"]},
                        "not a change",
                        change(owned["child"], api, 1, safety_level=1))
    assert db["sections"].find_one({"_id": n})["safety_level"] == 3
    assert db["sections"].find_one({"_id": number(owned["child"]["id"])})["safety_level"] == 1


# --- friendships ---------------------------------------------------------------------------------

def test_a_friendly_section_is_readable_by_the_owners_friends(api, other, stranger, anonymous, owned,
                                                              permissions_changed, friendship):
    permissions_changed(change(owned["section"], api, 1, safety_level=2))
    for path in paths(owned).values():
        assert other.get(path).status_code == 403, path
    friendship("added", api, other)  # api counts other as a friend
    for path in paths(owned).values():
        assert other.get(path).status_code == 200, path
        assert stranger.get(path).status_code == 403, path
        assert anonymous.get(path).status_code == 401, path
    assert owned["section"]["id"] in ids(other.get("sections", recursive="true"))
    assert ids(other.get("properties")) == [owned["prop"]["id"]]
    assert len(ids(other.get("values"))) == 2
    assert other.post(paths(owned)["section"], {"description": "friends read only"}).status_code == 403
    friendship("added", other, stranger)  # the other way round counts for nothing here
    assert stranger.get(paths(owned)["section"]).status_code == 403
    friendship("removed", api, other)
    for path in paths(owned).values():
        assert other.get(path).status_code == 403, path
    assert ids(other.get("sections", recursive="true")) == []
    assert other.get("properties").get_json()["object_total"] == 0


def test_friends_may_read_public_and_friendly_but_not_private(api, other, owned, permissions_changed, friendship):
    friendship("added", api, other)
    assert other.get(paths(owned)["section"]).status_code == 403  # private stays private
    permissions_changed(change(owned["section"], api, 1, safety_level=1))
    assert other.get(paths(owned)["section"]).status_code == 200


# --- shares --------------------------------------------------------------------------------------

def test_shared_for_reading(api, other, owned, permissions_changed):
    permissions_changed(change(owned["section"], api, 1, shared={other: 1}))
    p = paths(owned)
    for path in p.values():
        assert other.get(path).status_code == 200, path
    assert owned["section"]["id"] in ids(other.get("sections", recursive="true"))
    assert other.get("sections", visibility="shared").get_json()["object_total"] == 1
    assert ids(other.get("properties", section_id=owned["section"]["id"])) == [owned["prop"]["id"]]
    assert other.get(f"{p['section']}/export").status_code == 200
    assert other.post(p["section"], {"description": "no"}).status_code == 403
    assert other.post(p["prop"], {"unit": "nm"}).status_code == 403
    assert other.post(p["value"], {"value": "blue"}).status_code == 403
    assert other.post("properties", {"section_id": owned["section"]["id"], "name": "new"}).status_code == 403
    assert other.post("values", {"property_id": owned["prop"]["id"], "value": "new"}).status_code == 403
    assert other.post("sections", {"name": "sub", "parent_section": owned["section"]["id"]}).status_code == 403
    for path in p.values():
        assert other.delete(path).status_code == 403, path
    # a reader may copy it into their own tree, not into the shared section
    copy = other.post("sections", None, query={"source_section_id": owned["section"]["id"], "mode": "copy"})
    assert copy.status_code == 201, copy.get_json()
    assert only(copy.get_json())["owner"] == other.username
    assert other.post("sections", None, query={"source_section_id": owned["section"]["id"], "mode": "copy",
                                                "target_section_id": owned["section"]["id"]}).status_code == 403


def test_shared_for_writing(api, other, owned, permissions_changed):
    permissions_changed(change(owned["section"], api, 1, shared={other: 2}))
    p = paths(owned)
    assert other.post(p["section"], {"description": "edited"}).status_code == 200
    assert api.fields(p["section"])["description"] == "edited"
    assert other.post(p["prop"], {"unit": "nm"}).status_code == 200
    assert other.post(p["value"], {"value": "blue"}).status_code == 200
    created = other.prop(owned["section"], "added by a writer", [1])
    assert created["owner"] == other.username  # a property takes its section's ACL; its creator owns it
    value = other.post("values", {"property_id": owned["prop"]["id"], "value": "teal"})
    assert value.status_code == 201
    sub = other.section("sub by a writer", parent=owned["section"])
    assert api.get(f"sections/{sub['id']}").status_code == 200
    assert other.delete(f"values/{only(value.get_json())['id']}").status_code == 200
    assert other.delete(f"properties/{created['id']}").status_code == 200
    # the owner alone deletes or moves the section
    assert other.delete(p["section"]).status_code == 403
    theirs = other.section("Their root")
    assert other.post("sections", None, query={"source_section_id": owned["section"]["id"],
                                                "target_section_id": theirs["id"]}).status_code == 403
    assert other.post(p["section"], {"parent_section": theirs["id"]}).status_code == 403
    assert api.get(p["section"]).status_code == 200


def test_move_needs_the_owner_and_write_on_the_target_and_keeps_the_acl(api, other, owned, db,
                                                                        permissions_changed):
    theirs = other.section("Theirs")
    query = {"source_section_id": owned["child"]["id"], "target_section_id": theirs["id"]}
    assert api.post("sections", None, query=query).status_code == 403  # cannot read the target
    permissions_changed(change(theirs, other, 1, shared={api: 1}))
    assert api.post("sections", None, query=query).status_code == 403  # cannot write it
    permissions_changed(change(theirs, other, 2, shared={api: 2}))
    before = acl_fields(db["sections"].find_one({"_id": number(owned["child"]["id"])}))
    response = api.post("sections", None, query=query)
    assert response.status_code == 200, response.get_json()
    assert only(response.get_json())["parent_section"] == theirs["id"]
    assert acl_fields(db["sections"].find_one({"_id": number(owned["child"]["id"])})) == before
    assert other.get(f"sections/{owned['child']['id']}").status_code == 403  # still private to api


# --- public, private, missing -------------------------------------------------------------------

def test_public_reads_for_everyone_writes_for_nobody_else(api, other, anonymous, owned, permissions_changed):
    permissions_changed(change(owned["section"], api, 1, safety_level=1))
    p = paths(owned)
    for path in p.values():
        assert anonymous.get(path).status_code == 200, path
    body = anonymous.get(p["section"]).get_json()
    assert body["logged_in_as"] is None
    assert only(body)["subsections"] == []  # the private subsection is left out
    assert only(body)["properties"] == [owned["prop"]["id"]]
    assert ids(anonymous.get("sections")) == [owned["section"]["id"]]
    listing = anonymous.get("sections", recursive="true").get_json()
    assert listing["object_total"] == 1
    assert ids(anonymous.get("sections", q="experiment")) == [owned["section"]["id"]]
    assert ids(anonymous.get("sections", visibility="private")) == []
    assert ids(anonymous.get("sections", visibility="shared")) == []
    assert ids(anonymous.get("properties")) == [owned["prop"]["id"]]
    assert anonymous.get("values").get_json()["object_total"] == 2
    assert anonymous.get("values", q="red").get_json()["object_total"] == 1
    assert anonymous.get("sections", section_id=owned["child"]["id"]).status_code == 401
    export = anonymous.get(f"{p['section']}/export", format="json")
    assert export.status_code == 200 and export.headers["X-Sections-Exported"] == "1"
    for method, path, body in [("post", p["section"], {"name": "x"}), ("delete", p["section"], None),
                               ("post", p["prop"], {"unit": "x"}), ("delete", p["prop"], None),
                               ("post", p["value"], {"value": "x"}), ("delete", p["value"], None),
                               ("post", "properties", {"section_id": owned["section"]["id"], "name": "x"}),
                               ("post", "sections", {"name": "x", "parent_section": owned["section"]["id"]})]:
        args = (path, body) if method == "post" else (path,)
        assert getattr(anonymous, method)(*args).status_code == 401, (method, path)
        assert getattr(other, method)(*args).status_code == 403, (method, path)


def test_private_is_401_anonymous_403_others_404_missing(api, other, anonymous, owned):
    for path in [*paths(owned).values(), f"sections/{owned['section']['id']}/export"]:
        assert api.get(path).status_code == 200, path
        response = anonymous.get(path)
        assert response.status_code == 401 and response.get_json()["message_type"] == "not_authenticated", path
        response = other.get(path)
        assert response.status_code == 403 and response.get_json()["message_type"] == "forbidden", path
    for path in ("sections/999999", "properties/999999", "values/999999", "sections/999999/export"):
        for caller in (api, other, anonymous):
            response = caller.get(path)
            assert response.status_code == 404 and response.get_json()["message_type"] == "not_found", path
    for caller, status in ((anonymous, 401), (other, 403)):
        assert caller.get("properties", section_id=owned["section"]["id"]).status_code == status
        assert caller.get("values", property_id=owned["prop"]["id"]).status_code == status
    assert other.get("sections", recursive="true").get_json()["object_total"] == 0
    assert other.get("values").get_json()["object_total"] == 0


def test_lists_and_totals_count_only_what_the_caller_may_read(api, other, anonymous, permissions_changed):
    sections = [api.section(f"S{i}") for i in range(5)]
    for i, section in enumerate(sections):
        api.prop(section, "p", [i])
    permissions_changed(*[change(s, api, 1, safety_level=1) for s in sections[:2]],
                        change(sections[2], api, 1, shared={other: 1}))
    body = other.get("sections", max_results=1).get_json()
    assert (body["object_total"], body["objects_selected"]) == (3, 1)
    assert anonymous.get("sections").get_json()["object_total"] == 2
    assert other.get("properties").get_json()["object_total"] == 3
    assert anonymous.get("values").get_json()["object_total"] == 2
    assert api.get("sections").get_json()["object_total"] == 5


# --- new documents take their parent's ACL ------------------------------------------------------

def test_new_subsections_copy_the_acl_but_not_the_version_properties_both(api, other, owned, db,
                                                                          permissions_changed):
    permissions_changed(change(owned["section"], api, 7, safety_level=2, shared={other: 1}))
    child = api.section("New child", parent=owned["section"])
    doc = db["sections"].find_one({"_id": number(child["id"])})
    assert acl_fields(doc) == (2, {other.username: 1}, [other.user_id], [], None)
    (created,) = doc["_outbox"]
    assert created["payload"]["acl"] == {"owner": api.user_id, "safety_level": 2,
                                         "shared_with": {other.username: 1}, "readers": [other.user_id], "writers": []}
    prop = api.prop(owned["section"], "new property", ["x"])
    assert acl_fields(db["properties"].find_one({"_id": number(prop["id"])})) == \
        (2, {other.username: 1}, [other.user_id], [], 7)
    # a late change of the section still cannot undo the newer one on the new property
    permissions_changed(change(owned["section"], api, 6, safety_level=1))
    assert db["properties"].find_one({"_id": number(prop["id"])})["safety_level"] == 2


def test_a_property_moved_to_another_section_takes_its_acl(api, other, owned, db, permissions_changed):
    target = api.section("Public target")
    permissions_changed(change(target, api, 3, safety_level=1))
    response = api.post(paths(owned)["prop"], {"section_id": target["id"]})
    assert response.status_code == 200, response.get_json()
    moved = db["properties"].find_one({"_id": number(owned["prop"]["id"])})
    assert (moved["section"], acl_fields(moved)) == (number(target["id"]), (1, {}, [], [], 3))
    assert other.get(paths(owned)["prop"]).status_code == 200
    # and back into a section the acl service never changed: no version of its own
    response = api.post(paths(owned)["prop"], {"section_id": owned["section"]["id"]})
    assert response.status_code == 200, response.get_json()
    back = db["properties"].find_one({"_id": number(owned["prop"]["id"])})
    assert acl_fields(back) == (3, {}, [], [], None) and "acl_version" not in back
    assert other.get(paths(owned)["prop"]).status_code == 403
    # into a section one may only read: 403
    theirs = other.section("Theirs")
    permissions_changed(change(theirs, other, 1, shared={api: 1}))
    assert api.post(paths(owned)["prop"], {"section_id": theirs["id"]}).status_code == 403


def test_a_property_created_while_a_change_arrives_gets_the_newer_acl(api, owned, db):
    """The section's ACL changed between reading it and writing the property: the property follows."""
    from services.metadata import properties
    from services.metadata.app import build_context
    ctx = build_context({"LIST_MAX_RESULTS": 100, "TREE_MAX_SECTIONS": 100, "PROPERTY_MAX_VALUES": 100,
                         "IMPORT_MAX_BYTES": 1000}, db)
    n = number(owned["section"]["id"])
    db["properties"].insert_one({"_id": 999_001, "section": n, "safety_level": 3, "readers": [], "writers": [],
                                 "shared_with": {}, "owner": api.user_id})
    db["sections"].update_one({"_id": n}, {"$set": {"safety_level": 1, "acl_version": 4}})
    assert properties.sync_section_acl(ctx, n, None)
    synced = db["properties"].find_one({"_id": 999_001})
    assert (synced["safety_level"], synced["acl_version"]) == (1, 4)
    assert not properties.sync_section_acl(ctx, n, 4)


# --- the internal API for the acl service -------------------------------------------------------

def test_internal_acl(api, other, owned, client, permissions_changed):
    section, child = owned["section"], owned["child"]
    response = client.get(f"/internal/acl/{section['id']}/")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"resource": section["id"], "owner": api.user_id, "safety_level": 3,
                                   "shared_with": {}, "readers": [], "writers": [], "acl_version": 0, "parents": []}
    permissions_changed(change(section, api, 3, safety_level=1, shared={other: 2}))
    body = client.get(f"/internal/acl/{section['id']}/").get_json()
    assert (body["safety_level"], body["shared_with"], body["readers"], body["writers"], body["acl_version"]) == \
        (1, {other.username: 2}, [other.user_id], [other.user_id], 3)
    body = client.get(f"/internal/acl/{child['id']}").get_json()
    assert body["parents"] == [section["id"]] and body["acl_version"] == 0
    n = number(section["id"])
    for resource in ("section_999999", f"datafile_{n}", f"segment_{n}", f"property_{n}", str(n), "garbage"):
        response = client.get(f"/internal/acl/{resource}/")
        assert response.status_code == 404, resource
        assert response.get_json()["message_type"] == "not_found"
    assert api.delete(f"sections/{section['id']}", force="true").status_code == 200
    assert client.get(f"/internal/acl/{section['id']}/").status_code == 404
    assert client.get(f"/internal/acl/{child['id']}/").status_code == 404
