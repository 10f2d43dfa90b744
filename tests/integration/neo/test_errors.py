"""Bad input is a 400/401/403/404 with nothing saved; other users' objects are out of reach."""
from __future__ import annotations

import pytest

from tests.integration.neo.conftest import ALL_TYPES, INTERNAL_SECRET, PREFIX, as_user, minimal_body

STABLE = ("name", "index", "block", "filedatetime", "description", "size", "date_created")


def snapshot(api, path):
    body = api.get(path).get_json()
    return {k: body.get(k) for k in STABLE}


# --- malformed bodies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,message_type", [
    (b'{"name": "Trial 12",', "invalid_json"),
    (b"{'name': 'single quotes'}", "invalid_json"),
    (b'{"name": NaN}', "invalid_json"),
    (b"\xff\xfe\x00garbage", "invalid_json"),
    (b"", "empty_body"),
    (b"   ", "empty_body"),
    (b'"a string"', "invalid_json"),
    (b"42", "invalid_json"),
    (b"null", "invalid_json"),
    (b"[]", "empty_body"),
])
def test_a_body_that_is_no_json_object_is_400_and_nothing_is_saved(api, counts, raw, message_type):
    before = counts("segment")
    response = api.client.post(api.url("segment"), data=raw, headers=api.headers, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["message_type"] == message_type
    assert set(response.get_json()) >= {"message", "message_type"}
    assert counts("segment") == before


@pytest.mark.parametrize("raw", [b'{"name": ', b"", b"[1, 2]", b'"x"'])
def test_a_malformed_update_is_400_and_changes_nothing(api, raw):
    segment = api.create("segment", name="kept")["neo_id"]
    before = snapshot(api, f"segment/{segment}")
    response = api.client.post(api.url(f"segment/{segment}"), data=raw, headers=api.headers,
                               content_type="application/json")
    assert response.status_code == 400
    assert snapshot(api, f"segment/{segment}") == before


@pytest.mark.parametrize("body", [{}, {"neo_id": "segment_1", "author": "mallory", "size": 5}])
def test_an_empty_update_is_400(api, body):
    segment = api.create("segment")["neo_id"]
    response = api.post(f"segment/{segment}", body)
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "empty_update"


def test_server_fields_in_a_body_are_ignored_not_forged(api):
    created = api.create("segment", author="mallory", neo_id="segment_1", size=10**6, date_created="1999-01-01 00:00:00")
    assert created["author"] == api.username and created["size"] == 0
    assert not created["date_created"].startswith("1999")


@pytest.mark.parametrize("change", [
    {"name": 5}, {"index": "x"}, {"colour": "red"}, {"block": "block_999999"}, {"filedatetime": "soon"},
    {"name": "ok", "index": "x"},  # one bad field spoils the whole update
])
def test_a_bad_update_is_400_and_changes_nothing(api, change):
    segment = api.create("segment", name="kept", index=3)["neo_id"]
    before = snapshot(api, f"segment/{segment}")
    response = api.post(f"segment/{segment}", change)
    assert response.status_code == 400
    assert snapshot(api, f"segment/{segment}") == before


def test_every_problem_is_named_at_once(api):
    response = api.post("analogsignal", {"name": 1, "signal": {"units": "ms", "data": [1]}, "colour": "red"})
    assert response.status_code == 400
    assert set(response.get_json()["details"]) == {"name", "signal", "colour", "sampling_rate", "t_start"}


@pytest.mark.parametrize("index", [2**63, "99999999999999999999999"])
def test_an_integer_attribute_beyond_64_bits_is_400(api, counts, index):
    before = counts("segment")
    response = api.post("segment", {"name": "x", "index": index})
    assert response.status_code == 400
    assert counts("segment") == before


# --- JSON list create ----------------------------------------------------------------------------------

def test_a_json_list_creates_every_object(api):
    segment = api.create("segment")["neo_id"]
    bodies = [{**minimal_body("event"), "label": f"e{i}", "segment": segment} for i in range(5)]
    response = api.post("event", bodies)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["object_selected"] == 5 and body["message_type"] == "objects_created"
    assert body["logged_in_as"] == api.username
    assert [api.get(f"event/{i}").get_json()["label"] for i in body["selected"]] == [f"e{i}" for i in range(5)]
    assert api.get(f"segment/{segment}").get_json()["event"] == body["selected"]


@pytest.mark.parametrize("bad_index,bad", [
    (0, {"time": {"units": "ms", "data": 1}}),  # no label
    (2, {"label": "x", "time": {"units": "mv", "data": 1}}),
    (4, {"label": "x", "time": {"units": "ms", "data": 1}, "segment": "segment_999999"}),
    (3, "not an object"),
    (1, {"label": "x", "time": {"units": "ms", "data": 1}, "colour": "red"}),
])
def test_one_bad_item_in_a_list_is_400_naming_its_index_and_nothing_is_created(api, counts, bad_index, bad):
    bodies = [{**minimal_body("event"), "label": f"e{i}"} for i in range(5)]
    bodies[bad_index] = bad
    before = counts("event")
    response = api.post("event", bodies)
    assert response.status_code == 400
    body = response.get_json()
    assert body["details"]["index"] == bad_index
    assert f"Object {bad_index}" in body["message"]
    assert counts("event") == before
    assert api.get("event").get_json()["object_total"] == 0


def test_a_list_with_a_foreign_parent_creates_nothing(api, other, counts):
    theirs = other.create("segment")["neo_id"]
    before = counts("event")
    response = api.post("event", [minimal_body("event"), {**minimal_body("event"), "segment": theirs}])
    assert response.status_code == 400 and response.get_json()["details"]["index"] == 1
    assert counts("event") == before


# --- types and ids ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("get", "neuron"), ("get", "neuron/1"), ("post", "neuron"), ("post", "neuron/1"), ("delete", "neuron/1"),
    ("post", "neuron/bulk_update"), ("get", "neurons/1"),
])
def test_an_unknown_type_is_404(api, method, path):
    response = getattr(api, method)(path, **({"json": {"name": "x"}} if method == "post" else {}))
    assert response.status_code == 404
    assert response.get_json()["message_type"] == "unknown_type"


