"""Labels (docs/neo.md, *Labels*): a metadata value linked to NEO objects by list or saved selection,
removed wholly or partly, shown by `.../metadata/`, and filtered on by selections. The metadata
service is replaced by a fake (`app.extensions["neo_metadata"]`)."""
from __future__ import annotations

import pytest

from shared.access import FRIENDLY, PRIVATE, PUBLIC
from tests.integration.neo.conftest import change, minimal_body


class FakeMetadata:
    """The metadata service's `/internal/values/` answer: values with their property's read model."""

    def __init__(self):
        self.values_by_id: dict[int, dict] = {}
        self.calls = 0

    def add(self, value_id, *, owner, prop="StimulusColor", value="red", level=PRIVATE, readers=()):
        self.values_by_id[value_id] = {
            "id": f"value_{value_id}", "value_id": value_id, "value": value, "position": 0,
            "property_id": 1, "property_name": prop, "section_id": 1, "dtype": "string", "unit": None,
            "owner": owner, "safety_level": level, "readers": list(readers), "writers": [],
        }
        return f"value_{value_id}"

    def values(self, identity, value_ids):
        self.calls += 1
        wanted = list(dict.fromkeys(int(v) for v in value_ids))
        return ([self.values_by_id[v] for v in wanted if v in self.values_by_id],
                [v for v in wanted if v not in self.values_by_id])


_value_ids = iter(range(5000, 10_000_000))


@pytest.fixture
def metadata(neo_app):
    fake = FakeMetadata()
    previous = neo_app.extensions["neo_metadata"]
    neo_app.extensions["neo_metadata"] = fake
    yield fake
    neo_app.extensions["neo_metadata"] = previous


@pytest.fixture
def value(metadata, api):
    """A new value owned by `api`: `value(prop=..., value=..., level=...)` -> 'value_<n>'."""

    def new(**kwargs):
        kwargs.setdefault("owner", api.user_id)
        return metadata.add(next(_value_ids), **kwargs)

    return new


def post_label(api, body, status=201):
    response = api.client.post("/labels/", json=body, headers=api.headers)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def delete_label(api, label_id, body=None, status=200):
    response = api.client.delete(f"/labels/{label_id}/", json=body, headers=api.headers)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def object_metadata(api, neo_id, status=200):
    type_name = neo_id.rsplit("_", 1)[0]
    response = api.get(f"{type_name}/{neo_id}/metadata")
    assert response.status_code == status, response.get_json()
    return response.get_json()


def select(api, obj_type, lookups, status=200, **params):
    body = {"obj_type": obj_type, "querysets": [{"filter": lookups}]}
    response = api.client.post("/selections/", json=body, headers=api.headers, query_string=params)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def labels_of(db, neo_id):
    type_name, number = neo_id.rsplit("_", 1)
    return db[f"neo_{type_name}"].find_one({"_id": int(number)}).get("labels", [])


@pytest.fixture
def signals(api):
    return [api.create("analogsignal", name=f"Signal {i}")["neo_id"] for i in range(4)]


def test_label_by_list_and_read_metadata(api, signals, value, db):
    red = value(prop="StimulusColor", value="red")
    answer = post_label(api, {"value_id": red, "apply_to": signals[:2]})
    assert answer["label_id"].startswith("label_")
    assert answer["value_id"] == red and answer["object_total"] == 2
    assert sorted(answer["objects"]) == sorted(signals[:2])
    assert labels_of(db, signals[0]) == [int(red.split("_")[1])]
    assert labels_of(db, signals[2]) == []
    assert object_metadata(api, signals[0])["metadata"] == [["StimulusColor", "red"]]
    assert object_metadata(api, signals[2])["metadata"] == []
    # The label itself, for its owner.
    response = api.client.get(f"/labels/{answer['label_id']}/", headers=api.headers)
    assert response.status_code == 200 and response.get_json()["object_total"] == 2


def test_untyped_value_id_and_mixed_types(api, value, db):
    segment = api.create("segment")["neo_id"]
    signal = api.create("analogsignal")["neo_id"]
    number = int(value(value="blue").split("_")[1])
    answer = post_label(api, {"value_id": number, "apply_to": [segment, signal]})
    assert answer["object_total"] == 2
    assert labels_of(db, segment) == [number] and labels_of(db, signal) == [number]


