"""Datafile storage quotas (`DATAFILE_QUOTA_BYTES`, services/files/quota.py): uploads over the quota
are refused with 507 JSON and leave nothing behind, whether their size is declared or they come
chunked; concurrent uploads cannot together pass it; deleting a datafile gives its bytes back."""
from __future__ import annotations

import io
import threading

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from services.files.app import create_app
from services.files.quota import COUNTERS, reserve_datafile_bytes
from shared.quota import QuotaExceeded
from tests.integration.files.conftest import as_user, number

KiB, MiB = 1024, 1024 * 1024
QUOTA = 2 * MiB
BOUNDARY = "quota-test-boundary"


class MultipartSource(io.RawIOBase):
    """A `raw_file` upload of `size` bytes made as it is read, counting what the server read."""

    def __init__(self, size: int, filename: str = "rec.bin"):
        super().__init__()
        self.head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"convert\"\r\n\r\n0\r\n"
                     f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"raw_file\"; filename=\"{filename}\"\r\n"
                     f"Content-Type: application/octet-stream\r\n\r\n").encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.size = size
        self.total = len(self.head) + size + len(self.tail)
        self.sent = 0

    def readable(self) -> bool:
        return True

    def read(self, wanted: int = -1) -> bytes:
        wanted = self.total - self.sent if wanted is None or wanted < 0 else min(wanted, self.total - self.sent)
        out = bytearray()
        while len(out) < wanted:
            at = self.sent + len(out)
            if at < len(self.head):
                out += self.head[at:at + wanted - len(out)]
            elif at < len(self.head) + self.size:
                out += b"x" * min(wanted - len(out), len(self.head) + self.size - at)
            else:
                done = at - len(self.head) - self.size
                out += self.tail[done:done + wanted - len(out)]
        self.sent += len(out)
        return bytes(out)


@pytest.fixture(scope="module")
def quota_app(files_config):
    return create_app({**files_config, "DATAFILE_QUOTA_BYTES": QUOTA})


@pytest.fixture
def uploader(quota_app, users):
    """A fresh user of the quota app: `post(source, declared=True)` sends a streamed body."""
    api = users()
    api.client = quota_app.test_client()

    def post(source: MultipartSource, *, declared: bool):
        environ = EnvironBuilder(path="/datafiles/", method="POST", headers=as_user(api.user_id, api.username),
                                 content_type=f"multipart/form-data; boundary={BOUNDARY}",
                                 input_stream=io.BytesIO()).get_environ()
        environ["wsgi.input"] = source
        if declared:
            environ["CONTENT_LENGTH"] = str(source.total)
        else:  # chunked: no length; the server reads until the body ends
            environ.pop("CONTENT_LENGTH", None)
            environ["HTTP_TRANSFER_ENCODING"] = "chunked"
            environ["wsgi.input_terminated"] = True
        return Response.from_app(quota_app, environ)  # no shared client: uploads may run in threads

    api.post_stream = post
    return api


def used(db, api) -> int:
    doc = db[COUNTERS].find_one({"_id": api.user_id})
    return int(doc["used"]) if doc else 0


def stored_files(files_dir) -> set[str]:
    return {str(p) for p in (files_dir / "objects").rglob("*") if p.is_file()}


def owned(db, api) -> int:
    return db["datafiles"].count_documents({"owner": api.user_id, "_tombstone": {"$ne": True}})


def exceeded(response) -> dict:
    assert response.status_code == 507, response.get_data(as_text=True)
    body = response.get_json()
    assert body["message_type"] == "quota_exceeded" and body["details"]["quota_bytes"] == QUOTA, body
    return body


def test_a_declared_size_over_the_quota_is_refused_before_reading(uploader, db, files_dir):
    uploader.upload("first.bin", b"y" * MiB, convert=0)
    assert used(db, uploader) == MiB
    before_files, before_used = stored_files(files_dir), used(db, uploader)
    source = MultipartSource(3 * MiB)
    body = exceeded(uploader.post_stream(source, declared=True))
    assert source.sent == 0  # refused before a byte of the body was read
    assert body["details"]["used_bytes"] == MiB
    assert (used(db, uploader), owned(db, uploader), stored_files(files_dir)) == (before_used, 1, before_files)


