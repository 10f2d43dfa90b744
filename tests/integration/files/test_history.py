"""The action history of datafiles (docs/files.md, History): what uploads, changes, conversions and
permission changes record, `GET /datafiles/<id>/history/` (dates, paging, permissions) and the
internal per-user query. The neo and metadata services run for real; a WSGI wrapper notes the
`X-Gnode-Source` header of every call the files service makes to them."""
from __future__ import annotations

import pytest

from services.files.acl import apply_permissions_changed
from shared.history import SOURCE_HEADER
from tests.integration.files.conftest import ServerThread, envelope, number


class SourceLog:
    """Wraps a WSGI app: notes (method, path, X-Gnode-Source) of every request it serves."""

    def __init__(self, app):
        self.app, self.calls = app, []

    def __call__(self, environ, start_response):
        self.calls.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_X_GNODE_SOURCE")))
        return self.app(environ, start_response)

    def sources(self, path_part: str = "") -> set:
        return {source for _, path, source in self.calls if path_part in path}


@pytest.fixture(scope="module")
def seen():
    return {}


@pytest.fixture(scope="module")
def neighbours(stack_config, seen):
    """The conftest's real neo and metadata services, each behind a SourceLog."""
    from services.metadata.app import create_app as metadata_app
    from services.neo.app import create_app as neo_app

    seen["neo"], seen["metadata"] = SourceLog(neo_app(stack_config)), SourceLog(metadata_app(stack_config))
    neo, metadata = ServerThread(seen["neo"]), ServerThread(seen["metadata"])
    yield {"NEO_URL": neo.url, "METADATA_URL": metadata.url}
    neo.stop()
    metadata.stop()


def history(api, datafile_id, status=200, **params):
    response = api.get(f"/datafiles/{number(datafile_id)}/history/", **params)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def actions(api, datafile_id, **params):
    return [entry["action"] for entry in history(api, datafile_id, **params)["history"]]


def entry(api, datafile_id, action):
    (found,) = [e for e in history(api, datafile_id)["history"] if e["action"] == action]
    return found


def acl_change(fields, version, owner, *, level=3, shared=None):
    """An acl service change; `shared`: {Api: 1 | 2}."""
    shared = shared or {}
    return {"resource": fields["id"], "owner": owner.user_id, "safety_level": level,
            "shared_with": {u.username: grant for u, grant in shared.items()},
            "readers": [u.user_id for u in shared], "writers": [u.user_id for u, grant in shared.items() if grant == 2],
            "version": version}


# --- uploads and changes --------------------------------------------------------------------------------

def test_upload_records_who_uploaded_what(api):
    fields = api.upload("rec.smr", b"x" * 12345, convert=0)
    body = history(api, fields["id"])
    assert body["subject"] == fields["id"] and body["object_total"] == 1
    (uploaded,) = body["history"]
    assert uploaded["action"] == "uploaded" and uploaded["user"] == api.username
    assert uploaded["resources"] == [fields["id"]] and uploaded["service"] == "files"
    assert uploaded["result"] == {"size": 12345, "sha256": fields["sha256"], "section": None}
    assert uploaded["description"] == f"uploaded 'rec.smr' (12,345 bytes, sha256 {fields['sha256']}) by {api.username}"
    assert uploaded["source"] == {"kind": "request"}


def test_update_move_and_delete_are_recorded(api, db):
    section = api.section("recordings")
    fields = api.upload("a.bin", b"abc", convert=0)
    assert api.post(f"/datafiles/{number(fields['id'])}/", json={"caption": "day 1", "tags": "rat"}).status_code == 200
    assert api.post(f"/datafiles/{number(fields['id'])}/", json={"section": section["id"]}).status_code == 200
    assert api.post(f"/datafiles/{number(fields['id'])}/", json={"caption": "day 1"}).status_code == 200  # no change
    assert actions(api, fields["id"]) == ["uploaded", "updated", "moved"]
    updated = entry(api, fields["id"], "updated")
    assert updated["result"] == {"fields": ["caption", "tags"]} and updated["user"] == api.username
    moved = entry(api, fields["id"], "moved")
    assert moved["result"] == {"from": None, "to": section["id"]}
    assert moved["description"] == f"moved into section {number(section['id'])} by {api.username}"

    assert api.delete(f"/datafiles/{number(fields['id'])}/").status_code == 200
    # The datafile is gone (its history answers 404 like its details); the entry stays in the collection.
    history(api, fields["id"], status=404)
    deleted = db["history"].find_one({"resources": fields["id"], "action": "deleted"})
    assert deleted["actor"] == api.username and deleted["description"] == f"deleted by {api.username}"


