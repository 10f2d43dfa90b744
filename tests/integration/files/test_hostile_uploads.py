"""Hostile uploads against the files service and its worker (with the neo and metadata services):
each class of attack ends as a failed conversion with a clear reason, leaves nothing behind outside
its own scratch space, and other users' conversions keep finishing meanwhile. The files are built
in tests/hostile_files.py; the rules themselves: tests/unit/test_hostile_content_rules.py; the
sandbox's confinement: tests/integration/sandbox/."""
from __future__ import annotations

import time

import pymongo
import pytest

from shared.access import acl_of
from tests import hostile_files as hostile
from tests.integration.files.conftest import number

MiB = 1024 * 1024
QUOTA = 1024 * MiB


@pytest.fixture(scope="module")
def stack_config(stack_config):
    """Small limits, so that each attack meets its limit within seconds."""
    return {**stack_config, "SANDBOX_CPU_SECONDS": 4, "SANDBOX_WALL_SECONDS": 60.0, "HDF5_MAX_DATASET_BYTES": 64 * MiB,
            "ARCHIVE_MAX_TOTAL_BYTES": 6 * MiB, "CONVERSION_CONCURRENCY": 2, "DATAFILE_QUOTA_BYTES": QUOTA}


@pytest.fixture(autouse=True)
def _worker(worker):
    return worker


def failed(api, upload, timeout=60.0):
    name, data = upload
    fields = api.wait_state(api.upload(name, data)["id"], timeout=timeout)
    assert fields["current_state"] == "failed", fields
    return fields


def nothing_left_behind(files_dir):
    """No scratch folder outlives its conversion."""
    leftovers = list((files_dir / "tmp").glob("parse-*")) if (files_dir / "tmp").exists() else []
    assert not leftovers, leftovers


def test_the_issues_exploit_hdf5_external_storage_on_the_environment_is_refused(api, files_dir):
    fields = failed(api, hostile.external_storage("/proc/self/environ"))
    assert "keeps its data in external files; external storage is refused" in fields["operations_log"]
    assert fields["operations_log"].startswith("hdf5: failure")
    assert api.neo_total("analogsignal") == 0  # nothing was created from it
    nothing_left_behind(files_dir)


def test_external_storage_on_another_users_upload_is_refused(api, other, files_dir):
    theirs = other.upload("secret.bin", b"another user's data", convert=0)
    fields = failed(api, hostile.external_storage(str(files_dir / "objects" / f"{number(theirs['id']) % 1000:03d}" /
                                                      str(number(theirs["id"]))), size=19))
    assert "external storage is refused" in fields["operations_log"]


def test_a_virtual_dataset_is_refused(api, other, files_dir):
    theirs = other.upload("theirs.h5", b"x", convert=0)
    fields = failed(api, hostile.virtual_dataset(str(files_dir / "objects" / "000" / str(number(theirs["id"])))))
    assert "virtual dataset" in fields["operations_log"]


def test_an_external_link_is_refused(api):
    fields = failed(api, hostile.external_link("/etc/passwd"))
    assert "external link" in fields["operations_log"] and "links out of the file are refused" in fields["operations_log"]


def test_a_huge_declared_dataset_is_refused_before_allocation(api):
    fields = failed(api, hostile.huge_declared_dataset())
    assert "declares 8000000000000 bytes" in fields["operations_log"]


def test_a_pax_header_bomb_is_refused(api):
    fields = failed(api, hostile.pax_header_bomb())
    assert "a PAX header declares 4294967296 bytes" in fields["operations_log"]


def test_a_zip_bomb_is_refused(api):
    fields = failed(api, hostile.zip_bomb())
    assert fields["operations_log"].startswith("zip: failure (expands past the 6291456 bytes left")


def test_a_yaml_alias_bomb_is_refused(api):
    fields = failed(api, hostile.yaml_alias_bomb())
    assert "aliases" in fields["operations_log"] and fields["operations_log"].startswith("odml: failure")


def test_an_xml_entity_bomb_is_refused(api):
    fields = failed(api, hostile.xml_entity_bomb())
    assert "DOCTYPE" in fields["operations_log"]


def test_nested_archives_share_one_expansion_budget(api, db, files_dir):
    name, data = hostile.nested_archive_bomb()
    root = api.upload(name, data)
    assert api.wait_state(root["id"], timeout=60)["current_state"] == "converted"  # 4 MiB of 6 MiB
    deadline = time.monotonic() + 90
    while True:
        children = list(db["datafiles"].find({"archive_root": number(root["id"])}, {"current_state": 1, "operations_log": 1,
                                                                                    "title": 1}))
        archives = [c for c in children if c["title"].endswith(".zip")]
        if archives and all(c["current_state"] in ("converted", "failed") for c in archives):
            break
        assert time.monotonic() < deadline, children
        time.sleep(0.2)
    refused = [c["operations_log"] for c in archives if c["current_state"] == "failed"]
    over_budget = [log for log in refused if "share one budget" in log or "left of the upload's budget" in log]
    too_deep = [log for log in refused if "nested more than 3 levels deep" in log]
    assert over_budget and len(over_budget) + len(too_deep) == len(refused), refused
    budget = db["archive_budgets"].find_one({"_id": number(root["id"])})
    assert budget["bytes"] <= 6 * MiB
    nothing_left_behind(files_dir)


