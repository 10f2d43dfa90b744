"""Permissions (docs/permissions.md): the acl service's changes applied by the `neo.acl` handler,
friendships from `neo.friendships`, who may read/write/delete, what lists and trees show, and the
internal ACL lookup. Handlers are called directly with envelopes, without RabbitMQ."""
from __future__ import annotations


import pytest

from services.neo.acl import ACL_QUEUE, FRIENDSHIPS_QUEUE, apply_permission_changes, consumers
from services.neo.store import NeoStore
from shared.events import make_envelope
from shared.friends import friendship_handlers
from tests.integration.neo.conftest import change, later, minimal_body



def number(neo_id: str) -> int:
    return int(neo_id.rsplit("_", 1)[1])


@pytest.fixture
def friendship(db):
    """`friendship("added" | "removed", owner, friend)`: the owner counts (or stops counting) friend."""
    handlers = friendship_handlers(db)

    def send(what, owner, friend):
        payload = {"user_id": owner.user_id, "username": owner.username,
                   "friend_id": friend.user_id, "friend_username": friend.username}
        event_type = f"auth.friendship.{what}"
        handlers[event_type](make_envelope(event_type, payload, producer="auth", occurred_at=later()))

    return send


def stored(db, neo_id: str) -> dict:
    type_name, object_id = neo_id.rsplit("_", 1)
    return db[f"neo_{type_name}"].find_one({"_id": int(object_id)})


def acl_fields(doc) -> tuple:
    return doc["safety_level"], doc["shared_with"], doc["readers"], doc["writers"], doc.get("acl_version")


# --- the neo.acl handler ---------------------------------------------------------------------------

def test_the_worker_consumes_neo_acl_and_neo_friendships(db):
    specs = {spec.queue: spec for spec in consumers(db)}
    assert set(specs) == {ACL_QUEUE, FRIENDSHIPS_QUEUE} == {"neo.acl", "neo.friendships"}
    assert set(specs["neo.acl"].handlers) == {"acl.permissions.changed"}
    assert set(specs["neo.friendships"].handlers) == {"auth.friendship.added", "auth.friendship.removed"}


def test_a_change_sets_the_read_model(db, permissions, api, other, users):
    third = users()
    segment = api.create("segment")["neo_id"]
    assert acl_fields(stored(db, segment)) == (3, {}, [], [], None)
    permissions(change(segment, api, 2, {other: 1, third: 2}, version=7))
    assert acl_fields(stored(db, segment)) == (
        2, {other.username: 1, third.username: 2}, [other.user_id, third.user_id], [third.user_id], 7
    )
    assert api.get(f"segment/{segment}").get_json()["safety_level"] == 2


def test_a_repeated_or_older_change_changes_nothing(db, permissions, api, other):
    segment = api.create("segment")["neo_id"]
    newer = change(segment, api, 1, {other: 2}, version=20)
    permissions(newer)
    before = acl_fields(stored(db, segment))
    assert apply_permission_changes(NeoStore(db), {"changes": [newer]}) == 0  # the same event again
    permissions(change(segment, api, 3, {}, version=19))  # late: older than what is stored
    permissions(change(segment, api, 3, {}, version=20))  # same version, other content
    assert acl_fields(stored(db, segment)) == before == (1, {other.username: 2}, [other.user_id], [other.user_id], 20)
    permissions(change(segment, api, 3, {}, version=21))
    assert acl_fields(stored(db, segment))[0] == 3


def test_ids_of_other_services_and_garbage_are_ignored(db, api):
    segment = api.create("segment")["neo_id"]
    store = NeoStore(db)
    foreign = [change(r, api, 1) for r in (f"section_{number(segment)}", f"datafile_{number(segment)}", "garbage",
                                           "segment", "segment_x", str(number(segment)), "")]
    assert apply_permission_changes(store, {"changes": foreign}) == 0
    assert stored(db, segment)["safety_level"] == 3
    assert apply_permission_changes(store, {"changes": [*foreign, change(segment, api, 1)]}) == 1
    assert stored(db, segment)["safety_level"] == 1


def test_each_of_the_14_types_is_located(db, permissions, api):
    from tests.integration.neo.conftest import ALL_TYPES

    made = [api.create(t)["neo_id"] for t in ALL_TYPES]
    permissions(*[change(neo_id, api, 1) for neo_id in made])
    assert all(stored(db, neo_id)["safety_level"] == 1 for neo_id in made)


# --- friendly objects -------------------------------------------------------------------------------

