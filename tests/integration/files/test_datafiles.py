"""Upload, list, details, changes, moves, download (with Range) and delete of datafiles."""
from __future__ import annotations

import hashlib

import pytest

from tests.integration.files.conftest import number


def test_upload_records_size_and_sha256_and_the_seed_fields(api, files_dir):
    data = b"1.0, 2.0, 3.0\n4.0, 5.0, 6.0\n" * 100
    fields = api.upload("ascii_csv.txt", data, convert=0, caption="two signals", tags="csv test")
    assert fields["title"] == "ascii_csv.txt"
    assert fields["size"] == len(data)
    assert fields["sha256"] == hashlib.sha256(data).hexdigest()
    assert fields["current_state"] == "uploaded" and fields["current_state_code"] == 1
    assert fields["caption"] == "two signals" and fields["tags"] == "csv test"
    assert fields["safety_level"] == 3 and fields["section"] is None and fields["owner"] == api.username
    for key in ("last_task_id", "operations_log", "conversion_type", "extracted_info", "date_created", "last_modified"):
        assert key in fields
    stored = files_dir / "objects" / f"{number(fields['id']) % 1000:03d}" / str(number(fields["id"]))
    assert stored.read_bytes() == data


def test_the_list_envelope_of_seed_000(api):
    first = api.upload("a.txt", b"abc", convert=0)
    second = api.upload("b.txt", b"defg", convert=0)
    body = api.get("/datafiles/").get_json()
    assert body["message_type"] == "object_selected" and body["logged_in_as"] == api.username
    assert body["objects_selected"] == 2 and body["selected_range"] == [0, 1]
    item = body["selected"][0]
    assert item["model"] == "datafiles.datafile" and item["permalink"] == f"/datafiles/{number(first['id'])}"
    assert [i["fields"]["id"] for i in body["selected"]] == [first["id"], second["id"]]
    paged = api.get("/datafiles/", **{"max-results": 1, "offset": 1}).get_json()
    assert [i["fields"]["id"] for i in paged["selected"]] == [second["id"]] and paged["object_total"] == 2


def test_list_filters(api, other):
    section = api.section("recordings")
    in_section = api.upload("in.txt", b"x", convert=0, section_id=section["id"], caption="Monkey V1")
    loose = api.upload("loose.txt", b"y", convert=0, tags="rat")
    ids = lambda **params: [i["fields"]["id"] for i in api.get("/datafiles/", **params).get_json()["selected"]]  # noqa: E731
    assert ids(section_id=section["id"]) == [in_section["id"]]
    assert ids(q="monkey") == [in_section["id"]]
    assert ids(q="RAT") == [loose["id"]]
    assert ids(owner=api.username) == [in_section["id"], loose["id"]]
    assert ids(owner=other.username) == []
    assert ids(created_min="2000-01-01", created_max="2999-01-01 00:00:00") == [in_section["id"], loose["id"]]
    assert ids(created_max="2000-01-01") == []
    assert ids(visibility="private") == [in_section["id"], loose["id"]]
    assert ids(visibility="public") == [] and ids(visibility="shared") == []
    assert api.get("/datafiles/", visibility="odd").status_code == 400
    assert api.get("/datafiles/", created_min="yesterday").status_code == 400
    assert api.get("/datafiles/", colour="red").status_code == 400
    assert other.get("/datafiles/").get_json()["objects_selected"] == 0


def test_private_by_default_and_refused_to_others(api, other, client):
    fields = api.upload("secret.bin", b"\x00\x01", convert=0)
    path = f"/datafiles/{number(fields['id'])}/"
    assert other.get(path).status_code == 403
    assert other.get(path + "download/").status_code == 403
    assert client.get(path).status_code == 401
    assert other.post(path, {"caption": "mine"}).status_code == 403
    assert other.delete(path).status_code == 403
    assert api.get("/datafiles/999999999/").status_code == 404
    assert api.get("/datafiles/section_1/").status_code == 404


def test_upload_into_a_section_takes_its_permissions(api, other):
    section = api.section("shared folder")
    # Share the section with `other` (the acl service's job; here straight in the read model).
    import pymongo

    metadata_db = pymongo.MongoClient(api.client.application.config["MONGO_URL"])[
        api.client.application.config["MONGO_DB_PREFIX"] + "metadata"]
    metadata_db["sections"].update_one({"_id": number(section["id"])}, {"$set": {
        "shared_with": {other.username: 1}, "readers": [other.user_id]}})
    fields = api.upload("data.txt", b"1,2,3", convert=0, section_id=section["id"])
    assert fields["section"] == section["id"] and fields["shared_with"] == {other.username: 1}
    assert other.get(f"/datafiles/{number(fields['id'])}/").status_code == 200
    listed = other.get("/datafiles/", visibility="shared").get_json()["selected"]
    assert [i["fields"]["id"] for i in listed] == [fields["id"]]
    # other may read the section but not add files to it
    assert other.upload("mine.txt", b"1", status=403, convert=0, section_id=section["id"])
    assert api.upload("x.txt", b"1", status=404, convert=0, section_id=999999999)["message_type"] == "unknown_section"
    assert api.upload("x.txt", b"1", status=400, convert=0, section_id="property_3")["message_type"] == "invalid_id"


