"""Every NEO type (seed 001 tables 2.1-2.4): required attributes, data fields with units, wire shape."""
from __future__ import annotations

import pytest

from tests.integration.neo.conftest import ALL_TYPES, minimal_body
from tests.integration.neo.spec import (
    ARRAY_FIELDS, ATTRIBUTES, CHILDREN, DATA_FIELDS, DATE_RE, FOREIGN_UNIT, MIXED_CASE, PARENTS, REQUIRED_ARRAYS,
    REQUIRED_ATTRIBUTES, REQUIRED_SCALARS, UNITS, neo_number,
)

DATA_FIELD_CASES = [(t, f, d) for t, fields in DATA_FIELDS.items() for f, d in fields.items()]
REQUIRED_CASES = [
    (t, f)
    for t in ALL_TYPES
    for f in (*REQUIRED_ATTRIBUTES[t], *REQUIRED_SCALARS.get(t, ()), *REQUIRED_ARRAYS.get(t, ()))
]


def value_for(type_name: str, field: str):
    """Valid data for a field that fits the rest of `minimal_body(type_name)`."""
    body = minimal_body(type_name)
    if field == "waveforms":
        spikes = len(body["times"]["data"]) if "times" in body else 1
        return [[0.1 * i + j for j in range(4)] for i in range(spikes)]
    if field in ARRAY_FIELDS:
        return body[field]["data"]
    return 2.0


def body_with(type_name: str, field: str, units, data=None, *, omit_data=False) -> dict:
    body = minimal_body(type_name)
    value = {"units": units} if units is not None else {}
    if not omit_data:
        value["data"] = value_for(type_name, field) if data is None else data
    body[field] = value
    return body


# --- the wire shape of every type ---------------------------------------------------------------