def test_a_friendly_object_is_readable_by_friends_only_while_befriended(permissions, friendship, api, other, users,
                                                                        anonymous):
    stranger = users()
    segment = api.create("segment", name="friendly one")["neo_id"]
    permissions(change(segment, api, 2))
    assert other.get(f"segment/{segment}").status_code == 403
    friendship("added", api, other)
    assert other.get(f"segment/{segment}").status_code == 200
    assert other.get("segment", name="friendly one").get_json()["selected"] == [segment]
    assert other.get(f"info/{segment}").status_code == 200
    assert other.post(f"segment/{segment}", {"name": "x"}).status_code == 403  # friends read, never write
    assert stranger.get(f"segment/{segment}").status_code == 403
    assert anonymous.get(f"segment/{segment}").status_code == 401
    friendship("added", other, api)  # one-way: the friend's own friendships change nothing here
    friendship("removed", api, other)
    assert other.get(f"segment/{segment}").status_code == 403
    assert other.get("segment", name="friendly one").get_json()["object_total"] == 0


def test_friendship_does_not_open_private_objects(permissions, friendship, api, other):
    segment = api.create("segment")["neo_id"]
    friendship("added", api, other)
    assert other.get(f"segment/{segment}").status_code == 403


# --- shared objects -----------------------------------------------------------------------------------

def test_shared_for_reading(permissions, api, other):
    segment = api.create("segment", name="shared read")["neo_id"]
    permissions(change(segment, api, 3, {other: 1}))
    assert other.get(f"segment/{segment}").status_code == 200
    assert other.get("segment", name="shared read").get_json()["selected"] == [segment]
    for response in (
        other.post(f"segment/{segment}", {"name": "theirs"}),
        other.delete(f"segment/{segment}"),
        other.post("event", {**minimal_body("event"), "segment": segment}),
        other.post("segment/bulk_update", {"apply_to": [segment], "update": {"name": "theirs"}}),
    ):
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["message_type"] == "forbidden"
    assert api.get(f"segment/{segment}").get_json()["name"] == "shared read"
    assert api.get(f"segment/{segment}").get_json()["event"] == []


def test_shared_for_writing(db, permissions, api, other):
    segment = api.create("segment", name="shared write")["neo_id"]
    permissions(change(segment, api, 3, {other: 2}))
    assert other.post(f"segment/{segment}", {"name": "by other"}).status_code == 200
    bulk = other.post("segment/bulk_update", {"apply_to": [segment], "update": {"description": "bulk"}})
    assert bulk.status_code == 200
    event = other.create("event", segment=segment)
    assert event["segment"] == segment
    # The child is the writer's, with its parent's ACL (not its acl_version), except that the
    # parent's owner keeps write access and the writer is not in their own shares.
    assert acl_fields(stored(db, event["neo_id"]))[:4] == (3, {api.username: 2}, [api.user_id], [api.user_id])
    assert stored(db, event["neo_id"])["owner"] == other.user_id
    assert api.get(f"event/{event['neo_id']}").status_code == 200
    assert "acl_version" not in stored(db, event["neo_id"])
    assert other.get(f"segment/{segment}").get_json()["event"] == [event["neo_id"]]
    assert other.delete(f"segment/{segment}", cascade="true").status_code == 403  # owner only
    body = api.get(f"segment/{segment}").get_json()
    assert body["name"] == "by other" and body["description"] == "bulk"


def test_a_child_inherits_the_parents_acl_and_the_created_event_carries_it(db, permissions, api, other):
    block = api.create("block")["neo_id"]
    permissions(change(block, api, 1, {other: 1}))
    segment = api.create("segment", block=block)["neo_id"]
    doc = stored(db, segment)
    assert acl_fields(doc) == (1, {other.username: 1}, [other.user_id], [], None)
    created = [e for e in doc["_outbox"] if e["type"] == "neo.objects.created"]
    assert len(created) == 1
    (payload,) = created[0]["payload"]["objects"]
    assert payload["neo_id"] == segment and payload["parents"] == {"block": block}
    assert payload["acl"] == {"owner": api.user_id, "safety_level": 1, "shared_with": {other.username: 1},
                              "readers": [other.user_id], "writers": []}
    plain = stored(db, api.create("block")["neo_id"])["_outbox"][0]["payload"]["objects"][0]
    assert plain["acl"] == {"owner": api.user_id, "safety_level": 3, "shared_with": {}, "readers": [], "writers": []}


# --- public and private objects -----------------------------------------------------------------------

