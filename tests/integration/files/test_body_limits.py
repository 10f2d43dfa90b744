"""Request bodies of the files service are bounded while they are read (issue 11, item 4): uploads
by MAX_UPLOAD_BYTES, every other body by MAX_BODY_BYTES."""
import pytest

from services.files.app import create_app
from tests.integration.files.conftest import as_user
from tests.request_bodies import (
    MiB,
    EndlessBody,
    EndlessMultipart,
    assert_payload_too_large,
    multipart,
    send_chunked,
    send_declared,
)

DEFAULT_LIMIT = 1 * MiB  # MAX_BODY_BYTES
UPLOAD_LIMIT = 256 * 1024  # MAX_UPLOAD_BYTES in the small app below
UPLOAD_BODY_LIMIT = UPLOAD_LIMIT + MiB  # and the multipart framing


@pytest.fixture(scope="module")
def small(files_config):
    return create_app({**files_config, "MAX_UPLOAD_BYTES": UPLOAD_LIMIT}).test_client()


@pytest.fixture
def owner(unique):
    return as_user(7_700_001, f"limits_{unique}")


def stored(db, files_dir):
    return db["datafiles"].count_documents({}), sorted(p for p in files_dir.rglob("*") if p.is_file())


def test_a_chunked_body_past_the_limit_is_413_and_the_service_keeps_answering(api, db, files_dir):
    datafile = api.upload("kept.txt", b"1,2,3\n")
    before = stored(db, files_dir)
    endless = EndlessBody()
    response = send_chunked(api.client, "POST", f"/datafiles/{datafile['id']}/", endless, headers=api.headers)
    assert_payload_too_large(response, DEFAULT_LIMIT)
    assert endless.served <= DEFAULT_LIMIT + 1
    assert stored(db, files_dir) == before
    assert api.get(f"/datafiles/{datafile['id']}/").status_code == 200
    api.upload("after.txt", b"4,5,6\n")


def test_a_declared_length_past_the_limit_is_413_without_reading(api, small, owner):
    datafile = api.upload("kept.txt", b"1,2,3\n")
    response = send_declared(api.client, "POST", f"/datafiles/{datafile['id']}/", DEFAULT_LIMIT + 1, headers=api.headers)
    assert_payload_too_large(response, DEFAULT_LIMIT)
    response = send_declared(small, "POST", "/datafiles/", UPLOAD_BODY_LIMIT + 1,
                             content_type="multipart/form-data; boundary=x", headers=owner)
    assert_payload_too_large(response, UPLOAD_BODY_LIMIT)
    assert api.get(f"/datafiles/{datafile['id']}/").status_code == 200


def test_uploads_stream_in_chunked_and_stop_at_their_limit(small, owner, db, files_dir):
    body, content_type = multipart({"raw_file": (b"7" * (UPLOAD_LIMIT - 1000), "chunked.bin"), "convert": "0"})
    response = send_chunked(small, "POST", "/datafiles/", body, content_type=content_type, headers=owner)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["selected"][0]["fields"]["size"] == UPLOAD_LIMIT - 1000

    before = stored(db, files_dir)
    endless = EndlessMultipart("limits-boundary", "raw_file", {"convert": "0"})
    response = send_chunked(small, "POST", "/datafiles/", endless,
                            content_type="multipart/form-data; boundary=limits-boundary", headers=owner)
    assert_payload_too_large(response)  # the upload's own count of file bytes or the body guard
    assert endless.served <= UPLOAD_BODY_LIMIT + 1
    assert stored(db, files_dir) == before  # no datafile, and no partial file left behind
    body, content_type = multipart({"raw_file": (b"8" * 1000, "after.bin"), "convert": "0"})
    assert send_chunked(small, "POST", "/datafiles/", body, content_type=content_type, headers=owner).status_code == 201