@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_create_returns_201_with_the_flat_shape_of_seed_001(api, type_name):
    response = api.post(type_name, minimal_body(type_name))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["neo_id"].startswith(f"{type_name}_") and neo_number(body["neo_id"]) >= 1
    assert response.headers["Location"].rstrip("/").endswith(f"/electrophysiology/{type_name}/{neo_number(body['neo_id'])}")
    assert body["author"] == api.username
    assert body["logged_in_as"] == api.username
    assert body["message"] == "Object created successfully."
    assert body["message_type"] == "object_created"
    assert DATE_RE.match(body["date_created"]), body["date_created"]
    assert isinstance(body["size"], int) and body["size"] >= 0
    for parent in PARENTS[type_name]:
        assert body[parent] is None
    for child in CHILDREN.get(type_name, ()):
        assert body[child] == []
    for attribute in ATTRIBUTES[type_name]:
        assert attribute in body
    for field in DATA_FIELDS.get(type_name, {}):
        assert field in body


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_get_returns_what_was_created(api, type_name):
    created = api.create(type_name)
    response = api.get(f"{type_name}/{created['neo_id']}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["message_type"] == "retrieved"
    assert body["message"] == "Object retrieved successfully."
    assert body["logged_in_as"] == api.username
    sent = minimal_body(type_name)
    for name, value in sent.items():
        if name in DATA_FIELDS.get(type_name, {}):
            assert list(body[name]) == ["units", "data"], "units first, then data"
            assert body[name] == value
        else:
            assert body[name] == value
    for child in CHILDREN.get(type_name, ()):
        assert body[child] == []


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_ids_count_per_type_and_untyped_ids_address_the_same_object(api, type_name):
    first, second = api.create(type_name), api.create(type_name)
    assert neo_number(second["neo_id"]) == neo_number(first["neo_id"]) + 1
    number = neo_number(second["neo_id"])
    for raw in (second["neo_id"], str(number), second["neo_id"].upper()):
        response = api.get(f"{type_name}/{raw}")
        assert response.status_code == 200, raw
        assert response.get_json()["neo_id"] == second["neo_id"]


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_update_changes_only_the_given_fields(api, type_name):
    created = api.create(type_name)
    change = {"description": "changed"}
    if REQUIRED_ATTRIBUTES[type_name]:
        change[REQUIRED_ATTRIBUTES[type_name][0]] = "Renamed"
    response = api.post(f"{type_name}/{created['neo_id']}", change)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "object_updated"
    assert body["message"] == "Object updated successfully. Data changes saved."
    fetched = api.get(f"{type_name}/{created['neo_id']}").get_json()
    for name, value in change.items():
        assert fetched[name] == value
    for name, value in minimal_body(type_name).items():
        if name not in change:
            assert fetched[name] == value
    assert fetched["date_created"] == created["date_created"]


# --- required attributes and data ---------------------------------------------------------------

@pytest.mark.parametrize("type_name,field", REQUIRED_CASES)
def test_a_missing_required_field_is_400_and_nothing_is_saved(api, counts, type_name, field):
    body = minimal_body(type_name)
    del body[field]
    before = counts(type_name)
    response = api.post(type_name, body)
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_fields"
    assert field in response.get_json()["details"]
    assert counts(type_name) == before


@pytest.mark.parametrize("type_name,field", [(t, f) for t in ALL_TYPES for f in REQUIRED_ATTRIBUTES[t]])
@pytest.mark.parametrize("value", [None, "", "   ", 12, ["a"]])
def test_a_required_attribute_that_is_null_empty_or_not_text_is_400(api, counts, type_name, field, value):
    before = counts(type_name)
    response = api.post(type_name, {**minimal_body(type_name), field: value})
    assert response.status_code == 400
    assert field in response.get_json()["details"]
    assert counts(type_name) == before


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_an_unknown_field_is_400_and_nothing_is_saved(api, counts, type_name):
    before = counts(type_name)
    response = api.post(type_name, {**minimal_body(type_name), "colour": "red"})
    assert response.status_code == 400
    assert "colour" in response.get_json()["details"]
    assert counts(type_name) == before


@pytest.mark.parametrize("type_name", [t for t, children in CHILDREN.items()])
def test_a_children_list_in_the_body_is_400(api, counts, type_name):
    child = CHILDREN[type_name][0]
    before = counts(type_name)
    response = api.post(type_name, {**minimal_body(type_name), child: [f"{child}_1"]})
    assert response.status_code == 400
    assert child in response.get_json()["details"]
    assert counts(type_name) == before


@pytest.mark.parametrize("type_name,field,value", [
    ("block", "index", "twelve"),
    ("block", "index", 1.5),
    ("block", "index", True),
    ("segment", "filedatetime", "yesterday"),
    ("segment", "filedatetime", 20110510),
    ("recordingchannel", "index", [1]),
    ("segment", "description", 5),
    ("segment", "annotations", "not an object"),
])
def test_an_attribute_of_the_wrong_type_is_400(api, counts, type_name, field, value):
    before = counts(type_name)
    response = api.post(type_name, {**minimal_body(type_name), field: value})
    assert response.status_code == 400
    assert field in response.get_json()["details"]
    assert counts(type_name) == before


@pytest.mark.parametrize("raw,stored", [
    ("10/05/2011", "2011-05-10 00:00:00"),
    ("2011-05-10", "2011-05-10 00:00:00"),
    ("2011-05-10 14:30:05", "2011-05-10 14:30:05"),
])
def test_filedatetime_is_returned_as_yyyy_mm_dd_hh_mm_ss(api, raw, stored):
    created = api.create("segment", filedatetime=raw)
    assert created["filedatetime"] == stored
    assert api.get(f"segment/{created['neo_id']}").get_json()["filedatetime"] == stored


def test_an_integer_attribute_may_come_as_digits(api):
    assert api.create("recordingchannel", index="7")["index"] == 7


# --- units ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_name,field,domain", DATA_FIELD_CASES)
def test_units_are_case_insensitive_in_and_lower_case_out(api, type_name, field, domain):
    response = api.post(type_name, body_with(type_name, field, MIXED_CASE[domain]))
    assert response.status_code == 201, response.get_json()
    neo_id = response.get_json()["neo_id"]
    body = api.get(f"{type_name}/{neo_id}").get_json()
    assert body[field]["units"] == MIXED_CASE[domain].lower()
    assert body[field]["data"] == value_for(type_name, field)


@pytest.mark.parametrize("type_name,field,domain", DATA_FIELD_CASES)
@pytest.mark.parametrize("problem", ["foreign_unit", "unknown_unit", "no_units", "empty_units", "not_an_object"])
def test_a_wrong_or_missing_unit_is_400_and_nothing_is_saved(api, counts, type_name, field, domain, problem):
    body = {
        "foreign_unit": lambda: body_with(type_name, field, FOREIGN_UNIT[domain]),
        "unknown_unit": lambda: body_with(type_name, field, "parsec"),
        "no_units": lambda: body_with(type_name, field, None),
        "empty_units": lambda: body_with(type_name, field, ""),
        "not_an_object": lambda: {**minimal_body(type_name), field: value_for(type_name, field)},
    }[problem]()
    before = counts(type_name)
    response = api.post(type_name, body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["message_type"] == "invalid_fields"
    assert field in response.get_json()["details"]
    assert counts(type_name) == before


@pytest.mark.parametrize("type_name,field,domain", DATA_FIELD_CASES)
def test_units_without_data_is_400(api, counts, type_name, field, domain):
    before = counts(type_name)
    response = api.post(type_name, body_with(type_name, field, UNITS[domain][0], omit_data=True))
    assert response.status_code == 400
    assert field in response.get_json()["details"]
    assert counts(type_name) == before


@pytest.mark.parametrize("type_name,field,domain", DATA_FIELD_CASES)
def test_data_of_the_wrong_type_is_400(api, counts, type_name, field, domain):
    bad = ["a", "b"] if field in ARRAY_FIELDS else "two"
    before = counts(type_name)
    response = api.post(type_name, body_with(type_name, field, UNITS[domain][0], data=bad))
    assert response.status_code == 400
    assert field in response.get_json()["details"]
    assert counts(type_name) == before


@pytest.mark.parametrize("field,bad", [
    ("signal", 5.0),  # a number where an array belongs
    ("signal", [[1.0, 2.0], [3.0, 4.0]]),  # 2-D where 1-D belongs
    ("signal", [1.0, None, 3.0]),
    pytest.param("signal", [1.0, True]),
    ("signal", [1.0, [2.0]]),  # ragged
    ("t_start", [0.0]),  # an array where a number belongs
    ("t_start", True),
    ("sampling_rate", None),
])
def test_analogsignal_data_of_the_wrong_shape_is_400(api, counts, field, bad):
    body = minimal_body("analogsignal")
    body[field] = {"units": body[field]["units"], "data": bad}
    before = counts("analogsignal")
    response = api.post("analogsignal", body)
    assert response.status_code == 400
    assert field in response.get_json()["details"]
    assert counts("analogsignal") == before


@pytest.mark.parametrize("field,unit", [
    (field, unit) for domain, field in (("time", "t_start"), ("signal", "signal"), ("rate", "sampling_rate"))
    for unit in UNITS[domain]
])
def test_every_unit_of_the_seed_is_accepted(api, field, unit):
    response = api.post("analogsignal", body_with("analogsignal", field, unit))
    assert response.status_code == 201, response.get_json()
    got = api.get(f"analogsignal/{response.get_json()['neo_id']}").get_json()[field]
    assert got["units"] == unit


def test_an_object_may_hold_fields_in_different_units_of_one_domain(api):
    body = minimal_body("spiketrain")
    body["t_start"] = {"units": "s", "data": 0.0}
    body["t_stop"] = {"units": "ms", "data": 500}
    body["times"] = {"units": "mcs", "data": [1000.0, 2000.0]}
    created = api.post("spiketrain", body)
    assert created.status_code == 201, created.get_json()
    got = api.get(f"spiketrain/{created.get_json()['neo_id']}").get_json()
    assert (got["t_start"]["units"], got["t_stop"]["units"], got["times"]["units"]) == ("s", "ms", "mcs")


@pytest.mark.parametrize("type_name,body_change", [
    ("spiketrain", {"t_start": {"units": "s", "data": 1.0}, "t_stop": {"units": "ms", "data": 500}}),  # stop < start
    ("analogsignal", {"sampling_rate": {"units": "hz", "data": 0}}),
    ("analogsignal", {"sampling_rate": {"units": "khz", "data": -20}}),
    ("epoch", {"duration": {"units": "ms", "data": -1}}),
    ("irsaanalogsignal", {"times": {"units": "ms", "data": [0.0, 1.0]}}),  # 2 times for 3 samples
    ("spiketrain", {"waveforms": {"units": "mv", "data": [[1.0, 2.0]]}}),  # 1 waveform for 3 spikes
])
def test_fields_that_do_not_fit_together_are_400(api, counts, type_name, body_change):
    before = counts(type_name)
    response = api.post(type_name, {**minimal_body(type_name), **body_change})
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_fields"
    assert counts(type_name) == before


def test_an_update_that_breaks_consistency_is_400_and_changes_nothing(api):
    created = api.create("irsaanalogsignal")
    response = api.post(f"irsaanalogsignal/{created['neo_id']}", {"signal": {"units": "mv", "data": [1.0, 2.0]}})
    assert response.status_code == 400
    got = api.get(f"irsaanalogsignal/{created['neo_id']}").get_json()
    assert got["signal"]["data"] == minimal_body("irsaanalogsignal")["signal"]["data"]


def test_an_update_may_change_units_and_data_of_a_scalar(api):
    created = api.create("event")
    response = api.post(f"event/{created['neo_id']}", {"time": {"units": "S", "data": 2}})
    assert response.status_code == 200
    assert api.get(f"event/{created['neo_id']}").get_json()["time"] == {"units": "s", "data": 2}


def test_an_optional_data_field_can_be_cleared_with_null(api):
    created = api.create("spike", left_sweep={"units": "ms", "data": 0.5})
    assert created["left_sweep"] == {"units": "ms", "data": 0.5}
    response = api.post(f"spike/{created['neo_id']}", {"left_sweep": None})
    assert response.status_code == 200
    assert api.get(f"spike/{created['neo_id']}").get_json()["left_sweep"] is None


@pytest.mark.parametrize("type_name,field", [(t, f) for t in ALL_TYPES for f in REQUIRED_ATTRIBUTES[t]]
                         + [("analogsignal", "signal"), ("event", "time")])
def test_a_required_field_cannot_be_cleared_by_an_update(api, type_name, field):
    created = api.create(type_name)
    response = api.post(f"{type_name}/{created['neo_id']}", {field: None})
    assert response.status_code == 400
    got = api.get(f"{type_name}/{created['neo_id']}").get_json()
    assert got[field] == minimal_body(type_name)[field]