def test_a_public_object_is_readable_anonymously_but_not_writable(permissions, api, other, anonymous):
    segment = api.create("segment", name="public one")["neo_id"]
    signal = api.create("analogsignal", segment=segment)["neo_id"]
    permissions(change(segment, api, 1), change(signal, api, 1))
    for who in (anonymous, other):
        response = who.get(f"segment/{segment}")
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["analogsignal"] == [signal]
        assert who.get(f"segment/{segment}", q="children").get_json()["analogsignal"] == [signal]
        assert who.get(f"segment/{segment}", cascade="true").get_json()["analogsignal"][0]["neo_id"] == signal
        assert who.get(f"info/{segment}").get_json()["descendants"] == {"analogsignal": 1}
        assert who.get(f"analogsignal/{signal}", format="npy").status_code == 200
        assert who.get(f"analogsignal/{signal}", start_index=1, end_index=2).get_json()["signal"]["data"] == [2.0, 3.0]
        assert who.get("segment", name="public one").get_json()["selected"] == [segment]
        assert who.get("segment", name="public one").get_json()["object_total"] == 1
    assert anonymous.get(f"segment/{segment}").get_json()["logged_in_as"] is None
    assert anonymous.get("").status_code == 200
    for response in (
        anonymous.post(f"segment/{segment}", {"name": "x"}),
        anonymous.client.put(f"/electrophysiology/segment/{segment}/", json={"name": "x"}),
        anonymous.post("segment", {"name": "x"}),
        anonymous.post("event", {**minimal_body("event"), "segment": segment}),
        anonymous.delete(f"segment/{segment}"),
    ):
        assert response.status_code == 401
        assert response.get_json()["message_type"] == "not_authenticated"
    assert other.post(f"segment/{segment}", {"name": "x"}).status_code == 403
    assert other.delete(f"segment/{segment}", cascade="true").status_code == 403
    assert api.get(f"segment/{segment}").get_json()["name"] == "public one"


def test_a_private_object_is_401_anonymously_403_to_strangers_and_a_missing_one_404(api, other, anonymous):
    segment = api.create("segment")["neo_id"]
    signal = api.create("analogsignal", segment=segment)["neo_id"]
    for path in (f"segment/{segment}", f"info/{segment}", f"analogsignal/{signal}"):
        assert anonymous.get(path).status_code == 401
        assert anonymous.get(path).get_json()["message_type"] == "not_authenticated"
        assert other.get(path).status_code == 403
        assert other.get(path).get_json()["message_type"] == "forbidden"
    assert anonymous.get(f"analogsignal/{signal}", format="npy").status_code == 401
    for who in (anonymous, other, api):
        assert who.get("segment/segment_999999999").status_code == 404
        assert who.get("info/segment_999999999").status_code == 404
    assert other.post("segment/segment_999999999", {"name": "x"}).status_code == 404
    assert anonymous.get("segment", name__icontains="nothing-public").get_json()["object_total"] == 0


def test_anonymous_lists_count_public_objects_only(permissions, api, anonymous, unique):
    made = [api.create("block", name=f"count {unique}")["neo_id"] for _ in range(3)]
    permissions(change(made[1], api, 1))
    body = anonymous.get("block", name=f"count {unique}").get_json()
    assert body["selected"] == [made[1]] and body["object_total"] == 1
    assert api.get("block", name=f"count {unique}").get_json()["object_total"] == 3


# --- trees: children, cascade, info, parent links -------------------------------------------------------

def test_children_cascade_and_info_leave_out_unreadable_children(permissions, api, other, anonymous):
    block = api.create("block")["neo_id"]
    permissions(change(block, api, 1))
    shown = api.create("segment", block=block)["neo_id"]  # public, like its block
    hidden = api.create("segment", block=block)["neo_id"]
    permissions(change(hidden, api, 3))
    signal = api.create("analogsignal", segment=shown)["neo_id"]
    api.create("analogsignal", segment=hidden)
    for who in (anonymous, other):
        assert who.get(f"block/{block}").get_json()["segment"] == [shown]
        assert who.get(f"block/{block}", q="children").get_json()["segment"] == [shown]
        tree = who.get(f"block/{block}", cascade="true").get_json()
        assert [s["neo_id"] for s in tree["segment"]] == [shown]
        assert [a["neo_id"] for a in tree["segment"][0]["analogsignal"]] == [signal]
        info = who.get(f"info/{block}").get_json()
        assert info["children"] == {"segment": 1, "recordingchannelgroup": 0}
        assert info["descendants"] == {"segment": 1, "analogsignal": 1}
        assert who.get(f"block/{block}").get_json()["size"] == 32
    owner_view = api.get(f"block/{block}").get_json()
    assert owner_view["segment"] == [shown, hidden] and owner_view["size"] == 64