def test_label_by_saved_selection(api, signals, value, db):
    api.create("analogsignal", name="Other")
    saved = api.client.post("/selections/", headers=api.headers, json={
        "obj_type": "analogsignal", "querysets": [{"filter": {"name__startswith": "Signal"}}], "save_as": "mine"})
    assert saved.status_code == 201
    green = value(value="green")
    answer = post_label(api, {"value_id": green, "selection_id": saved.get_json()["selection_id"]})
    assert sorted(answer["objects"]) == sorted(signals)
    assert select(api, "analogsignal", {"label": green})["selected"] == sorted(signals, key=lambda s: int(s.split("_")[1]))


def test_someone_elses_selection_is_refused(api, other, signals, value):
    saved = api.client.post("/selections/", headers=api.headers, json={
        "obj_type": "analogsignal", "querysets": [{}], "save_as": "private"}).get_json()["selection_id"]
    theirs = other.create("analogsignal")["neo_id"]
    other_value = value(owner=other.user_id)
    post_label(other, {"value_id": other_value, "apply_to": [theirs], "selection_id": saved}, status=403)


def test_selection_label_filters(api, signals, value):
    red, blue = value(value="red"), value(value="blue")
    post_label(api, {"value_id": red, "apply_to": signals[:2]})
    post_label(api, {"value_id": blue, "apply_to": signals[1:3]})
    order = lambda ids: sorted(ids, key=lambda s: int(s.split("_")[1]))  # noqa: E731
    red_number = int(red.split("_")[1])
    assert select(api, "analogsignal", {"label": red})["selected"] == order(signals[:2])
    assert select(api, "analogsignal", {"label": red_number})["selected"] == order(signals[:2])
    assert select(api, "analogsignal", {"label": str(red_number)})["selected"] == order(signals[:2])
    assert select(api, "analogsignal", {"label__in": [red, blue]})["selected"] == order(signals[:3])
    assert select(api, "analogsignal", {"label": red, "name": "Signal 1"})["selected"] == [signals[1]]
    body = {"obj_type": "analogsignal", "querysets": [{"filter": {"label": red}, "exclude": {"label": blue}}]}
    response = api.client.post("/selections/", json=body, headers=api.headers)
    assert response.get_json()["selected"] == [signals[0]]
    bad = select(api, "analogsignal", {"label__contains": "red"}, status=400)
    assert bad["details"]["field"] == "label__contains"


def test_label_filter_through_a_parent(api, value):
    segment = api.create("segment")["neo_id"]
    inside = api.create("analogsignal", segment=segment)["neo_id"]
    api.create("analogsignal")
    tag = value(value="trial")
    post_label(api, {"value_id": tag, "apply_to": [segment]})
    assert select(api, "analogsignal", {"segment__label": tag})["selected"] == [inside]


def test_event_label_is_its_attribute_and_labels_is_metadata(api, value):
    event = api.create("event", label="Stimulus on")["neo_id"]
    api.create("event", label="Other")
    assert select(api, "event", {"label": "Stimulus on"})["selected"] == [event]
    tag = value()
    post_label(api, {"value_id": tag, "apply_to": [event]})
    assert select(api, "event", {"labels": tag})["selected"] == [event]


def test_delete_whole_label(api, signals, value, db):
    red = value()
    label = post_label(api, {"value_id": red, "apply_to": signals})["label_id"]
    answer = delete_label(api, label)
    assert answer["deleted"] is True and sorted(answer["removed_from"]) == sorted(signals)
    assert all(labels_of(db, s) == [] for s in signals)
    assert select(api, "analogsignal", {"label": red})["selected"] == []
    delete_label(api, label, status=404)
    assert api.client.get(f"/labels/{label}/", headers=api.headers).status_code == 404


def test_delete_label_from_some_objects(api, signals, value, db):
    red = value()
    label = post_label(api, {"value_id": red, "apply_to": signals})["label_id"]
    answer = delete_label(api, label, {"apply_to": signals[:2]})
    assert answer["deleted"] is False and sorted(answer["removed_from"]) == sorted(signals[:2])
    assert answer["object_total"] == 2
    assert labels_of(db, signals[0]) == [] and labels_of(db, signals[3]) == [int(red.split("_")[1])]
    remaining = api.client.get(f"/labels/{label}/", headers=api.headers).get_json()["objects"]
    assert sorted(remaining) == sorted(signals[2:])


