"""The acl sub-resource, bulk changes, recursion, share removal and the tree from events."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.acl import service, users as users_module
from services.acl.service import Limits
from tests.integration.acl.conftest import envelope


@pytest.fixture
def people(acl):
    return acl.user("alice"), acl.user("bob"), acl.user("carol")


def test_owner_reads_the_acl_of_a_new_resource(acl, people):
    alice, *_ = people
    acl.create("section_1", alice)
    response = acl.get("section_1", alice)
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"message": "Here is the list of requested objects.", "message_type": "object_selected",
                    "logged_in_as": "alice", "safety_level": 3, "shared_with": {}}


def test_post_replaces_shared_with_and_sets_the_level(acl, people):
    alice, bob, carol = people
    acl.create("segment_4", alice, safety_level=3, shared_with={"carol": 1}, readers=[carol.user_id])
    response = acl.post("segment_4", alice, {"safety_level": "2", "shared_with": {"bob": 2}})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["safety_level"] == 2
    assert response.get_json()["shared_with"] == {"bob": 2}
    record = acl.record("segment_4")
    assert record["readers"] == [bob.user_id] and record["writers"] == [bob.user_id]
    (change,) = acl.changes()
    assert change == {"resource": "segment_4", "owner": alice.user_id, "safety_level": 2, "shared_with": {"bob": 2},
                      "readers": [bob.user_id], "writers": [bob.user_id], "version": record["version"]}


def test_only_safety_level_keeps_the_shares(acl, people):
    alice, bob, _ = people
    acl.create("datafile_3", alice)
    acl.post("datafile_3", alice, {"shared_with": {"bob": 1}})
    response = acl.post("datafile_3", alice, {"safety_level": 1})
    assert response.get_json()["shared_with"] == {"bob": 1}
    assert acl.record("datafile_3")["readers"] == [bob.user_id]


@pytest.mark.parametrize("url", ["/electrophysiology/sections/7/acl/", "/electrophysiology/sections/section_7/acl",
                                 "/metadata/sections/section_7/acl/"])
def test_section_urls_of_the_seed(acl, people, url):
    alice, *_ = people
    acl.create("section_7", alice)
    response = acl.client.get(url, headers=acl.as_(alice))
    assert response.status_code == 200


def test_datafile_url_of_the_seed(acl, people):
    alice, *_ = people
    acl.create("datafile_8", alice)
    assert acl.client.get("/electrophysiology/datafiles/8/acl/", headers=acl.as_(alice)).status_code == 200


def test_who_may_read_and_change_the_acl(acl, people):
    alice, bob, carol = people
    acl.create("block_1", alice)
    acl.post("block_1", alice, {"shared_with": {"bob": 2}})
    assert acl.get("block_1", bob).status_code == 200
    assert acl.post("block_1", bob, {"safety_level": 1}).status_code == 403
    assert acl.get("block_1", carol).status_code == 403
    assert acl.post("block_1", carol, {"safety_level": 1}).status_code == 403
    assert acl.get("block_1", None).status_code == 401
    assert acl.post("block_1", None, {"safety_level": 1}).status_code == 401
    acl.post("block_1", alice, {"safety_level": 1})
    assert acl.get("block_1", None).status_code == 200
    assert acl.get("block_1", carol).status_code == 200


def test_friendly_acl_readable_by_friends_only(acl, people):
    from shared.friends import record_friendship

    alice, bob, carol = people
    acl.create("section_2", alice, safety_level=2)
    assert acl.get("section_2", bob).status_code == 403
    record_friendship(acl.ctx.store.db, envelope("auth.friendship.added", {"user_id": alice.user_id, "friend_id": bob.user_id}))
    assert acl.get("section_2", bob).status_code == 200
    assert acl.get("section_2", carol).status_code == 403


@pytest.mark.parametrize("body, message_type", [
    ({"safety_level": 4}, "invalid_value"),
    ({"safety_level": "public"}, "invalid_value"),
    ({"safety_level": True}, "invalid_value"),
    ({"shared_with": {"bob": 3}}, "invalid_value"),
    ({"shared_with": ["bob"]}, "invalid_value"),
    ({"shared_with": {"nobody": 1}}, "unknown_user"),
    ({"shared_with": {"alice": 1}}, "invalid_value"),
    ({"safety_levl": 1}, "unknown_field"),
    ({}, "invalid_body"),
    ([1, 2], "invalid_body"),
])
def test_bad_bodies_are_400_and_change_nothing(acl, people, body, message_type):
    alice, *_ = people
    acl.create("section_3", alice)
    before = acl.record("section_3")
    response = acl.post("section_3", alice, body)
    assert response.status_code == 400
    assert response.get_json()["message_type"] == message_type
    assert acl.record("section_3") == before and acl.changes() == []


def test_unparsable_json_and_bad_flags_are_400(acl, people):
    alice, *_ = people
    acl.create("section_3", alice)
    response = acl.client.post("/metadata/sections/3/acl/", data="{nope", content_type="application/json",
                               headers=acl.as_(alice))
    assert response.status_code == 400
    assert acl.post("section_3", alice, {"safety_level": 1}, recursive="maybe").status_code == 400


def test_unknown_resources_and_types(acl, people):
    alice, *_ = people
    assert acl.get("section_404", alice).status_code == 404
    assert acl.client.get("/electrophysiology/nothing/1/acl/", headers=acl.as_(alice)).status_code == 404
    assert acl.client.get("/electrophysiology/segment/block_1/acl/", headers=acl.as_(alice)).status_code == 404
    assert acl.client.get("/electrophysiology/segment/x/acl/", headers=acl.as_(alice)).status_code == 404


def test_resource_not_heard_of_yet_is_fetched_from_its_service(acl, people):
    alice, bob, _ = people
    acl.resources.known["analogsignal_9"] = {
        "resource": "analogsignal_9", "owner": alice.user_id, "safety_level": 3, "shared_with": {}, "readers": [],
        "writers": [], "acl_version": 0, "parents": ["segment_2"]}
    response = acl.post("analogsignal_9", alice, {"shared_with": {"bob": 1}})
    assert response.status_code == 200
    assert acl.record("analogsignal_9")["parents"] == ["segment_2"]
    # the late `created` event does not undo the change
    acl.create("analogsignal_9", alice, parent="segment_2")
    assert acl.record("analogsignal_9")["shared_with"] == {"bob": 1}


def test_recursive_reaches_subsections_and_their_datafiles(acl, people):
    alice, bob, carol = people
    acl.create("section_1", alice)
    acl.create("section_2", alice, parent="section_1")
    acl.create("section_3", alice, parent="section_2")
    acl.create("datafile_1", alice, parent="section_3")
    acl.create("datafile_2", carol, parent="section_3")  # someone else's: left alone
    acl.create("section_9", alice)  # elsewhere
    response = acl.post("section_1", alice, {"safety_level": 1, "shared_with": {"bob": 1}}, recursive="true")
    assert response.status_code == 200
    changed = {c["resource"] for c in acl.changes()}
    assert changed == {"section_1", "section_2", "section_3", "datafile_1"}
    assert acl.record("datafile_2")["safety_level"] == 3
    assert acl.record("section_9")["safety_level"] == 3


def test_not_recursive_changes_only_the_resource(acl, people):
    alice, *_ = people
    acl.create("block_1", alice)
    acl.create("segment_1", alice, parent="block_1")
    acl.post("block_1", alice, {"safety_level": 1})
    assert [c["resource"] for c in acl.changes()] == ["block_1"]


def test_recursive_neo_tree(acl, people):
    alice, *_ = people
    acl.create("block_1", alice)
    acl.create("segment_1", alice, parent="block_1")
    acl.create("analogsignal_1", alice, parent="segment_1")
    acl.create("spiketrain_1", alice, parent="segment_1")
    acl.post("block_1", alice, {"safety_level": 2}, recursive="true")
    assert {c["resource"] for c in acl.changes()} == {"block_1", "segment_1", "analogsignal_1", "spiketrain_1"}


def test_big_changes_are_split_into_batches_and_events(acl, people):
    alice, *_ = people
    acl.ctx.__dict__  # frozen dataclass: swap the limits through the app extension
    acl.app.extensions["acl_context"] = type(acl.ctx)(store=acl.ctx.store, users=acl.users, resources=acl.resources,
                                                      limits=Limits(changes_per_batch=700))
    acl.create("section_1", alice)
    for number in range(2, 1202):
        acl.create(f"section_{number}", alice, parent="section_1")
    response = acl.post("section_1", alice, {"safety_level": 1}, recursive="true")
    assert response.status_code == 200
    batches = list(acl.ctx.store.batches.find())
    assert len(batches) == 2
    acl.record("section_1")  # settles the batches applied behind the answer
    assert all(b["applied"] for b in acl.ctx.store.batches.find())
    payloads = acl.events()
    assert [len(p["changes"]) for p in payloads] == [500, 200, 500, 1]
    assert acl.ctx.store.records.count_documents({"safety_level": 1}) == 1201


def test_moves_and_deletes_change_the_tree(acl, people):
    alice, *_ = people
    acl.create("section_1", alice)
    acl.create("section_2", alice)
    acl.create("datafile_5", alice, parent="section_1")
    acl.handle(envelope("files.datafile.moved", {"datafile_id": 5, "owner": alice.user_id, "section_id": 2,
                                                 "from_section": 1}))
    acl.handle(envelope("metadata.section.deleted", {"section_id": 1, "owner": alice.user_id, "parent_section": None}))
    assert acl.get("section_1", alice).status_code == 404
    acl.create("section_1", alice)  # a late created event does not bring it back
    assert acl.get("section_1", alice).status_code == 404
    acl.post("section_2", alice, {"safety_level": 2}, recursive="true")
    assert {c["resource"] for c in acl.changes()} == {"section_2", "datafile_5"}


def test_child_created_during_a_recursive_share_gets_the_parent_acl(acl, people):
    alice, bob, _ = people
    acl.create("block_1", alice)
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    acl.post("block_1", alice, {"shared_with": {"bob": 1}}, recursive="true")
    # segment_1 was created (with the old ACL) before the share, but its event arrives after it
    acl.create("segment_1", alice, parent="block_1", at=before)
    assert acl.record("segment_1")["shared_with"] == {"bob": 1}
    assert acl.changes()[-1]["resource"] == "segment_1"
    # created after the share: it copied the new ACL itself, nothing more to do
    acl.create("segment_2", alice, parent="block_1", shared_with={"bob": 1}, readers=[bob.user_id])
    assert acl.changes()[-1]["resource"] == "segment_1"


def test_bulk_applies_in_order_and_answers_each_resource(acl, people):
    alice, bob, carol = people
    for resource in ("section_1", "datafile_1", "segment_1"):
        acl.create(resource, alice)
    response = acl.client.post("/acl/", json={"resources": ["section_1", "datafile_1", "segment_1"], "state": "friendly",
                                              "shared_with": {"bob": "reader", "carol": "collaborator"}},
                               headers=acl.as_(alice))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "acl_updated" and body["changed"] == 3
    assert [r["resource"] for r in body["resources"]] == ["section_1", "datafile_1", "segment_1"]
    assert all(r["safety_level"] == 2 and r["shared_with"] == {"bob": 1, "carol": 2} for r in body["resources"])
    assert [c["resource"] for c in acl.changes()] == ["section_1", "datafile_1", "segment_1"]
    assert acl.record("datafile_1")["writers"] == [carol.user_id]


def test_bulk_checks_everything_before_changing_anything(acl, people):
    alice, bob, _ = people
    acl.create("section_1", alice)
    acl.create("section_2", bob)
    response = acl.client.post("/acl/", json={"resources": ["section_1", "section_2"], "state": "public"},
                               headers=acl.as_(alice))
    assert response.status_code == 403
    response = acl.client.post("/acl/", json={"resources": ["section_1", "section_77"], "state": "public"},
                               headers=acl.as_(alice))
    assert response.status_code == 404
    assert acl.changes() == [] and acl.record("section_1")["safety_level"] == 3


@pytest.mark.parametrize("body", [
    {"resources": [], "state": "public"},
    {"resources": "section_1", "state": "public"},
    {"resources": ["bogus_1"], "state": "public"},
    {"resources": ["section_1"], "state": "secret"},
    {"resources": ["section_1"], "shared_with": {"bob": "owner"}},
    {"resources": ["section_1"]},
    {"resources": ["section_1"], "state": "public", "extra": 1},
])
def test_bulk_bad_bodies(acl, people, body):
    alice, *_ = people
    acl.create("section_1", alice)
    response = acl.client.post("/acl/", json=body, headers=acl.as_(alice))
    assert response.status_code == 400, response.get_json()
    assert acl.changes() == []


def test_bulk_needs_a_login(acl):
    assert acl.client.post("/acl/", json={"resources": ["section_1"], "state": "public"}).status_code == 401


def test_owner_removes_a_user_from_all_shares(acl, people):
    alice, bob, carol = people
    acl.create("section_1", alice)
    acl.create("datafile_1", alice)
    acl.create("segment_1", carol)
    acl.client.post("/acl/", json={"resources": ["section_1", "datafile_1"], "shared_with": {"bob": "reader",
                                   "carol": "reader"}}, headers=acl.as_(alice))
    acl.post("segment_1", carol, {"shared_with": {"bob": 2}})
    response = acl.client.delete("/acl/shared_with/BOB/", headers=acl.as_(alice))
    assert response.status_code == 200 and response.get_json()["changed"] == 2
    assert acl.record("section_1")["shared_with"] == {"carol": 1}
    assert acl.record("datafile_1")["readers"] == [carol.user_id]
    assert acl.record("segment_1")["shared_with"] == {"bob": 2}  # carol's own share stays
    assert acl.client.delete("/acl/shared_with/nobody/", headers=acl.as_(alice)).status_code == 404


def test_a_user_leaves_all_shares(acl, people):
    alice, bob, carol = people
    acl.create("section_1", alice)
    acl.create("segment_1", carol)
    acl.post("section_1", alice, {"shared_with": {"bob": 1}})
    acl.post("segment_1", carol, {"shared_with": {"bob": 2, "alice": 1}})
    response = acl.client.delete("/acl/shared_with_me/", headers=acl.as_(bob))
    assert response.status_code == 200 and response.get_json()["changed"] == 2
    assert acl.record("section_1")["shared_with"] == {}
    assert acl.record("segment_1")["shared_with"] == {"alice": 1}
    assert acl.client.delete("/acl/shared_with_me/", headers=acl.as_(bob)).get_json()["changed"] == 0


def test_deactivated_user_loses_every_share_and_keeps_their_resources(acl, people):
    alice, bob, _ = people
    acl.create("section_1", alice)
    acl.create("section_2", bob, safety_level=1)
    acl.post("section_1", alice, {"shared_with": {"bob": 2}})
    deactivated = envelope("auth.user.deactivated", {"user_id": bob.user_id, "username": "bob"})
    users_module.handlers(acl.ctx)["auth.user.deactivated"](deactivated)
    users_module.handlers(acl.ctx)["auth.user.deactivated"](deactivated)  # a repeat changes nothing more
    assert acl.record("section_1")["shared_with"] == {} and acl.record("section_1")["writers"] == []
    assert acl.record("section_2")["safety_level"] == 1 and acl.record("section_2")["owner"] == bob.user_id
    assert [c["resource"] for c in acl.changes()].count("section_1") == 2  # the share, then its removal


def test_notify_announces_only_newly_added_users(acl, people):
    alice, bob, carol = people
    acl.create("section_1", alice)
    acl.post("section_1", alice, {"shared_with": {"bob": 1}}, notify="true")
    acl.post("section_1", alice, {"shared_with": {"bob": 2, "carol": 1}}, notify="true")
    acl.post("section_1", alice, {"safety_level": 1}, notify="true")
    granted = acl.events("acl.share.granted")
    assert [[g["username"] for g in e["grantees"]] for e in granted] == [["bob"], ["carol"]]
    assert granted[0]["owner_username"] == "alice" and granted[0]["resource"] == "section_1"


def test_no_notification_without_notify(acl, people):
    alice, *_ = people
    acl.create("section_1", alice)
    acl.post("section_1", alice, {"shared_with": {"bob": 1}})
    assert acl.events("acl.share.granted") == []


def test_an_unapplied_batch_is_reapplied(acl, people):
    alice, *_ = people
    acl.create("section_1", alice)
    acl.post("section_1", alice, {"safety_level": 1})
    store = acl.ctx.store
    version = acl.record("section_1")["version"]
    # as if the process died between writing the batch and applying it
    store.records.update_one({"_id": "section_1"}, {"$set": {"safety_level": 3, "version": 0}})
    store.batches.update_one({"_id": version}, {"$set": {"applied": False}})
    assert service.settle(store) == 1
    assert acl.record("section_1")["safety_level"] == 1
    assert service.settle(store) == 0


def test_bulk_updated_neo_links_move_objects_in_the_tree(acl, people):
    alice, *_ = people
    acl.create("segment_1", alice)
    acl.create("segment_2", alice)
    acl.create("event_1", alice, parent="segment_1")
    acl.handle(envelope("neo.objects.updated", {"type": "event", "neo_ids": ["event_1"], "fields": ["segment"],
                                                "parents": {"event_1": {"segment": "segment_2"}}}))
    acl.post("segment_2", alice, {"safety_level": 1}, recursive="true")
    assert {c["resource"] for c in acl.changes()} == {"segment_2", "event_1"}


def test_objects_created_in_one_request_arrive_in_one_event(acl, people):
    alice, bob, _ = people
    acl.create("segment_1", alice)
    acl.create("segment_2", alice)
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    acl.post("segment_1", alice, {"shared_with": {"bob": 1}}, recursive="true")
    private = {"owner": alice.user_id, "safety_level": 3, "shared_with": {}, "readers": [], "writers": []}
    signals = [{"neo_id": f"analogsignal_{n}", "parents": {"segment": f"segment_{1 + n % 2}"}, "acl": private}
               for n in range(1, 7)]
    acl.handle(envelope("neo.objects.created", {"type": "analogsignal", "owner": alice.user_id, "source": None,
                                                "objects": signals}, at=before))
    # under the segment shared while they were being created: they take its ACL; the others keep theirs
    assert [acl.record(f"analogsignal_{n}")["shared_with"] for n in range(1, 7)] == [{}, {"bob": 1}] * 3
    acl.post("segment_2", alice, {"safety_level": 1}, recursive="true")
    assert {c["resource"] for c in acl.changes()[-4:]} == {"segment_2", "analogsignal_1", "analogsignal_3",
                                                           "analogsignal_5"}


def test_a_single_object_created_event_of_an_older_producer_is_still_read(acl, people):
    alice, *_ = people
    acl.create("segment_1", alice)
    acl.handle(envelope("neo.object.created", {"neo_id": "analogsignal_1", "type": "analogsignal",
                                               "owner": alice.user_id, "parents": {"segment": "segment_1"},
                                               "acl": {"owner": alice.user_id, "safety_level": 3}}))
    acl.post("segment_1", alice, {"safety_level": 2}, recursive="true")
    assert {c["resource"] for c in acl.changes()} >= {"segment_1", "analogsignal_1"}