def test_a_reader_that_never_ends_is_stopped_while_other_users_conversions_finish(api, other):
    name, data = hostile.reader_that_never_ends()
    stuck = api.upload(name, data)
    assert api.wait_state(stuck["id"], states=("converting",), timeout=30)["current_state"] == "converting"
    started = time.monotonic()
    meanwhile = other.upload("quick.csv", b"1,2,3\n4,5,6\n")
    done = other.wait_state(meanwhile["id"], timeout=30)
    assert done["current_state"] == "converted", done["operations_log"]
    stopped = api.wait_state(stuck["id"], timeout=60)
    assert stopped["current_state"] == "failed"
    assert "neo-io: failure (stopped: it used more than 4 CPU seconds (the CPU-time limit))" in stopped["operations_log"]
    assert time.monotonic() - started < 60


def test_archive_members_start_with_the_archives_permissions_not_the_sections(api, other, db):
    """An archive uploaded into a public section, then made private, yields private members."""
    import io
    import zipfile

    config = api.client.application.config
    section = api.section("public folder")
    metadata = pymongo.MongoClient(config["MONGO_URL"])[config["MONGO_DB_PREFIX"] + "metadata"]
    metadata["sections"].update_one({"_id": number(section["id"])}, {"$set": {"safety_level": 1}})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("folder/data.csv", "1,2,3\n")
    upload = api.upload("a.zip", buffer.getvalue(), convert=0, section_id=section["id"])
    assert db["datafiles"].find_one({"_id": number(upload["id"])})["safety_level"] == 1
    db["datafiles"].update_one({"_id": number(upload["id"])}, {"$set": {  # made private, shared with one colleague
        "safety_level": 3, "shared_with": {other.username: 1}, "readers": [other.user_id]}})
    response = api.post(f"/datafiles/{number(upload['id'])}/convert/")
    assert response.status_code == 202, response.get_json()
    fields = api.wait_state(upload["id"], timeout=60)
    assert fields["current_state"] == "converted", fields["operations_log"]
    (member_id,) = [number(i) for i in fields["extracted_info"]["datafile_ids"]]
    member = db["datafiles"].find_one({"_id": member_id})
    assert member["section"] is not None
    assert (acl_of(member)["safety_level"], acl_of(member)["shared_with"], acl_of(member)["readers"]) == (
        3, {other.username: 1}, [other.user_id])
    (folder_id,) = [number(i) for i in fields["extracted_info"]["section_ids"]]
    folder = metadata["sections"].find_one({"_id": folder_id})
    assert (folder["safety_level"], folder["shared_with"], folder["readers"]) == (3, {other.username: 1}, [other.user_id])


def test_an_archive_whose_members_pass_the_quota_is_refused_before_anything_is_stored(api, db, files_app):
    import io
    import zipfile

    import numpy as np

    from services.files.quota import reserve_datafile_bytes

    reserve_datafile_bytes(files_app.extensions["files_context"], api.user_id, QUOTA - 3 * MiB // 2)
    text = np.random.default_rng(1).choice(list(b"abcdefghijklmnop"), size=2 * MiB).astype(np.uint8).tobytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notes.txt", text)  # compresses about 2:1, so the upload itself fits
    fields = failed(api, ("notes.zip", buffer.getvalue()))
    assert "left of your datafile storage quota" in fields["operations_log"]
    assert db["datafiles"].count_documents({"parent_datafile": number(fields["id"])}) == 0


def test_sections_of_an_odml_import_start_with_the_datafiles_permissions(api, other, db):
    from tests.integration.files.test_convert_archives_odml import odml_document

    config = api.client.application.config
    metadata = pymongo.MongoClient(config["MONGO_URL"])[config["MONGO_DB_PREFIX"] + "metadata"]
    section = api.section("public metadata")
    metadata["sections"].update_one({"_id": number(section["id"])}, {"$set": {"safety_level": 1}})
    upload = api.upload("session.odml", odml_document(), convert=0, section_id=section["id"])
    db["datafiles"].update_one({"_id": number(upload["id"])}, {"$set": {
        "safety_level": 3, "shared_with": {other.username: 2}, "readers": [other.user_id], "writers": [other.user_id]}})
    assert api.post(f"/datafiles/{number(upload['id'])}/convert/").status_code == 202
    fields = api.wait_state(upload["id"], timeout=60)
    assert fields["current_state"] == "converted", fields["operations_log"]
    imported = [metadata["sections"].find_one({"_id": number(i)}) for i in fields["extracted_info"]["section_ids"]]
    assert imported and all((s["safety_level"], s["shared_with"], s["readers"], s["writers"]) ==
                            (3, {other.username: 2}, [other.user_id], [other.user_id]) for s in imported)
