"""The streaming multipart parser: fields, the file written as it arrives, hashing, limits."""
from __future__ import annotations

import hashlib
import io

import pytest

from services.files.upload import receive
from shared.errors import BadRequest, PayloadTooLarge
from shared.quota import QuotaExceeded

BOUNDARY = "----bound"


def body(parts):
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


class Reads(io.BytesIO):
    """A stream that counts how much was asked for at once (the parser must read in pieces)."""

    def __init__(self, data):
        super().__init__(data)
        self.largest = 0

    def read(self, size=-1):
        self.largest = max(self.largest, size)
        return super().read(size)


def test_file_and_fields_in_any_order(tmp_path):
    data = bytes(range(256)) * 20_000  # 5 MB: several chunks
    seen = {}

    def start(fields, filename):
        seen.update(fields=dict(fields), filename=filename)
        return tmp_path / "sub" / "1"

    stream = Reads(body([("caption", b"before", None), ("raw_file", data, "dir/sub/rec.bin"), ("tags", b"after", None)]))
    upload = receive(stream, BOUNDARY, start_file=start, max_bytes=10**9, max_field_bytes=100, chunk=65536)
    assert upload.fields == {"caption": "before", "tags": "after"} and seen["fields"] == {"caption": "before"}
    assert upload.file.filename == "rec.bin" == seen["filename"]
    assert upload.file.size == len(data) and upload.file.sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "sub" / "1").read_bytes() == data
    assert stream.largest == 65536


def test_too_large_removes_the_partial_file(tmp_path):
    with pytest.raises(PayloadTooLarge):
        receive(io.BytesIO(body([("raw_file", b"x" * 5000, "a")])), BOUNDARY,
                start_file=lambda f, n: tmp_path / "f", max_bytes=1000, max_field_bytes=100, chunk=512)
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("parts", [
    [("caption", b"x", None)],
    [("raw_file", b"x", "a"), ("raw_file", b"y", "b")],
    [("other", b"x", "a")],
    [("caption", b"x" * 200, None), ("raw_file", b"x", "a")],
])
def test_refused_bodies(tmp_path, parts):
    with pytest.raises(BadRequest):
        receive(io.BytesIO(body(parts)), BOUNDARY, start_file=lambda f, n: tmp_path / n,
                max_bytes=10**6, max_field_bytes=100)
    assert list(tmp_path.iterdir()) == []


def test_a_refusal_by_start_file_writes_nothing(tmp_path):
    def refuse(fields, filename):
        raise BadRequest("no")

    with pytest.raises(BadRequest):
        receive(io.BytesIO(body([("raw_file", b"x", "a")])), BOUNDARY, start_file=refuse, max_bytes=10, max_field_bytes=10)
    assert list(tmp_path.iterdir()) == []


def test_on_file_data_sees_each_size_before_it_is_written_and_may_stop_the_upload(tmp_path):
    """The quota's hook (services/files/quota.py): told the file's size with each piece, before the
    piece is written; raising stops the upload and removes the partial file."""
    seen = []

    def budget(size):
        written = (tmp_path / "f").stat().st_size
        seen.append((size, written))
        if size > 2000:
            raise QuotaExceeded()

    with pytest.raises(QuotaExceeded):
        receive(io.BytesIO(body([("raw_file", b"x" * 5000, "a")])), BOUNDARY, start_file=lambda f, n: tmp_path / "f",
                max_bytes=10**6, max_field_bytes=100, chunk=512, on_file_data=budget)
    assert seen and all(size > written for size, written in seen) and seen[-1][0] > 2000 > seen[-2][0]
    assert not (tmp_path / "f").exists()