def test_links_to_unreadable_parents_are_hidden(permissions, api, other, anonymous):
    block = api.create("block")["neo_id"]
    segment = api.create("segment", block=block)["neo_id"]
    event = api.create("event", segment=segment)["neo_id"]
    permissions(change(segment, api, 1), change(event, api, 1))
    for who in (anonymous, other):
        assert who.get(f"segment/{segment}").get_json()["block"] is None
        assert who.get(f"segment/{segment}", q="parents").get_json()["block"] is None
        assert who.get(f"event/{event}").get_json()["segment"] == segment
    assert api.get(f"segment/{segment}").get_json()["block"] == block
    assert other.get("segment", block=block).get_json()["selected"] == [segment]  # the filter, not the link
    permissions(change(block, api, 1))
    assert anonymous.get(f"segment/{segment}").get_json()["block"] == block


def test_an_acl_change_changes_the_etag(permissions, api, other):
    segment = api.create("segment")["neo_id"]
    etag = api.get(f"segment/{segment}").headers["ETag"]
    permissions(change(segment, api, 1))
    response = api.get(f"segment/{segment}", headers={"If-None-Match": etag})
    assert response.status_code == 200 and response.get_json()["safety_level"] == 1


def test_a_cascade_delete_names_only_readable_foreign_descendants(permissions, api, other):
    segment = api.create("segment")["neo_id"]
    permissions(change(segment, api, 3, {other: 2}))
    theirs = other.create("event", segment=segment)["neo_id"]
    permissions(change(theirs, other, 3))  # now private to its owner
    response = api.delete(f"segment/{segment}", cascade="true")
    assert response.status_code == 403
    assert response.get_json()["details"] == {"not_yours": [], "count": 1}
    assert api.get(f"segment/{segment}").status_code == 200


# --- the internal ACL lookup --------------------------------------------------------------------------

def test_the_internal_acl_endpoint(client, permissions, api, other):
    block = api.create("block")["neo_id"]
    segment = api.create("segment", block=block)["neo_id"]
    response = client.get(f"/internal/acl/{segment}/")
    assert response.status_code == 200
    assert response.get_json() == {
        "resource": segment, "owner": api.user_id, "safety_level": 3, "shared_with": {}, "readers": [],
        "writers": [], "acl_version": 0, "parents": [block],
    }
    permissions(change(segment, api, 2, {other: 2}, version=77))
    body = client.get(f"/internal/acl/{segment}/").get_json()
    assert (body["safety_level"], body["shared_with"], body["readers"], body["writers"], body["acl_version"]) == (
        2, {other.username: 2}, [other.user_id], [other.user_id], 77
    )
    assert client.get(f"/internal/acl/{block}/").get_json()["parents"] == []
    signal = api.create("analogsignal", segment=segment)["neo_id"]
    channel = api.create("recordingchannel")["neo_id"]
    api.post(f"analogsignal/{signal}", {"recordingchannel": channel})
    assert sorted(client.get(f"/internal/acl/{signal}/").get_json()["parents"]) == sorted([segment, channel])
    api.delete(f"analogsignal/{signal}")
    for missing in (signal, "segment_999999999", f"section_{number(segment)}", f"datafile_{number(segment)}",
                    "garbage", str(number(segment))):
        response = client.get(f"/internal/acl/{missing}/")
        assert response.status_code == 404, missing
        assert response.get_json()["message_type"] == "not_found"


def test_a_bulk_update_of_parent_links_publishes_the_new_parents(db, api):
    first, second = api.create("segment")["neo_id"], api.create("segment")["neo_id"]
    events_ = [api.create("event", segment=first)["neo_id"] for _ in range(2)]
    assert api.post("event/bulk_update", {"apply_to": events_, "update": {"segment": second}}).status_code == 200
    assert api.post("event/bulk_update", {"apply_to": events_, "update": {"label": "same"}}).status_code == 200
    published = [doc["_outbox"][0]["payload"] for doc in db["outbox"].find({"_outbox.payload.neo_ids": events_[0]})]
    parents = [p["parents"] for p in published]
    assert len(parents) == 2 and {} in parents and {e: {"segment": second} for e in events_} in parents


def test_a_writer_updates_with_if_match_and_sees_only_readable_parent_links(permissions, api, other):
    block = api.create("block")["neo_id"]
    segment = api.create("segment", block=block)["neo_id"]
    permissions(change(segment, api, 3, {other: 2}))
    etag = other.get(f"segment/{segment}").headers["ETag"]
    response = other.post(f"segment/{segment}", {"name": "renamed"}, headers={"If-Match": etag})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["block"] is None
    assert other.get(f"segment/{segment}").headers["ETag"] == response.headers["ETag"]
    assert api.get(f"segment/{segment}").get_json()["block"] == block