def test_modify_caption_tags_and_move_keeps_the_acl(api):
    first, second = api.section("first"), api.section("second")
    fields = api.upload("f.txt", b"abc", convert=0, section_id=first["id"])
    path = f"/datafiles/{number(fields['id'])}/"
    response = api.post(path, {"caption": "Some REAL description goes here..", "section": number(second["id"]),
                               "tags": "a b"})
    assert response.status_code == 200, response.get_json()
    changed = response.get_json()["selected"][0]["fields"]
    assert changed["caption"] == "Some REAL description goes here.." and changed["tags"] == "a b"
    assert changed["section"] == second["id"] and changed["safety_level"] == fields["safety_level"]
    assert api.post(path, {"size": 3}).status_code == 400
    assert api.post(path, {"section": 999999999}).status_code == 404
    unmoved = api.post(path, {"section": None}).get_json()["selected"][0]["fields"]
    assert unmoved["section"] is None


def test_download_streams_the_original_with_range_support(api):
    data = bytes(range(256)) * 4096
    fields = api.upload("raw signal.bin", data, convert=0)
    path = f"/datafiles/{number(fields['id'])}/download/"
    response = api.get(path)
    assert response.status_code == 200 and response.data == data
    assert 'attachment; filename="raw signal.bin"' in response.headers["Content-Disposition"]
    assert response.headers["Accept-Ranges"] == "bytes"
    part = api.client.get(path, headers={**api.headers, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.data == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    alias = api.get(f"/datafiles/{number(fields['id'])}/binary/")
    assert alias.status_code == 200 and alias.data == data


def test_delete_refuses_while_collaborators_have_access_unless_forced(api, other, db, files_dir):
    fields = api.upload("doomed.txt", b"bye", convert=0)
    datafile_id = number(fields["id"])
    db["datafiles"].update_one({"_id": datafile_id}, {"$set": {"shared_with": {other.username: 1}, "readers": [other.user_id]}})
    response = api.delete(f"/datafiles/{datafile_id}/")
    assert response.status_code == 409 and response.get_json()["message_type"] == "has_collaborators"
    assert other.delete(f"/datafiles/{datafile_id}/", force="true").status_code == 403
    assert api.delete(f"/datafiles/{datafile_id}/", force="true").status_code == 200
    assert api.get(f"/datafiles/{datafile_id}/").status_code == 404
    assert not (files_dir / "objects" / f"{datafile_id % 1000:03d}" / str(datafile_id)).exists()
    doc = db["datafiles"].find_one({"_id": datafile_id})
    assert doc is None or doc["_tombstone"] is True


@pytest.mark.parametrize("form, message_type", [
    ({}, "invalid_upload"),
    ({"other": "x"}, "invalid_upload"),
])
def test_bad_uploads_are_400_and_leave_no_bytes(api, files_dir, form, message_type):
    before = sorted(files_dir.rglob("*")) if files_dir.exists() else []
    response = api.client.post("/datafiles/", data=form, headers=api.headers, content_type="multipart/form-data")
    assert response.status_code == 400 and response.get_json()["message_type"] == message_type
    response = api.client.post("/datafiles/", data=b"not multipart", headers=api.headers, content_type="text/plain")
    assert response.status_code == 400
    assert (sorted(files_dir.rglob("*")) if files_dir.exists() else []) == before


def test_unknown_upload_field_is_400_and_removes_the_bytes(api, files_dir):
    before = sorted(p for p in files_dir.rglob("*") if p.is_file()) if files_dir.exists() else []
    body = api.upload("x.txt", b"abc", status=400, convert=0, colour="red")
    assert body["message_type"] == "invalid_fields"
    assert sorted(p for p in files_dir.rglob("*") if p.is_file()) == before


def test_a_truncated_body_is_refused_and_leaves_nothing(api, files_dir):
    boundary = "xyz"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"raw_file\"; filename=\"a.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + b"\x00" * 5000
    before = sorted(p for p in files_dir.rglob("*") if p.is_file()) if files_dir.exists() else []
    response = api.client.post("/datafiles/", data=body, headers=api.headers,
                               content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 400
    assert sorted(p for p in files_dir.rglob("*") if p.is_file()) == before
