"""Lists of objects (envelope, filters, paging), `info/<neo_id>/` and bulk updates."""
from __future__ import annotations

import pytest

from tests.integration.neo.conftest import minimal_body
from tests.integration.neo.spec import neo_number


def listed(api, type_name, **params):
    response = api.get(type_name, **params)
    assert response.status_code == 200, (params, response.get_json())
    return response.get_json()


def create_many(api, type_name, bodies):
    response = api.post(type_name, bodies)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["selected"]


# --- envelope and paging -----------------------------------------------------------------------------

def test_the_list_envelope_of_seed_001(api):
    ids = [api.create("analogsignal")["neo_id"] for _ in range(3)]
    body = listed(api, "analogsignal")
    assert body == {
        "message": "Here is the list of requested objects.",
        "message_type": "object_selected",
        "logged_in_as": api.username,
        "selected": ids,
        "object_total": 3,
        "object_selected": 3,
        "selected_as_of": 0,
    }


def test_an_empty_list(api):
    body = listed(api, "epoch")
    assert (body["selected"], body["object_total"], body["object_selected"]) == ([], 0, 0)


@pytest.mark.parametrize("params,start,stop", [
    ({"max_results": 3}, 0, 3),
    ({"max-results": 3}, 0, 3),
    ({"offset": 4}, 4, 10),
    ({"range_start": 4}, 4, 10),
    ({"max_results": 2, "offset": 5}, 5, 7),
    ({"max-results": 2, "range_start": 8}, 8, 10),
    ({"offset": 10}, 10, 10),
    ({"offset": 50}, 50, 50),
])
def test_paging(api, params, start, stop):
    ids = create_many(api, "segment", [{"name": f"s{i}"} for i in range(10)])
    body = listed(api, "segment", **params)
    assert body["selected"] == ids[start:stop]
    assert body["object_total"] == 10
    assert body["object_selected"] == len(ids[start:stop])
    assert body["selected_as_of"] == start


@pytest.mark.parametrize("params", [
    {"max_results": 10**7}, {"max_results": 10**30}, {"max-results": 100001}, {"max_results": 0},
    {"max_results": -1}, {"max_results": "all"}, {"offset": -1}, {"offset": "x"}, {"range_start": 10**12},
])
def test_bad_paging_parameters_are_400(api, params):
    response = api.get("segment", **params)
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_parameter"


def test_lists_hold_only_the_callers_objects(api, other):
    mine = api.create("segment", name="trial mine")["neo_id"]
    theirs = other.create("segment", name="trial theirs")["neo_id"]
    assert listed(api, "segment")["selected"] == [mine]
    assert listed(other, "segment")["selected"] == [theirs]
    assert listed(api, "segment", name__icontains="trial")["selected"] == [mine]


def test_deleted_objects_leave_the_list(api):
    ids = [api.create("unit")["neo_id"] for _ in range(3)]
    assert api.delete(f"unit/{ids[1]}").status_code == 200
    body = listed(api, "unit")
    assert body["selected"] == [ids[0], ids[2]] and body["object_total"] == 2


# --- filters -------------------------------------------------------------------------------------------

@pytest.fixture
def trials(api):
    """Two blocks; five segments named like trials (index 1..5), three of them in the first block."""
    first, second = api.create("block")["neo_id"], api.create("block")["neo_id"]
    names = ["Trial 1 red", "trial 2 green", "TRIAL 3 red", "Rest 4", "Baseline 5"]
    blocks = [first, first, first, second, None]
    ids = [api.create("segment", name=name, index=i + 1, block=block)["neo_id"]
           for i, (name, block) in enumerate(zip(names, blocks))]
    return {"blocks": (first, second), "segments": ids}


@pytest.mark.parametrize("params,expected", [
    ({"name__icontains": "trial"}, [0, 1, 2]),
    ({"name__contains": "Trial"}, [0]),
    ({"name": "Rest 4"}, [3]),
    ({"name__exact": "Rest 4"}, [3]),
    ({"name__iexact": "rest 4"}, [3]),
    ({"name__istartswith": "trial"}, [0, 1, 2]),
    ({"name__startswith": "T"}, [0, 2]),
    ({"name__endswith": "red"}, [0, 2]),
    ({"name__iendswith": "RED"}, [0, 2]),
    ({"name__in": "Rest 4,Baseline 5"}, [3, 4]),
    ({"name__icontains": "a.e"}, []),  # text, not a pattern
    ({"index": 3}, [2]),
    ({"index__gt": 3}, [3, 4]),
    ({"index__gte": 3}, [2, 3, 4]),
    ({"index__lt": 2}, [0]),
    ({"index__lte": 2}, [0, 1]),
    ({"index__in": "1,5"}, [0, 4]),
    ({"index__range": "2,4"}, [1, 2, 3]),
    ({"index__isnull": "true"}, []),
    ({"block__isnull": "true"}, [4]),
    ({"block__isnull": "false"}, [0, 1, 2, 3]),
    ({"name__icontains": "trial", "index__gte": 2}, [1, 2]),
])
def test_attribute_filters(api, trials, params, expected):
    assert listed(api, "segment", **params)["selected"] == [trials["segments"][i] for i in expected]


