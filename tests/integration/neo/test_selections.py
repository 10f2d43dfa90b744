"""Selections (docs/neo.md, *Selections*): querysets of Django-style lookups, paths through parents,
permission filtering, saved selections, and 400s that name the bad field."""
from __future__ import annotations

import pytest

from tests.integration.neo.conftest import change


def select(api, body, status=200, **params):
    response = api.client.post("/selections/", json=body, headers=api.headers, query_string=params)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def selected(api, obj_type, *querysets, **params):
    return select(api, {"obj_type": obj_type, "querysets": list(querysets)}, **params)["selected"]


def bad(api, body):
    return select(api, body, status=400)


@pytest.fixture
def trials(api):
    """Five segments: (name, index) and the first four under one block."""
    block = api.create("block", name="Mouse block")["neo_id"]
    specs = [("Trial red", 1), ("trial blue", 2), ("Trial ORED", 3), ("Rest 4", 4), ("Baseline 5", 5)]
    ids = []
    for i, (name, index) in enumerate(specs):
        fields = {"name": name, "index": index}
        if i < 4:
            fields["block"] = block
        ids.append(api.create("segment", **fields)["neo_id"])
    return ids


@pytest.mark.parametrize("lookups,expected", [
    ({"name": "Rest 4"}, [3]),
    ({"name__exact": "Rest 4"}, [3]),
    ({"name__iexact": "rest 4"}, [3]),
    ({"name__contains": "Trial"}, [0, 2]),
    ({"name__icontains": "trial"}, [0, 1, 2]),
    ({"name__startswith": "T"}, [0, 2]),
    ({"name__istartswith": "trial"}, [0, 1, 2]),
    ({"name__endswith": "red"}, [0]),
    ({"name__iendswith": "RED"}, [0, 2]),
    ({"index__gt": 3}, [3, 4]),
    ({"index__gte": 3}, [2, 3, 4]),
    ({"index__lt": 2}, [0]),
    ({"index__lte": 2}, [0, 1]),
    ({"index__in": [1, 5]}, [0, 4]),
    ({"index__in": "1,5"}, [0, 4]),
    ({"name__in": ["Rest 4", "Baseline 5"]}, [3, 4]),
    ({"index__range": [2, 4]}, [1, 2, 3]),
    ({"index__isnull": True}, []),
    ({"block__isnull": True}, [4]),
    ({"block__isnull": "false"}, [0, 1, 2, 3]),
    ({"date_created__gte": "2006-01-01"}, [0, 1, 2, 3, 4]),
    ({"date_created__lt": "2006-01-01"}, []),
    # several lookups in one filter AND
    ({"name__icontains": "trial", "index__gte": 2}, [1, 2]),
])
def test_each_lookup(api, trials, lookups, expected):
    assert selected(api, "segment", {"filter": lookups}) == [trials[i] for i in expected]


def test_exclude_subtracts_and_querysets_or(api, trials):
    assert selected(api, "segment", {"filter": {"name__icontains": "trial"}, "exclude": {"index": 2}}) == \
        [trials[0], trials[2]]
    # the exclude lookups together: only objects matching all of them are removed (Django's exclude)
    assert selected(api, "segment", {"filter": {"name__icontains": "trial"},
                                     "exclude": {"index__gte": 2, "name__contains": "ORED"}}) == trials[:2]
    assert selected(api, "segment", {"exclude": {"name__icontains": "trial"}}) == trials[3:]
    assert selected(api, "segment", {"filter": {"index": 1}}, {"filter": {"name": "Baseline 5"}},
                    {"filter": {"index__in": [1, 2]}}) == [trials[0], trials[1], trials[4]]


def test_an_empty_queryset_selects_everything_readable(api, trials):
    everything = selected(api, "segment", {})
    assert set(trials) <= set(everything)
    assert everything == api.get("segment").get_json()["selected"]  # the same as the list endpoint


def test_sampling_rate_matches_across_units(api):
    mark = f"rate-{api.user_id}"
    khz = api.create("analogsignal", name=mark, sampling_rate={"units": "khz", "data": 20})["neo_id"]
    hz = api.create("analogsignal", name=mark, sampling_rate={"units": "hz", "data": 20000})["neo_id"]
    slow = api.create("analogsignal", name=mark, sampling_rate={"units": "khz", "data": 1})["neo_id"]
    assert selected(api, "analogsignal", {"filter": {"name": mark, "sampling_rate": 20000}}) == [khz, hz]
    assert selected(api, "analogsignal", {"filter": {"name": mark, "sampling_rate": "20 khz"}}) == [khz, hz]
    assert selected(api, "analogsignal", {"filter": {"name": mark, "sampling_rate__in": ["20 khz", 1000]}}) == \
        [khz, hz, slow]
    assert selected(api, "analogsignal", {"filter": {"name": mark, "sampling_rate__lt": "10 khz"}}) == [slow]