def test_delete_label_by_selection(api, signals, value, db):
    red = value()
    label = post_label(api, {"value_id": red, "apply_to": signals})["label_id"]
    saved = api.client.post("/selections/", headers=api.headers, json={
        "obj_type": "analogsignal", "querysets": [{"filter": {"name": "Signal 0"}}], "save_as": "first"}).get_json()
    delete_label(api, label, {"selection_id": saved["selection_id"]})
    assert labels_of(db, signals[0]) == [] and labels_of(db, signals[1]) != []


def test_another_label_with_the_same_value_keeps_it(api, signals, value, db):
    red = value()
    first = post_label(api, {"value_id": red, "apply_to": signals[:2]})["label_id"]
    post_label(api, {"value_id": red, "apply_to": signals[1:3]})
    delete_label(api, first)
    assert labels_of(db, signals[0]) == []
    assert labels_of(db, signals[1]) == [int(red.split("_")[1])]


def test_only_the_owner_may_delete_a_label(api, other, signals, value):
    label = post_label(api, {"value_id": value(), "apply_to": signals})["label_id"]
    delete_label(other, label, status=403)
    delete_label(other, label, {"apply_to": signals[:1]}, status=403)


def test_no_write_access_on_an_object_is_403(api, other, value, permissions, db):
    mine = api.create("analogsignal")["neo_id"]
    theirs = other.create("analogsignal")["neo_id"]
    tag = value()
    before = db["labels"].count_documents({})
    answer = post_label(api, {"value_id": tag, "apply_to": [mine, theirs]}, status=403)
    assert theirs in answer["details"]["objects"]
    # Readable but not writable: still 403.
    permissions(change(theirs, other, level=PUBLIC))
    post_label(api, {"value_id": tag, "apply_to": [mine, theirs]}, status=403)
    assert labels_of(db, mine) == [] and db["labels"].count_documents({}) == before
    # Shared for writing: allowed.
    permissions(change(theirs, other, level=PRIVATE, shared={api: 2}))
    post_label(api, {"value_id": tag, "apply_to": [mine, theirs]})
    assert labels_of(db, theirs) == [int(tag.split("_")[1])]


def test_unreadable_value_is_refused(api, other, signals, value, db):
    private = value(owner=other.user_id)
    before = db["labels"].count_documents({})
    post_label(api, {"value_id": private, "apply_to": signals}, status=403)
    post_label(api, {"value_id": "value_999999999", "apply_to": signals}, status=404)
    assert all(labels_of(db, s) == [] for s in signals) and db["labels"].count_documents({}) == before
    shared = value(owner=other.user_id, readers=[api.user_id])
    post_label(api, {"value_id": shared, "apply_to": signals[:1]})


def test_friendly_value_needs_friendship(api, other, signals, value):
    friendly = value(owner=other.user_id, level=FRIENDLY)
    post_label(api, {"value_id": friendly, "apply_to": signals[:1]}, status=403)
    public = value(owner=other.user_id, level=PUBLIC)
    post_label(api, {"value_id": public, "apply_to": signals[:1]})


def test_metadata_hides_values_the_reader_may_not_read(api, other, value, permissions):
    signal = api.create("analogsignal")["neo_id"]
    mine = value(prop="Color", value="red", level=PUBLIC)
    secret = value(prop="Secret", value="42", level=PRIVATE)
    post_label(api, {"value_id": mine, "apply_to": [signal]})
    post_label(api, {"value_id": secret, "apply_to": [signal]})
    assert sorted(object_metadata(api, signal)["metadata"]) == [["Color", "red"], ["Secret", "42"]]
    object_metadata(other, signal, status=403)
    permissions(change(signal, api, level=PUBLIC))
    assert object_metadata(other, signal)["metadata"] == [["Color", "red"]]