# --- conversions ----------------------------------------------------------------------------------------

def test_conversion_lists_what_it_created_and_tells_neo_why(api, worker, seen):
    uploaded = api.upload("signals.csv", b"1.0,2.0,3.0\n4.0,5.0,6.0\n")
    fields = api.wait_state(uploaded["id"])
    assert fields["current_state"] == "converted", fields
    assert actions(api, uploaded["id"]) == ["uploaded", "conversion_requested", "converted"]
    requested = entry(api, uploaded["id"], "conversion_requested")
    assert requested["user"] == api.username and requested["result"]["trigger"] == "upload"
    assert requested["result"]["task_id"] == uploaded["last_task_id"]

    converted = entry(api, uploaded["id"], "converted")
    (block,) = fields["extracted_info"]["blocks"]
    assert converted["user"] == api.username
    assert converted["result"]["created"] == [block] and converted["result"]["objects"] == 4  # block, segment, 2 signals
    assert converted["result"]["conversion_type"] == 3 and converted["result"]["converter"] == "ascii-csv"
    assert converted["description"] == f"converted to NEO: {block} and 3 more objects"
    assert converted["source"] == {"kind": "conversion", "resource": uploaded["id"]}
    # Every neo call of this job said it was made for the conversion of this datafile.
    creates = [c for c in seen["neo"].calls if c[0] == "POST" and c[2] and c[2].endswith(f":{uploaded['id']}")]
    assert len(creates) == 4
    assert {c[2] for c in creates} == {f"conversion:{uploaded['id']}"}


def test_a_conversion_requested_later_names_the_requester(api, worker):
    fields = api.upload("notes.txt", b"Dear diary,\ntoday the rat slept.\n", convert=0)
    assert api.post(f"/datafiles/{number(fields['id'])}/convert/").status_code == 202
    assert api.wait_state(fields["id"])["current_state"] == "non_convertible"
    assert actions(api, fields["id"]) == ["uploaded", "conversion_requested", "conversion_failed"]
    assert entry(api, fields["id"], "conversion_requested")["result"]["trigger"] == "request"
    failed = entry(api, fields["id"], "conversion_failed")
    assert failed["user"] == api.username and failed["result"]["state"] == "non_convertible"
    assert failed["description"].startswith("not convertible: no converter recognises")


def test_a_failed_conversion_records_the_reason(api, worker, tmp_path):
    import h5py

    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_group("g").create_dataset("x", data=[1.0])
    fields = api.wait_state(api.upload("empty.h5", path.read_bytes())["id"])
    assert fields["current_state"] == "failed"
    failed = entry(api, fields["id"], "conversion_failed")
    assert failed["result"]["state"] == "failed" and "no numeric array at the root" in failed["result"]["reason"]
    assert failed["description"].startswith("conversion failed: hdf5: no numeric array at the root")


def test_an_odml_import_tells_metadata_it_is_one(api, worker, seen):
    import odml

    doc = odml.Document(author="me", version="1")
    odml.Section(name="Experiment", type="experiment", parent=doc)
    fields = api.wait_state(api.upload("experiment.xml", str(odml.tools.XMLWriter(doc)).encode())["id"])
    assert fields["current_state"] == "converted", fields
    assert f"odml_import:{fields['id']}" in seen["metadata"].sources("/internal/import/")
    converted = entry(api, fields["id"], "converted")
    assert converted["result"]["sections"] == fields["extracted_info"]["section_ids"] != []
    assert converted["result"]["created"] == [] and converted["description"].startswith("imported into the metadata")


# --- permission changes ---------------------------------------------------------------------------------