def test_paths_through_parents(api):
    block = api.create("block", name="mice 2011")["neo_id"]
    other_block = api.create("block", name="rats")["neo_id"]
    mice = api.create("segment", name="mice trial", block=block)["neo_id"]
    rats = api.create("segment", name="rats trial", block=other_block)["neo_id"]
    in_mice = api.create("analogsignal", segment=mice)["neo_id"]
    in_rats = api.create("analogsignal", segment=rats)["neo_id"]
    api.create("analogsignal")  # no segment
    assert selected(api, "analogsignal", {"filter": {"segment__name__contains": "mice"}}) == [in_mice]
    assert selected(api, "analogsignal", {"filter": {"segment__block__name": "rats"}}) == [in_rats]
    assert selected(api, "analogsignal", {"filter": {"segment__block__name__icontains": "MICE"}}) == [in_mice]
    assert selected(api, "analogsignal", {"filter": {"segment": mice}}) == [in_mice]
    assert selected(api, "analogsignal", {"filter": {"segment__in": [mice, rats]},
                                          "exclude": {"segment__name__startswith": "rats"}}) == [in_mice]
    assert selected(api, "analogsignal", {"filter": {"segment__name": "nothing"}}) == []


def test_only_readable_objects_are_selected(api, other, permissions):
    # units, so that no segment of this module is ever public (the segment tests list all readable ones)
    mark = f"perm-{api.user_id}"
    mine = api.create("unit", name=mark)["neo_id"]
    private = other.create("unit", name=mark)["neo_id"]
    public = other.create("unit", name=mark)["neo_id"]
    permissions(change(public, other, 1))
    body = {"obj_type": "unit", "querysets": [{"filter": {"name": mark}}]}
    answer = select(api, body)
    assert answer["selected"] == [mine, public]
    assert private not in answer["selected"] and answer["object_total"] == 2
    assert select(other, body)["selected"] == [private, public]


def test_a_parent_path_sees_only_readable_parents(api, other, permissions):
    # a public signal under a private segment: its segment's name is not a way in for others
    mark = f"hidden-{other.user_id}"
    hidden = other.create("segment", name=mark)["neo_id"]
    signal = other.create("analogsignal", segment=hidden)["neo_id"]
    permissions(change(signal, other, 1))
    assert api.get(f"analogsignal/{signal}").status_code == 200
    assert selected(api, "analogsignal", {"filter": {"segment__name": mark}}) == []
    assert selected(other, "analogsignal", {"filter": {"segment__name": mark}}) == [signal]


def test_the_envelope_and_paging(api, trials):
    body = {"obj_type": "segment", "querysets": [{"filter": {"index__gte": 1}}]}
    answer = select(api, body, max_results=2, offset=1)
    assert answer["selected"] == trials[1:3]
    assert answer["object_total"] == 5 and answer["object_selected"] == 2 and answer["selected_as_of"] == 1
    assert answer["message_type"] == "object_selected" and answer["logged_in_as"] == api.username
    assert "selection_id" not in answer
    assert select(api, body, status=400, max_results=0)["message_type"] == "invalid_parameter"


def test_save_list_get_and_delete(api, other, trials):
    body = {"obj_type": "segment", "querysets": [{"filter": {"name__icontains": "trial"}}], "save_as": "my trials"}
    saved = select(api, body, status=201)
    assert saved["selected"] == trials[:3] and saved["selection_name"] == "my trials"
    selection_id = saved["selection_id"]
    assert selection_id.startswith("selection_")

    listing = api.client.get("/selections/", headers=api.headers).get_json()
    assert [(s["selection_id"], s["name"], s["obj_type"]) for s in listing["selections"]] == \
        [(selection_id, "my trials", "segment")]
    assert listing["selections"][0]["querysets"] == [{"filter": {"name__icontains": "trial"}, "exclude": {}}]
    assert listing["selections"][0]["date_created"]
    assert other.client.get("/selections/", headers=other.headers).get_json()["selections"] == []

    # re-run now: a new matching object shows up
    newer = api.create("segment", name="Trial late")["neo_id"]
    again = api.client.get(f"/selections/{selection_id}/", headers=api.headers).get_json()
    assert again["selected"] == trials[:3] + [newer] and again["object_total"] == 4
    assert again["selection_id"] == selection_id and again["selection_name"] == "my trials"
    number = selection_id.split("_")[1]
    paged = api.client.get(f"/selections/{number}/", headers=api.headers, query_string={"max_results": 1})
    assert paged.get_json()["selected"] == trials[:1]

    # private to the owner
    assert other.client.get(f"/selections/{selection_id}/", headers=other.headers).status_code == 403
    assert other.client.delete(f"/selections/{selection_id}/", headers=other.headers).status_code == 403
    assert api.client.get("/selections/selection_999999999/", headers=api.headers).status_code == 404
    assert api.client.get("/selections/nonsense/", headers=api.headers).status_code == 404

    deleted = api.client.delete(f"/selections/{selection_id}/", headers=api.headers)
    assert deleted.status_code == 200 and deleted.get_json()["deleted"] == [selection_id]
    assert api.client.get(f"/selections/{selection_id}/", headers=api.headers).status_code == 404
    assert api.client.delete(f"/selections/{selection_id}/", headers=api.headers).status_code == 404


