"""Parent/child links of every pair in seed 001 tables 2.3/2.4."""
from __future__ import annotations

import pytest

from tests.integration.neo.conftest import minimal_body
from tests.integration.neo.spec import CHILDREN, LINKS, PARENTS, neo_number


def children_of(api, parent_neo_id, child_type, **params):
    parent_type = parent_neo_id.rsplit("_", 1)[0]
    response = api.get(f"{parent_type}/{parent_neo_id}", **params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()[child_type]


@pytest.mark.parametrize("child_type,parent_type", LINKS)
def test_a_parent_given_typed_or_untyped_links_the_child_at_once(api, child_type, parent_type):
    parent = api.create(parent_type)
    number = neo_number(parent["neo_id"])
    created = [api.create(child_type, **{parent_type: form})["neo_id"]
               for form in (parent["neo_id"], number, str(number))]
    for child in created:
        assert api.get(f"{child_type}/{child}").get_json()[parent_type] == parent["neo_id"]
    assert children_of(api, parent["neo_id"], child_type) == created
    assert children_of(api, parent["neo_id"], child_type, q="children") == created


@pytest.mark.parametrize("child_type,parent_type", LINKS)
def test_the_create_response_names_the_parent(api, child_type, parent_type):
    parent = api.create(parent_type)
    child = api.create(child_type, **{parent_type: parent["neo_id"]})
    assert child[parent_type] == parent["neo_id"]
    for other in PARENTS[child_type]:
        if other != parent_type:
            assert child[other] is None


@pytest.mark.parametrize("child_type,parent_type", LINKS)
def test_an_update_links_moves_and_unlinks_with_null(api, child_type, parent_type):
    first, second = api.create(parent_type), api.create(parent_type)
    child = api.create(child_type)["neo_id"]

    linked = api.post(f"{child_type}/{child}", {parent_type: first["neo_id"]})
    assert linked.status_code == 200 and linked.get_json()[parent_type] == first["neo_id"]
    assert children_of(api, first["neo_id"], child_type) == [child]

    moved = api.post(f"{child_type}/{child}", {parent_type: str(neo_number(second["neo_id"]))})
    assert moved.status_code == 200 and moved.get_json()[parent_type] == second["neo_id"]
    assert children_of(api, first["neo_id"], child_type) == []
    assert children_of(api, second["neo_id"], child_type, q="children") == [child]

    unlinked = api.post(f"{child_type}/{child}", {parent_type: None})
    assert unlinked.status_code == 200 and unlinked.get_json()[parent_type] is None
    assert children_of(api, second["neo_id"], child_type) == []
    assert api.get(f"{child_type}/{child}").get_json()[parent_type] is None


@pytest.mark.parametrize("child_type,parent_type", LINKS)
def test_a_missing_foreign_or_mistyped_parent_is_400_and_nothing_is_saved(api, other, counts, child_type, parent_type):
    foreign = other.create(parent_type)
    wrong_type = "analogsignal" if parent_type != "analogsignal" else "segment"
    mine = api.create(parent_type)
    api.delete(f"{parent_type}/{mine['neo_id']}")  # a deleted parent is a missing one
    before = counts(child_type)
    for bad in (f"{parent_type}_999999", 999999, foreign["neo_id"], neo_number(foreign["neo_id"]),
                mine["neo_id"], f"{wrong_type}_1", "not-an-id", 0, True, [1]):
        response = api.post(child_type, {**minimal_body(child_type), parent_type: bad})
        assert response.status_code == 400, (bad, response.get_json())
        assert parent_type in response.get_json()["details"], bad
    assert counts(child_type) == before
    assert children_of(other, foreign["neo_id"], child_type) == []


@pytest.mark.parametrize("child_type,parent_type", LINKS)
def test_linking_an_existing_child_to_a_bad_parent_is_400_and_keeps_the_old_link(api, other, child_type, parent_type):
    parent, foreign = api.create(parent_type), other.create(parent_type)
    child = api.create(child_type, **{parent_type: parent["neo_id"]})["neo_id"]
    for bad in (f"{parent_type}_999999", foreign["neo_id"]):
        response = api.post(f"{child_type}/{child}", {parent_type: bad})
        assert response.status_code == 400
        assert api.get(f"{child_type}/{child}").get_json()[parent_type] == parent["neo_id"]
    assert children_of(api, parent["neo_id"], child_type) == [child]


def test_an_object_may_hang_under_several_parents(api):
    segment, channel = api.create("segment"), api.create("recordingchannel")
    group = api.create("analogsignalarray", segment=segment["neo_id"])
    signal = api.create("analogsignal", segment=segment["neo_id"], recordingchannel=channel["neo_id"],
                        analogsignalarray=group["neo_id"])["neo_id"]
    assert children_of(api, segment["neo_id"], "analogsignal") == [signal]
    assert children_of(api, channel["neo_id"], "analogsignal") == [signal]
    assert children_of(api, group["neo_id"], "analogsignal") == [signal]
    unlinked = api.post(f"analogsignal/{signal}", {"recordingchannel": None})
    assert unlinked.get_json()["segment"] == segment["neo_id"]
    assert children_of(api, channel["neo_id"], "analogsignal") == []
    assert children_of(api, segment["neo_id"], "analogsignal") == [signal]


def test_children_lists_hold_every_child_type_in_creation_order(api):
    segment = api.create("segment")["neo_id"]
    made = {t: [api.create(t, segment=segment)["neo_id"] for _ in range(2)] for t in CHILDREN["segment"]}
    body = api.get(f"segment/{segment}", q="children").get_json()
    for child_type, ids in made.items():
        assert body[child_type] == ids


def test_children_of_another_user_do_not_show_and_cannot_be_added(api, other):
    segment = api.create("segment")["neo_id"]
    response = other.post("event", {**minimal_body("event"), "segment": segment})
    assert response.status_code == 400
    assert children_of(api, segment, "event") == []