@pytest.mark.parametrize("form", ["typed", "untyped"])
def test_filter_by_parent(api, trials, form):
    first, second = trials["blocks"]
    value = first if form == "typed" else str(neo_number(first))
    body = listed(api, "segment", block=value)
    assert body["selected"] == trials["segments"][:3]
    assert body["object_total"] == 3
    both = listed(api, "segment", block__in=f"{first},{second}")
    assert both["selected"] == trials["segments"][:4]


def test_filter_signals_by_segment_as_in_the_seed(api):
    segment, elsewhere = api.create("segment")["neo_id"], api.create("segment")["neo_id"]
    inside = [api.create("analogsignal", segment=segment)["neo_id"] for _ in range(2)]
    api.create("analogsignal", segment=elsewhere)
    api.create("analogsignal")
    assert listed(api, "analogsignal", segment=segment)["selected"] == inside


@pytest.fixture
def rates(api):
    """Signals sampled at 1 kHz, 20 kHz (given as 20 khz and as 20000 hz) and 30000 1/s, starting at 0, 1.5 ms, 2 s."""
    specs = [({"units": "khz", "data": 1}, {"units": "ms", "data": 0}),
             ({"units": "khz", "data": 20}, {"units": "ms", "data": 1.5}),
             ({"units": "hz", "data": 20000}, {"units": "s", "data": 2}),
             ({"units": "1/s", "data": 30000}, {"units": "mcs", "data": 1500})]
    return [api.create("analogsignal", sampling_rate=rate, t_start=start)["neo_id"] for rate, start in specs]


@pytest.mark.parametrize("params,expected", [
    ({"sampling_rate": "20 khz"}, [1, 2]),
    ({"sampling_rate": "20000"}, [1, 2]),
    ({"sampling_rate": "20000 hz"}, [1, 2]),
    ({"sampling_rate": "20000 HZ"}, [1, 2]),
    ({"sampling_rate": "0.02 mhz"}, [1, 2]),
    ({"sampling_rate__gt": "10 khz"}, [1, 2, 3]),
    ({"sampling_rate__lte": "20 khz"}, [0, 1, 2]),
    ({"sampling_rate__range": "1000,20000"}, [0, 1, 2]),
    ({"sampling_rate__in": "1 khz,30 khz"}, [0, 3]),
    ({"t_start": "1.5 ms"}, [1, 3]),
    ({"t_start__gte": "1 s"}, [2]),
    ({"t_start__lt": "0.001"}, [0]),
])
def test_scalar_data_fields_filter_across_units(api, rates, params, expected):
    assert listed(api, "analogsignal", **params)["selected"] == [rates[i] for i in expected]


def test_filter_by_date_created(api):
    neo_id = api.create("block")["neo_id"]
    assert listed(api, "block", date_created__gte="2000-01-01")["selected"] == [neo_id]
    assert listed(api, "block", date_created__lt="2000-01-01")["selected"] == []


@pytest.mark.parametrize("params", [
    {"colour": "red"},  # no such field
    {"name__like": "x"},  # no such lookup
    {"index__gt": "three"},
    {"index__icontains": "3"},  # text lookups on numbers
    {"index__range": "1"},
    {"block": "segment_1"},  # an id of the wrong type
    {"block": "nonsense"},
    {"sampling_rate": "20 parsec"},
    {"sampling_rate": "fast"},
    {"block__isnull": "perhaps"},
    {"date_created__gt": "yesterday"},
    {"signal": "1"},  # arrays are not filterable
])
def test_bad_filters_are_400(api, params):
    type_name = "analogsignal" if {"sampling_rate", "signal"} & set(params) else "segment"
    response = api.get(type_name, **params)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["message_type"] == "invalid_filter"


def test_a_huge_integer_filter_is_400(api):
    response = api.get("segment", index="99999999999999999999999")
    assert response.status_code == 400


def test_an_unknown_type_is_404(api):
    response = api.get("neuron")
    assert response.status_code == 404
    assert response.get_json()["message_type"] == "unknown_type"


# --- info --------------------------------------------------------------------------------------------