def test_selections_need_a_login(anonymous):
    body = {"obj_type": "segment", "querysets": [{}]}
    assert select(anonymous, body, status=401)["message_type"] == "not_authenticated"
    assert anonymous.client.get("/selections/").status_code == 401
    assert anonymous.client.get("/selections/selection_1/").status_code == 401
    assert anonymous.client.delete("/selections/selection_1/").status_code == 401


@pytest.mark.parametrize("body,field", [
    ([1, 2], "body"),
    ("text", "body"),
    ({"querysets": [{}]}, "obj_type"),
    ({"obj_type": "dataset", "querysets": [{}]}, "obj_type"),
    ({"obj_type": 3, "querysets": [{}]}, "obj_type"),
    ({"obj_type": "segment"}, "querysets"),
    ({"obj_type": "segment", "querysets": {"filter": {}}}, "querysets"),
    ({"obj_type": "segment", "querysets": []}, "querysets"),
    ({"obj_type": "segment", "querysets": ["name"]}, "querysets"),
    ({"obj_type": "segment", "querysets": [{"filter": ["name"]}]}, "querysets[0].filter"),
    ({"obj_type": "segment", "querysets": [{}, {"exclude": "x"}]}, "querysets[1].exclude"),
    ({"obj_type": "segment", "querysets": [{"filters": {}}]}, "querysets[0].filters"),
    ({"obj_type": "segment", "querysets": [{}], "save_as": 5}, "save_as"),
    ({"obj_type": "segment", "querysets": [{}], "save_as": ""}, "save_as"),
    ({"obj_type": "segment", "querysets": [{}], "extra": 1}, "extra"),
    ({"obj_type": "segment", "querysets": [{"filter": {"colour": "red"}}]}, "colour"),
    ({"obj_type": "segment", "querysets": [{"filter": {"name__like": "x"}}]}, None),
    ({"obj_type": "segment", "querysets": [{"filter": {"index": "three"}}]}, "index"),
    ({"obj_type": "segment", "querysets": [{"filter": {"index__range": [1]}}]}, "index__range"),
    ({"obj_type": "segment", "querysets": [{"filter": {"name": {"a": 1}}}]}, "name"),
    ({"obj_type": "segment", "querysets": [{"filter": {"name": None}}]}, "name"),
    ({"obj_type": "segment", "querysets": [{"filter": {"name": ["a"]}}]}, "name"),
    ({"obj_type": "segment", "querysets": [{"exclude": {"date_created__gte": "yesterday"}}]}, "date_created__gte"),
    ({"obj_type": "analogsignal", "querysets": [{"filter": {"sampling_rate": "20 parsecs"}}]}, "sampling_rate"),
    ({"obj_type": "analogsignal", "querysets": [{"filter": {"signal": 1}}]}, "signal"),
    ({"obj_type": "analogsignal", "querysets": [{"filter": {"label": "red"}}]}, "label"),
    ({"obj_type": "analogsignal", "querysets": [{"exclude": {"label__in": ["red"]}}]}, "label__in"),
    ({"obj_type": "analogsignal", "querysets": [{"filter": {"segment__colour": "x"}}]}, "segment__colour"),
    ({"obj_type": "analogsignal", "querysets": [{"filter": {"segment__block__name__like": "x"}}]}, "segment__block__name__like"),
    ({"obj_type": "analogsignal", "querysets": [{"filter": {"segment__label": "x"}}]}, "segment__label"),
])
def test_bad_selections_are_400_naming_the_field(api, counts, body, field):
    before = counts("segment")
    answer = bad(api, body)
    assert answer["message_type"] in ("invalid_selection", "invalid_filter", "unsupported_filter"), answer
    if field is None:
        assert answer["details"]["lookup"] == "like"
    else:
        assert answer["details"]["field"] == field or answer["details"].get("path") == field, answer
    assert counts("segment") == before


def test_a_bad_saved_selection_is_not_saved(api):
    body = {"obj_type": "segment", "querysets": [{"filter": {"colour": "red"}}], "save_as": "broken"}
    bad(api, body)
    assert api.client.get("/selections/", headers=api.headers).get_json()["selections"] == []


def test_a_non_json_body_is_400(api):
    response = api.client.post("/selections/", data=b"{not json", headers={**api.headers, "Content-Type": "application/json"})
    assert response.status_code == 400
