"""Selections, labels by selection and list filters never bring other users' objects into memory
(issue 11, item 5): the permission filter is part of every query sent to MongoDB, and the answer is
paged from the cursors, so documents the caller may not read never leave the database."""
from __future__ import annotations

from typing import Any

import pytest
from pymongo.synchronous.collection import Collection
from pymongo.synchronous.command_cursor import CommandCursor
from pymongo.synchronous.cursor import Cursor

from tests.integration.neo.conftest import change, minimal_body
from tests.integration.neo.test_labels import FakeMetadata

SIGNALS = "neo_analogsignal"
PERMISSION_FIELDS = {"owner", "readers", "safety_level"}
THEIRS = 60


@pytest.fixture
def received(monkeypatch):
    """Every batch of documents MongoDB sends to a find or aggregate cursor in this process:
    (collection, filter or pipeline, documents)."""
    batches: list[tuple[str, Any, list[dict]]] = []
    find_refresh, command_refresh, aggregate = Cursor._refresh, CommandCursor._refresh, Collection.aggregate

    def spy_find(self):
        count = find_refresh(self)
        batches.append((self.collection.name, self._spec, list(self._data)))
        return count

    def spy_aggregate(self, pipeline, *args, **kwargs):
        cursor = aggregate(self, pipeline, *args, **kwargs)
        cursor.spied_pipeline = pipeline
        batches.append((self.name, pipeline, list(cursor._data)))  # the first batch comes with the answer
        return cursor

    def spy_more(self):
        count = command_refresh(self)
        batches.append((self._collection.name, getattr(self, "spied_pipeline", None), list(self._data)))
        return count

    monkeypatch.setattr(Cursor, "_refresh", spy_find)
    monkeypatch.setattr(Collection, "aggregate", spy_aggregate)
    monkeypatch.setattr(CommandCursor, "_refresh", spy_more)
    return batches


def carries_permission(query: Any) -> bool:
    if isinstance(query, dict):
        return bool(PERMISSION_FIELDS & set(query)) or any(carries_permission(v) for v in query.values())
    if isinstance(query, list):
        return any(carries_permission(item) for item in query)
    return False


def ids_of(neo_ids: list[str]) -> set[int]:
    return {int(n.rsplit("_", 1)[1]) for n in neo_ids}


def create_many(api, mark: str, count: int, **fields) -> list[str]:
    bodies = [{**minimal_body("analogsignal"), "name": mark, **fields} for _ in range(count)]
    response = api.post("analogsignal", bodies)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["selected"]


@pytest.fixture
def crowd(api, other, users, permissions):
    """Signals named alike: many private ones of `other`, two of `api`, one of `other` made public
    and one shared with `api`; `hidden` are those `api` may not read."""
    mark = f"crowd-{api.user_id}"
    hidden = create_many(other, mark, THEIRS)
    mine = create_many(api, mark, 2)
    public, shared = create_many(other, mark, 2)
    permissions(change(public, other, 1), change(shared, other, 3, {api: 1}))
    return {"mark": mark, "hidden": ids_of(hidden), "readable": sorted([*mine, public, shared],
                                                                         key=lambda n: int(n.rsplit("_", 1)[1]))}


def signal_queries(received) -> list[tuple[Any, list[dict]]]:
    return [(spec, docs) for collection, spec, docs in received if collection == SIGNALS]


def assert_nothing_hidden_left_mongodb(received, hidden: set[int]) -> None:
    queries = signal_queries(received)
    assert queries, "the spy saw no query"
    for spec, docs in queries:
        assert carries_permission(spec), spec
        assert not hidden & {doc["_id"] for doc in docs}, spec


def select(api, querysets, **params) -> dict:
    response = api.client.post("/selections/", json={"obj_type": "analogsignal", "querysets": querysets},
                               headers=api.headers, query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("shape", ["one indexed field", "querysets or'ed", "with an exclude"])
def test_a_selection_matching_many_objects_of_another_user_never_loads_them(api, crowd, received, shape):
    mark = crowd["mark"]
    querysets = {
        "one indexed field": [{"filter": {"name": mark}}],
        "querysets or'ed": [{"filter": {"name": mark}}, {"filter": {"name": f"{mark}-none"}}],
        "with an exclude": [{"filter": {"name__startswith": mark}, "exclude": {"name": f"{mark}-none"}}],
    }[shape]
    received.clear()
    answer = select(api, querysets)
    assert answer["selected"] == crowd["readable"] and answer["object_total"] == 4
    assert_nothing_hidden_left_mongodb(received, crowd["hidden"])


def test_selections_page_from_the_cursors(api, crowd, received):
    received.clear()
    answer = select(api, [{"filter": {"name": crowd["mark"]}}], max_results=2, offset=1)
    assert answer["selected"] == crowd["readable"][1:3]
    assert answer["object_total"] == 4 and answer["selected_as_of"] == 1
    assert_nothing_hidden_left_mongodb(received, crowd["hidden"])


def test_a_path_through_parents_never_loads_other_users_objects(api, other, received):
    mark = f"crowd-segment-{api.user_id}"
    theirs = other.create("segment", name=mark)["neo_id"]
    hidden = create_many(other, "in their segment", 30, segment=theirs)
    mine = api.create("segment", name=mark)["neo_id"]
    mine_signals = create_many(api, "in my segment", 2, segment=mine)
    received.clear()
    assert select(api, [{"filter": {"segment__name": mark}}])["selected"] == mine_signals
    assert_nothing_hidden_left_mongodb(received, ids_of(hidden))
    for collection, spec, docs in received:
        if collection == "neo_segment":
            assert carries_permission(spec) and int(theirs.rsplit("_", 1)[1]) not in {d["_id"] for d in docs}


def test_labelling_by_selection_never_loads_other_users_objects(api, other, neo_app, received):
    metadata = FakeMetadata()
    previous, neo_app.extensions["neo_metadata"] = neo_app.extensions["neo_metadata"], metadata
    try:
        mark = f"crowd-label-{api.user_id}"
        hidden = create_many(other, mark, THEIRS)
        mine = create_many(api, mark, 2)
        saved = api.client.post("/selections/", headers=api.headers, json={
            "obj_type": "analogsignal", "querysets": [{"filter": {"name": mark}}], "save_as": mark}).get_json()
        value = metadata.add(7_000_000 + api.user_id, owner=api.user_id)
        received.clear()
        response = api.client.post("/labels/", headers=api.headers,
                                   json={"value_id": value, "selection_id": saved["selection_id"]})
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["objects"] == mine
        queries = signal_queries(received)
        assert queries and not any(ids_of(hidden) & {d["_id"] for d in docs} for _, docs in queries)
    finally:
        neo_app.extensions["neo_metadata"] = previous


def test_a_list_filter_never_loads_other_users_objects(api, crowd, received):
    received.clear()
    response = api.get("analogsignal", name=crowd["mark"], max_results=3)
    assert response.get_json()["selected"] == crowd["readable"][:3]
    assert response.get_json()["object_total"] == 4
    assert_nothing_hidden_left_mongodb(received, crowd["hidden"])