def test_a_chunked_upload_over_the_quota_is_stopped_and_removed(uploader, db, files_dir):
    before_files = stored_files(files_dir)
    source = MultipartSource(8 * MiB)
    exceeded(uploader.post_stream(source, declared=False))
    assert source.sent < QUOTA + 2 * MiB  # stopped once past the quota, not read to its end
    assert (used(db, uploader), owned(db, uploader), stored_files(files_dir)) == (0, 0, before_files)
    # a declared length the multipart margin hides is stopped in the same way
    source = MultipartSource(QUOTA + 100 * KiB)
    exceeded(uploader.post_stream(source, declared=True))
    assert (used(db, uploader), owned(db, uploader), stored_files(files_dir)) == (0, 0, before_files)


def test_uploads_up_to_the_quota_fit_and_are_counted_exactly(uploader, db):
    for size in (QUOTA - 300 * KiB, 300 * KiB):  # the second fills it to the byte, chunked
        response = uploader.post_stream(MultipartSource(size), declared=size > 300 * KiB)
        assert response.status_code == 201, response.get_json()
    assert used(db, uploader) == QUOTA
    exceeded(uploader.post_stream(MultipartSource(1), declared=False))
    assert used(db, uploader) == QUOTA


def test_concurrent_uploads_cannot_together_pass_the_quota(uploader, db, files_dir):
    size, count = 600 * KiB, 8  # the quota holds three of them
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def upload(declared: bool):
        source = MultipartSource(size)
        barrier.wait()
        statuses.append(uploader.post_stream(source, declared=declared).status_code)

    threads = [threading.Thread(target=upload, args=(i % 2 == 0,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(set(statuses)) == [201, 507] and len(statuses) == count, statuses
    stored = statuses.count(201)
    assert 1 <= stored <= QUOTA // size
    assert used(db, uploader) == stored * size == sum(
        d["size"] for d in db["datafiles"].find({"owner": uploader.user_id}))


def test_deleting_gives_the_bytes_back(uploader, db):
    response = uploader.post_stream(MultipartSource(QUOTA), declared=False)
    assert response.status_code == 201, response.get_json()
    datafile = response.get_json()["selected"][0]["fields"]["id"]
    exceeded(uploader.post_stream(MultipartSource(10), declared=True))
    deleted = uploader.client.delete(f"/datafiles/{number(datafile)}/", headers=uploader.headers)
    assert deleted.status_code == 200, deleted.get_json()
    assert used(db, uploader) == 0
    assert uploader.post_stream(MultipartSource(QUOTA), declared=True).status_code == 201


def test_a_file_stored_before_counting_gives_back_nothing_it_did_not_count(uploader, db):
    first = uploader.upload("old.bin", b"z" * 1000, convert=0)
    db[COUNTERS].update_one({"_id": uploader.user_id}, {"$set": {"used": 10}})  # as if counting began later
    assert uploader.delete(f"/datafiles/{number(first['id'])}/").status_code == 200
    assert used(db, uploader) == 0  # never below zero


def test_without_a_limit_uploads_are_counted_too(api, db):
    """The default (unlimited) app keeps the counters, so a quota set later starts from true figures."""
    fields = api.upload("counted.bin", b"c" * 5000, convert=0)
    assert used(db, api) == 5000
    assert api.delete(f"/datafiles/{number(fields['id'])}/").status_code == 200
    assert used(db, api) == 0


def test_the_function_for_archive_members(quota_app, users, db):
    ctx = quota_app.extensions["files_context"]
    member_owner = users()
    reserve_datafile_bytes(ctx, member_owner.user_id, QUOTA - 1)
    with pytest.raises(QuotaExceeded) as refused:
        reserve_datafile_bytes(ctx, member_owner.user_id, 2)
    assert refused.value.http_status == 507 and used(db, member_owner) == QUOTA - 1


@pytest.mark.parametrize("body", [b"not multipart", b""])
def test_bad_bodies_are_4xx_and_count_nothing(uploader, db, body):
    response = uploader.client.post("/datafiles/", data=body, headers=uploader.headers,
                                    content_type=f"multipart/form-data; boundary={BOUNDARY}")
    assert 400 <= response.status_code < 500 and response.get_json()["message_type"]
    assert used(db, uploader) == 0