@pytest.mark.parametrize("raw", ["999999", "segment_999999", "0", "-1", "abc", "block_1", "segment_", "1.5",
                                 "segment_1_2", "9" * 30])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_a_bad_or_missing_id_is_404(api, raw, method):
    response = getattr(api, method)(f"segment/{raw}", **({"json": {"name": "x"}} if method == "post" else {}))
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["message_type"] == "not_found"


def test_trailing_slashes_are_optional(api):
    neo_id = api.create("segment")["neo_id"]
    assert api.client.get(f"{PREFIX}/segment/{neo_id}", headers=api.headers).status_code == 200
    assert api.client.get(f"{PREFIX}/segment", headers=api.headers).status_code == 200
    response = api.client.post(f"{PREFIX}/segment", json={"name": "no slash"}, headers=api.headers)
    assert response.status_code == 201


def test_the_type_index_lists_the_14_types(api):
    body = api.get("").get_json()
    assert sorted(body["types"]) == sorted(ALL_TYPES)
    assert body["types"]["segment"]["parents"] == ["block"]


# --- who may do what -------------------------------------------------------------------------------------

# Anonymous reads (public objects only) are in test_permissions.py; every write needs a login.
WRITES = [("post", "segment"), ("post", "segment/1"), ("delete", "segment/1"), ("post", "segment/bulk_update")]


@pytest.mark.parametrize("method,path", WRITES)
def test_anonymous_writes_are_401(anonymous, method, path):
    response = getattr(anonymous, method)(path, **({"json": {"name": "x"}} if method == "post" else {}))
    assert response.status_code == 401
    assert response.get_json()["message_type"] == "not_authenticated"


def test_a_forged_identity_header_is_401(client, counts):
    headers = as_user(1, "mallory", secret="not-the-internal-secret-0123456789")
    before = counts("segment")
    response = client.post(f"{PREFIX}/segment/", json={"name": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["message_type"] == "invalid_identity"
    assert counts("segment") == before


def test_another_users_object_is_403_and_stays_unchanged(api, other):
    segment = api.create("segment", name="mine")["neo_id"]
    signal = api.create("analogsignal", segment=segment)["neo_id"]
    for path in (f"segment/{segment}", f"analogsignal/{signal}"):
        type_name = path.split("/")[0]
        assert other.get(path).status_code == 403
        assert other.get(path, q="children").status_code == 403
        assert other.get(path, format="npy").status_code == 403
        assert other.get(f"info/{path.split('/')[1]}").status_code == 403
        assert other.post(path, {"description": "theirs"}).status_code == 403
        assert other.delete(path, cascade="true").status_code == 403
        assert other.get(type_name).get_json()["object_total"] == 0
        assert other.get(type_name, name__icontains="mine").get_json()["selected"] == []
    assert api.get(f"segment/{segment}").get_json()["description"] is None
    assert api.get(f"segment/{segment}").get_json()["analogsignal"] == [signal]
    bulk = other.post("segment/bulk_update", {"apply_to": [segment], "update": {"name": "theirs"}})
    assert bulk.status_code == 400
    assert api.get(f"segment/{segment}").get_json()["name"] == "mine"


def test_the_same_user_id_sees_its_objects_whatever_the_username(client, api):
    segment = api.create("segment")["neo_id"]
    renamed = client.get(f"{PREFIX}/segment/{segment}/", headers=as_user(api.user_id, "renamed"))
    assert renamed.status_code == 200 and renamed.get_json()["logged_in_as"] == "renamed"


def test_errors_are_json_with_message_and_message_type(api):
    response = api.client.put(f"{PREFIX}/segment/", headers=api.headers)
    assert response.status_code == 405
    assert response.is_json and response.get_json()["message_type"]
    response = api.get("segment/1/nothing-here")
    assert response.status_code == 404 and response.is_json