def test_metadata_of_unknown_object_is_404(api, metadata):
    object_metadata(api, "analogsignal_999999999", status=404)
    assert api.get("nosuchtype/nosuchtype_1/metadata").status_code == 404


@pytest.mark.parametrize("body,status,field", [
    ([1, 2], 400, "body"),
    ({"apply_to": ["analogsignal_1"]}, 400, "value_id"),
    ({"value_id": "red", "apply_to": ["analogsignal_1"]}, 400, "value_id"),
    ({"value_id": True, "apply_to": ["analogsignal_1"]}, 400, "value_id"),
    ({"value_id": "value_1"}, 400, "apply_to"),
    ({"value_id": "value_1", "apply_to": "analogsignal_1"}, 400, "apply_to"),
    ({"value_id": "value_1", "apply_to": []}, 400, "apply_to"),
    ({"value_id": "value_1", "apply_to": ["nonsense_1"]}, 400, "apply_to[0]"),
    ({"value_id": "value_1", "apply_to": [12]}, 400, "apply_to[0]"),
    ({"value_id": "value_1", "apply_to": [None]}, 400, "apply_to[0]"),
    ({"value_id": "value_1", "selection_id": {"a": 1}}, 400, "selection_id"),
    ({"value_id": "value_1", "apply_to": ["analogsignal_1"], "colour": 1}, 400, "colour"),
    ({"value_id": "value_1", "apply_to": ["analogsignal_999999999"]}, 404, "apply_to"),
    ({"value_id": "value_1", "selection_id": "selection_999999999"}, 404, None),
])
def test_bad_label_requests(api, metadata, db, body, status, field):
    before = db["labels"].count_documents({})
    answer = post_label(api, body, status=status)
    if field is not None:
        assert answer["details"]["field"] == field, answer
    assert db["labels"].count_documents({}) == before