def test_permission_changes_are_grouped_and_recorded_once(api, other, db):
    first, second, third = (api.upload(f"{n}.bin", b"abc", convert=0) for n in "abc")
    event = envelope("acl.permissions.changed", {
        "changes": [acl_change(first, 1, api, level=1, shared={other: 1}),
                    acl_change(second, 1, api, level=1, shared={other: 1}),
                    acl_change(third, 1, api, level=3),
                    {**acl_change(first, 1, api), "resource": "section_5"}],  # not a file: ignored
        "by": api.user_id, "by_username": api.username, "reason": "acl"})
    apply_permissions_changed(db, event)
    apply_permissions_changed(db, event)  # redelivered
    shared = entry(api, first["id"], "permissions_changed")
    assert shared["id"] == f"{event['event_id']}:0" and shared["user"] == api.username
    assert shared["resources"] == [first["id"], second["id"]]
    assert shared["description"] == f"permissions changed by {api.username}: public, shared with {other.username} (read)"
    assert shared["result"] == {"safety_level": 1, "safety": "public", "shared_with": {other.username: 1}, "reason": "acl"}
    private = entry(api, third["id"], "permissions_changed")
    assert private["id"] == f"{event['event_id']}:1" and private["description"].endswith(": private")
    assert db["history"].count_documents({"_id": {"$regex": f"^{event['event_id']}"}}) == 2


def test_inherited_permissions_have_no_actor(api, db):
    fields = api.upload("d.bin", b"abc", convert=0)
    apply_permissions_changed(db, envelope("acl.permissions.changed", {
        "changes": [acl_change(fields, 1, api, level=2)], "by": None, "reason": "inherited"}))
    changed = entry(api, fields["id"], "permissions_changed")
    assert changed["user"] is None and changed["description"] == "permissions changed by the system (inherited): friendly"


# --- reading the history --------------------------------------------------------------------------------

def test_dates_and_paging(api):
    fields = api.upload("e.bin", b"abc", convert=0)
    api.post(f"/datafiles/{number(fields['id'])}/", json={"caption": "x"})
    assert actions(api, fields["id"], start_date="2000-01-01", end_date="2999-12-31") == ["uploaded", "updated"]
    assert actions(api, fields["id"], start_date="2999-01-01") == []
    assert actions(api, fields["id"], end_date="2000-01-01") == []
    page = history(api, fields["id"], max_results=1, offset=1)
    assert [e["action"] for e in page["history"]] == ["updated"] and page["object_total"] == 2
    assert page["selected_range"] == [1, 1]

    bad = history(api, fields["id"], status=400, start_date="yesterday")
    assert bad["details"] == {"parameter": "start_date"} and "start_date" in bad["message"]
    reversed_ = history(api, fields["id"], status=400, start_date="2020-02-01", end_date="2020-01-01")
    assert "start_date" in reversed_["message"]
    assert "max_results" in history(api, fields["id"], status=400, max_results="0")["message"].replace("-", "_")
    assert "since" in history(api, fields["id"], status=400, since="2020-01-01")["message"]


def test_who_may_read_a_history(api, other, users, client, db):
    stranger = users()
    fields = api.upload("f.bin", b"abc", convert=0)
    history(stranger, fields["id"], status=403)
    assert client.get(f"/datafiles/{number(fields['id'])}/history/").status_code == 401
    history(api, 999_999_999, status=404)
    assert api.get("/datafiles/nonsense/history/").status_code == 404
    apply_permissions_changed(db, envelope("acl.permissions.changed", {
        "changes": [acl_change(fields, 1, api, shared={other: 1})], "by": api.user_id, "by_username": api.username}))
    assert actions(other, fields["id"]) == ["uploaded", "permissions_changed"]


def test_internal_history_by_user(api, other, client):
    mine = api.upload("g.bin", b"abc", convert=0)
    other.upload("h.bin", b"abc", convert=0)
    response = client.get("/internal/history/", query_string={"actor": api.username})
    assert response.status_code == 200, response.get_json()
    entries = response.get_json()["history"]
    assert [(e["action"], e["resources"]) for e in entries] == [("uploaded", [mine["id"]])]
    assert client.get("/internal/history/").status_code == 400