def test_info_counts_children_and_descendants_and_sums_their_sizes(api):
    block = api.create("block", name="Experiment")["neo_id"]
    segments = [api.create("segment", block=block)["neo_id"] for _ in range(2)]
    signals = [api.create("analogsignal", segment=segments[0], signal={"units": "mv", "data": [0.0] * 10})
               for _ in range(3)]
    train = api.create("spiketrain", segment=segments[1])
    group = api.create("recordingchannelgroup", block=block)["neo_id"]
    api.create("recordingchannel", recordingchannelgroup=group)
    response = api.get(f"info/{block}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["neo_id"] == block and body["type"] == "block" and body["name"] == "Experiment"
    assert body["message_type"] == "object_info" and body["logged_in_as"] == api.username
    assert body["children"] == {"segment": 2, "recordingchannelgroup": 1}
    assert body["descendants"] == {"segment": 2, "analogsignal": 3, "spiketrain": 1,
                                   "recordingchannelgroup": 1, "recordingchannel": 1}
    assert body["size"] == 3 * 10 * 8 + 3 * 8 == sum(s["size"] for s in signals) + train["size"]
    assert body["own_size"] == 0


def test_info_of_a_signal(api):
    signal = api.create("analogsignal", signal={"units": "mv", "data": [1.0] * 25})["neo_id"]
    body = api.get(f"info/{signal}").get_json()
    assert body["size"] == body["own_size"] == 200
    assert body["arrays"] == {"signal": {"shape": [25], "dtype": "float64"}}
    assert body["descendants"] == {}


@pytest.mark.parametrize("raw", ["segment_999999", "12", "nonsense", "neuron_1"])
def test_info_of_a_missing_or_untyped_id_is_404(api, raw):
    assert api.get(f"info/{raw}").status_code == 404


def test_info_of_another_users_object_is_403(api, other):
    block = other.create("block")["neo_id"]
    assert api.get(f"info/{block}").status_code == 403


# --- bulk update -------------------------------------------------------------------------------------

def test_bulk_update_changes_attributes_and_parents_of_many_objects(api):
    block = api.create("block")["neo_id"]
    ids = [api.create("segment", name=f"s{i}", index=i)["neo_id"] for i in range(4)]
    apply_to = [ids[0], neo_number(ids[1]), str(neo_number(ids[2]))]
    response = api.post("segment/bulk_update", {"apply_to": apply_to, "update": {"name": "bulk", "block": block}})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["selected"] == ids[:3] and body["object_selected"] == 3
    assert body["message_type"] == "objects_updated" and body["logged_in_as"] == api.username
    for i, neo_id in enumerate(ids):
        got = api.get(f"segment/{neo_id}").get_json()
        assert (got["name"], got["block"], got["index"]) == (("bulk", block, i) if i < 3 else (f"s{i}", None, i))
    assert api.get(f"block/{block}").get_json()["segment"] == ids[:3]


def test_bulk_update_of_a_scalar_data_field(api):
    ids = [api.create("event")["neo_id"] for _ in range(2)]
    response = api.post("event/bulk_update", {"apply_to": ids, "update": {"time": {"units": "S", "data": 4}}})
    assert response.status_code == 200
    for neo_id in ids:
        assert api.get(f"event/{neo_id}").get_json()["time"] == {"units": "s", "data": 4}


@pytest.mark.parametrize("make_body", [
    lambda ids, foreign: {"apply_to": ids + [foreign], "update": {"name": "x"}},  # not mine
    lambda ids, foreign: {"apply_to": ids + ["segment_999999"], "update": {"name": "x"}},
    lambda ids, foreign: {"apply_to": ids + ["block_1"], "update": {"name": "x"}},
    lambda ids, foreign: {"apply_to": ids, "update": {"colour": "x"}},
    lambda ids, foreign: {"apply_to": ids, "update": {"name": None}},
    lambda ids, foreign: {"apply_to": ids, "update": {"block": "block_999999"}},
    lambda ids, foreign: {"apply_to": ids, "update": {}},
    lambda ids, foreign: {"apply_to": [], "update": {"name": "x"}},
    lambda ids, foreign: {"apply_to": ids[0], "update": {"name": "x"}},
    lambda ids, foreign: {"update": {"name": "x"}},
    lambda ids, foreign: {"apply_to": ids, "update": {"name": "x"}, "also": 1},
    lambda ids, foreign: [ids],
])
def test_a_bad_bulk_update_is_400_and_changes_nothing(api, other, make_body):
    ids = [api.create("segment", name=f"s{i}")["neo_id"] for i in range(2)]
    foreign = other.create("segment", name="theirs")["neo_id"]
    response = api.post("segment/bulk_update", make_body(ids, foreign))
    assert response.status_code == 400, response.get_json()
    assert [api.get(f"segment/{i}").get_json()["name"] for i in ids] == ["s0", "s1"]
    assert other.get(f"segment/{foreign}").get_json()["name"] == "theirs"


def test_bulk_update_of_arrays_is_400(api):
    ids = [api.create("analogsignal")["neo_id"] for _ in range(2)]
    response = api.post("analogsignal/bulk_update",
                        {"apply_to": ids, "update": {"signal": {"units": "mv", "data": [1.0]}}})
    assert response.status_code == 400
    assert api.get(f"analogsignal/{ids[0]}").get_json()["signal"]["data"] == [1.0, 2.0, 3.0, 4.0]


def test_bulk_update_that_breaks_one_object_changes_none(api):
    early = api.create("spiketrain", t_stop={"units": "ms", "data": 50})["neo_id"]
    late = api.create("spiketrain", t_stop={"units": "ms", "data": 500})["neo_id"]
    response = api.post("spiketrain/bulk_update",
                        {"apply_to": [early, late], "update": {"t_start": {"units": "ms", "data": 100}}})
    assert response.status_code == 400
    assert api.get(f"spiketrain/{late}").get_json()["t_start"] == {"units": "ms", "data": 0}