def test_bad_delete_requests(api, signals, value, anonymous):
    label = post_label(api, {"value_id": value(), "apply_to": signals})["label_id"]
    delete_label(api, "label_999999999", status=404)
    delete_label(api, "nonsense", status=404)
    assert delete_label(api, label, {"apply_to": "x"}, status=400)["details"]["field"] == "apply_to"
    assert delete_label(api, label, {"colour": 1}, status=400)["details"]["field"] == "colour"
    response = api.client.delete(f"/labels/{label}/", data=b"{oops", headers={**api.headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert anonymous.client.post("/labels/", json={"value_id": 1, "apply_to": signals}).status_code == 401


def test_label_many_objects_in_one_request(api, value, db):
    response = api.post("analogsignal", [{"name": f"Many {i}", "sampling_rate": {"units": "hz", "data": 1000},
                                          "t_start": {"units": "ms", "data": 0},
                                          "signal": {"units": "mv", "data": [1.0]}} for i in range(300)])
    assert response.status_code == 201, response.get_json()
    ids = response.get_json()["selected"]
    tag = value()
    answer = post_label(api, {"value_id": tag, "apply_to": ids})
    assert answer["object_total"] == 300
    number = int(tag.split("_")[1])
    assert db["neo_analogsignal"].count_documents({"labels": number}) == 300
    found = select(api, "analogsignal", {"label": tag}, max_results=1000)
    assert found["object_total"] == 300


def test_id_filters_cover_exactly_the_ids():
    from services.neo.labels import id_filters

    ids = list(range(10, 130)) + [200, 202, 204] + list(range(300, 320))
    filters = list(id_filters(ids))
    assert {"_id": {"$gte": 10, "$lte": 129}} in filters
    covered = set()
    for where in filters:
        clause = where["_id"]
        covered.update(clause["$in"] if "$in" in clause else range(clause["$gte"], clause["$lte"] + 1))
        assert len(clause.get("$in", ())) <= 50
    assert covered == set(ids)


# --- `metadata` on NEO create and update; deleted objects leave their labels ------------------

def minimal():
    return minimal_body("analogsignal")


def value_number(value_id):
    return int(value_id.split("_")[1])


def labels_naming(db, neo_id):
    """{value number: [label numbers]} of the label documents that name `neo_id`."""
    found = {}
    for doc in db["labels"].find({"objects": neo_id}):
        found.setdefault(doc["value_id"], []).append(doc["_id"])
    return found


def update(api, neo_id, body, status=200, method="post"):
    type_name = neo_id.rsplit("_", 1)[0]
    response = getattr(api.client, method)(api.url(f"{type_name}/{neo_id}"), json=body, headers=api.headers)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_create_with_metadata(api, value, db):
    red, blue = value(prop="Color", value="red"), value(prop="Size", value="big")
    created = api.create("analogsignal", name="Labelled", metadata=[red, value_number(blue)])
    signal = created["neo_id"]
    assert "metadata" not in created
    assert labels_of(db, signal) == [value_number(red), value_number(blue)]
    assert set(labels_naming(db, signal)) == {value_number(red), value_number(blue)}
    assert sorted(object_metadata(api, signal)["metadata"]) == [["Color", "red"], ["Size", "big"]]
    assert select(api, "analogsignal", {"label": red})["selected"] == [signal]
    # Not stored as an attribute of the object.
    stored = db["neo_analogsignal"].find_one({"_id": value_number(signal)})
    assert stored.get("metadata") in (None, [])


def test_create_many_with_metadata(api, value, db):
    red, blue = value(), value()
    bodies = [{**minimal(), "metadata": [red]}, {**minimal(), "metadata": [red, blue]}, minimal()]
    response = api.post("analogsignal", bodies)
    assert response.status_code == 201, response.get_json()
    first, second, third = response.get_json()["selected"]
    assert labels_of(db, first) == [value_number(red)]
    assert labels_of(db, second) == [value_number(red), value_number(blue)]
    assert labels_of(db, third) == []
    red_labels = list(db["labels"].find({"value_id": value_number(red), "objects": first}))
    assert len(red_labels) == 1 and sorted(red_labels[0]["objects"]) == sorted([first, second])
    assert red_labels[0]["owner"] == api.user_id


@pytest.mark.parametrize("bad", ["red", [True], ["value_x"], [None], [0], {"value_id": 1}])
def test_create_with_bad_metadata_is_400_and_creates_nothing(api, metadata, db, bad):
    before = (api.total("analogsignal"), db["labels"].count_documents({}))
    response = api.post("analogsignal", {**minimal(), "metadata": bad})
    assert response.status_code == 400, response.get_json()
    assert "metadata" in response.get_json()["details"]
    assert (api.total("analogsignal"), db["labels"].count_documents({})) == before


def test_create_with_unknown_or_unreadable_value_creates_nothing(api, other, value, db):
    mine = value()
    private = value(owner=other.user_id)
    before = (api.total("analogsignal"), db["labels"].count_documents({}))
    response = api.post("analogsignal", {**minimal(), "metadata": [mine, "value_999999999"]})
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["details"]["field"] == "metadata"
    assert response.get_json()["details"]["values"] == ["value_999999999"]
    response = api.post("analogsignal", {**minimal(), "metadata": [mine, private]})
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["details"] == {"field": "metadata", "values": [private]}
    response = api.post("analogsignal", [minimal(), {**minimal(), "metadata": [private]}])
    assert response.status_code == 403, response.get_json()
    assert (api.total("analogsignal"), db["labels"].count_documents({})) == before
    # Shared with the caller: allowed.
    shared = value(owner=other.user_id, readers=[api.user_id])
    assert labels_of(db, api.create("analogsignal", metadata=[shared])["neo_id"]) == [value_number(shared)]


def test_update_replaces_metadata(api, value, db):
    red, blue, green = value(prop="Color", value="red"), value(prop="Color", value="blue"), value(prop="Color", value="green")
    signal = api.create("analogsignal", metadata=[red, blue])["neo_id"]
    version = db["neo_analogsignal"].find_one({"_id": value_number(signal)})["version"]
    update(api, signal, {"metadata": [blue, green]})
    assert labels_of(db, signal) == [value_number(blue), value_number(green)]
    assert set(labels_naming(db, signal)) == {value_number(blue), value_number(green)}
    assert db["neo_analogsignal"].find_one({"_id": value_number(signal)})["version"] == version + 1
    assert sorted(object_metadata(api, signal)["metadata"]) == [["Color", "blue"], ["Color", "green"]]
    assert select(api, "analogsignal", {"label": red})["selected"] == []
    # The same list again adds no label documents; PUT works too, alongside other fields.
    count = db["labels"].count_documents({})
    update(api, signal, {"metadata": [blue, green], "name": "Renamed"}, method="put")
    assert db["labels"].count_documents({}) == count
    assert labels_of(db, signal) == [value_number(blue), value_number(green)]
    # A label made with POST /labels/ is replaced as well; an empty list clears them all.
    post_label(api, {"value_id": red, "apply_to": [signal]})
    update(api, signal, {"metadata": []})
    assert labels_of(db, signal) == [] and labels_naming(db, signal) == {}
    assert object_metadata(api, signal)["metadata"] == []
    # Updates without `metadata` leave the labels alone.
    update(api, signal, {"metadata": [red]})
    update(api, signal, {"name": "Again"})
    assert labels_of(db, signal) == [value_number(red)]


def test_update_metadata_other_objects_keep_their_labels(api, value, db):
    red = value()
    first, second = (api.create("analogsignal", metadata=[red])["neo_id"] for _ in range(2))
    label = post_label(api, {"value_id": red, "apply_to": [first, second]})["label_id"]
    update(api, first, {"metadata": []})
    assert labels_of(db, second) == [value_number(red)]
    remaining = api.client.get(f"/labels/{label}/", headers=api.headers).get_json()["objects"]
    assert remaining == [second]
    # Deleting that label afterwards does not touch `first` nor break `second`'s other label.
    delete_label(api, label)
    assert labels_of(db, first) == [] and labels_of(db, second) == [value_number(red)]


def test_update_with_bad_or_unreadable_metadata_changes_nothing(api, other, value, db):
    red = value()
    private = value(owner=other.user_id)
    signal = api.create("analogsignal", metadata=[red], name="Kept")["neo_id"]
    before = db["labels"].count_documents({})
    answer = update(api, signal, {"metadata": "value_1", "name": "Changed"}, status=400)
    assert "metadata" in answer["details"]
    answer = update(api, signal, {"metadata": [private], "name": "Changed"}, status=403)
    assert answer["details"]["field"] == "metadata"
    update(api, signal, {"metadata": ["value_999999999"], "name": "Changed"}, status=404)
    stored = db["neo_analogsignal"].find_one({"_id": value_number(signal)})
    assert stored["name"] == "Kept" and stored["labels"] == [value_number(red)]
    assert db["labels"].count_documents({}) == before


def test_bulk_update_metadata(api, value, db):
    red, blue = value(), value()
    signals = [api.create("analogsignal", metadata=[red])["neo_id"] for _ in range(3)]
    response = api.post("analogsignal/bulk_update", {"apply_to": signals[:2], "update": {"metadata": [blue]}})
    assert response.status_code == 200, response.get_json()
    assert labels_of(db, signals[0]) == [value_number(blue)] and labels_of(db, signals[1]) == [value_number(blue)]
    assert labels_of(db, signals[2]) == [value_number(red)]
    assert set(labels_naming(db, signals[0])) == {value_number(blue)}
    response = api.post("analogsignal/bulk_update", {"apply_to": signals, "update": {"metadata": ["value_999999999"]}})
    assert response.status_code == 404
    assert labels_of(db, signals[2]) == [value_number(red)]


def test_deleted_objects_leave_their_label_documents(api, value, db):
    red = value()
    segment = api.create("segment", metadata=[red])["neo_id"]
    inside = api.create("analogsignal", segment=segment)["neo_id"]
    lone = api.create("analogsignal")["neo_id"]
    label = post_label(api, {"value_id": red, "apply_to": [inside, lone]})["label_id"]
    assert api.delete(f"analogsignal/{lone}").status_code == 200
    assert labels_naming(db, lone) == {}
    assert api.client.get(f"/labels/{label}/", headers=api.headers).get_json()["objects"] == [inside]
    assert api.delete(f"segment/{segment}", cascade="true").status_code == 200
    assert labels_naming(db, segment) == {} and labels_naming(db, inside) == {}
    answer = api.client.get(f"/labels/{label}/", headers=api.headers).get_json()
    assert answer["objects"] == [] and answer["object_total"] == 0
    delete_label(api, label)
