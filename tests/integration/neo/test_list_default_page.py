"""The default page of 1000 objects (its own module: a thousand objects slow the stand-in's other queries)."""
from __future__ import annotations

from tests.integration.neo.conftest import minimal_body


def test_lists_default_to_1000_objects_and_report_the_total(api):
    response = api.post("event", [{**minimal_body("event"), "label": f"e{i}"} for i in range(1003)])
    assert response.status_code == 201
    ids = response.get_json()["selected"]
    body = api.get("event").get_json()
    assert body["object_total"] == 1003
    assert body["object_selected"] == 1000
    assert body["selected"] == ids[:1000]
    rest = api.get("event", range_start=1000).get_json()
    assert rest["selected"] == ids[1000:]
    assert (rest["object_total"], rest["object_selected"], rest["selected_as_of"]) == (1003, 3, 1000)
