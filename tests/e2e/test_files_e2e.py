"""Datafiles through the gateway, as a client would: upload (streamed), details, list, download with
Range, conversion by the files worker process into NEO objects, export, move, delete."""
from __future__ import annotations

import hashlib
import io
import time

import numpy as np
import pytest


@pytest.fixture
def user(logged_in, gateway):
    session = logged_in()
    session.base = gateway
    return session


def _fields(response):
    assert response.status_code in (200, 201, 202), response.text
    return response.json()["selected"][0]["fields"]


def _wait(user, datafile, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        fields = _fields(user.get(f"{user.base}/datafiles/{datafile}/"))
        if fields["current_state"] in ("converted", "failed", "non_convertible"):
            return fields
        assert time.monotonic() < deadline, fields
        time.sleep(0.1)


def test_upload_download_and_delete_through_the_gateway(user, logged_in):
    data = bytes(range(256)) * 8192  # 2 MiB
    response = user.post(f"{user.base}/datafiles/", files={"raw_file": ("blob.bin", data)},
                         data={"convert": "0", "caption": "raw bytes"})
    fields = _fields(response)
    assert response.status_code == 201 and fields["size"] == len(data)
    assert fields["sha256"] == hashlib.sha256(data).hexdigest() and fields["owner"] == user.username
    number = fields["id"].rsplit("_", 1)[1]
    listed = user.get(f"{user.base}/datafiles/").json()
    assert listed["logged_in_as"] == user.username and [i["permalink"] for i in listed["selected"]] == [f"/datafiles/{number}"]
    download = user.get(f"{user.base}/datafiles/{number}/download/")
    assert download.status_code == 200 and download.content == data
    assert "attachment" in download.headers["Content-Disposition"]
    part = user.get(f"{user.base}/datafiles/{number}/binary/", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    stranger = logged_in()
    assert stranger.get(f"{user.base}/datafiles/{number}/").status_code == 403
    assert user.delete(f"{user.base}/datafiles/{number}/").status_code == 200
    assert user.get(f"{user.base}/datafiles/{number}/").status_code == 404


def test_csv_conversion_by_the_worker_and_export(user):
    rows = [[1.0, 2.0, 3.0], [4.0, 5.0]]
    text = "\n".join(",".join(str(v) for v in row) for row in rows) + "\n"
    fields = _fields(user.post(f"{user.base}/datafiles/", files={"raw_file": ("ascii_csv.txt", text.encode())}))
    number = fields["id"].rsplit("_", 1)[1]
    done = _wait(user, number)
    assert done["current_state"] == "converted" and done["operations_log"] == "ascii-csv: success "
    block = user.get(f"{user.base}/electrophysiology/block/{done['extracted_info']['blocks'][0]}/").json()
    segment = user.get(f"{user.base}/electrophysiology/segment/{block['segment'][0]}/").json()
    for row, signal in zip(rows, segment["analogsignal"]):
        npy = user.get(f"{user.base}/electrophysiology/analogsignal/{signal}/", params={"format": "npy"})
        assert np.array_equal(np.load(io.BytesIO(npy.content)), row)
    exported = user.get(f"{user.base}/datafiles/{number}/download/", params={"format": "csv"})
    assert exported.status_code == 200
    assert [[float(v) for v in line.split(",")] for line in exported.text.splitlines()] == rows


def test_upload_into_a_section_and_move(user):
    section = user.post(f"{user.base}/metadata/sections/", json={"name": "files e2e"}).json()["selected"][0]["fields"]
    fields = _fields(user.post(f"{user.base}/datafiles/", files={"raw_file": ("a.txt", b"x")},
                               data={"convert": "0", "section_id": section["id"]}))
    assert fields["section"] == section["id"]
    number = fields["id"].rsplit("_", 1)[1]
    moved = _fields(user.post(f"{user.base}/datafiles/{number}/", json={"section": None, "caption": "moved"}))
    assert moved["section"] is None and moved["caption"] == "moved"
