"""`POST /internal/datafiles/readable/`: which datafiles a caller may read, for the metadata service
(a section shows only those, docs/permissions.md). The caller comes in the signed identity header."""
from __future__ import annotations

import pytest

from tests.integration.files.conftest import number
from tests.integration.files.test_permissions import apply, change, share  # noqa: F401 (apply: a fixture)

PATH = "/internal/datafiles/readable/"


def readable(client, headers, ids) -> list[int]:
    response = client.post(PATH, json={"datafile_ids": ids}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["readable"]


def test_each_caller_gets_the_ids_they_may_read_in_the_order_asked(api, other, users, client, apply):
    stranger = users()
    mine, shared_one, public, gone = (api.upload(f"{name}.txt", b"abc", convert=0)
                                      for name in ("mine", "shared", "public", "gone"))
    ids = [number(d["id"]) for d in (public, shared_one, mine, gone)]
    assert apply(share(api, shared_one, 1, users={other: 1}), change(public["id"], 1, api.user_id, level=1)) == 2
    assert api.delete(f"/datafiles/{number(gone['id'])}/").status_code == 200
    asked = [*ids, 999_999_999]
    assert readable(client, api.headers, asked) == ids[:3]
    assert readable(client, other.headers, asked) == ids[:2]
    assert readable(client, stranger.headers, asked) == ids[:1]
    assert readable(client, {}, asked) == ids[:1]  # no identity: anonymous, public files only
    assert readable(client, api.headers, [f"datafile_{ids[2]}", str(ids[2]), ids[2]]) == [ids[2]]
    assert readable(client, api.headers, []) == []


@pytest.mark.parametrize("body", [
    [1, 2], {"ids": [1]}, {"datafile_ids": "1,2"}, {"datafile_ids": [1, "section_3"]}, {"datafile_ids": [True]},
    {"datafile_ids": [0]}, {"datafile_ids": [{"id": 1}]}, {"datafile_ids": list(range(1, 10_002))},
])
def test_bad_bodies_are_400(api, client, body):
    response = client.post(PATH, json=body, headers=api.headers)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["message_type"] in ("invalid_fields", "invalid_id")


def test_malformed_json_and_a_forged_identity_are_refused(api, client):
    response = client.post(PATH, data=b"{not json", headers=api.headers, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["message_type"] == "invalid_json"
    forged = {"X-Gnode-Identity": "not-a-signed-token"}
    assert client.post(PATH, json={"datafile_ids": [1]}, headers=forged).status_code == 401
