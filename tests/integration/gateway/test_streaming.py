"""64 MiB up and down through the gateway under gunicorn: bytes intact, worker memory flat."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .fakes import MiB, pattern_chunks, pattern_sha256

SIZE = 64 * MiB
# The body is 64 MiB; a proxy that buffered it (even once) would grow by at least that much.
MAX_GROWTH_KIB = 16 * 1024


class SizedBody:
    """An upload body of known length, produced piece by piece (so requests sends Content-Length)."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        return pattern_chunks(self.size)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_64_mib_up_and_down_in_constant_memory(gateway, http):
    [worker] = gateway.worker_pids()
    # warm up: every code path once, with small bodies
    assert http.put(gateway.url + "/datafiles/upload/", data=SizedBody(2 * MiB)).status_code == 201
    assert http.put(gateway.url + "/datafiles/upload/", data=pattern_chunks(2 * MiB)).status_code == 201
    assert len(http.get(gateway.url + "/datafiles/big/?size=2097152").content) == 2 * MiB
    assert len(http.get(gateway.url + "/datafiles/big/?size=2097152&chunked=1").content) == 2 * MiB
    before = peak_rss_kib(worker)
    expected = pattern_sha256(SIZE)

    # upload with Content-Length: the service sees a plain body of that length
    response = http.put(gateway.url + "/data/datafiles/upload/", data=SizedBody(SIZE))
    assert response.status_code == 201, response.text
    received = response.json()
    assert received["sha256"] == expected and received["length"] == SIZE
    assert received["content_length"] == str(SIZE) and received["transfer_encoding"] is None

    # chunked upload (no length known to the client): streamed on as chunked
    response = http.post(gateway.url + "/datafiles/upload/", data=pattern_chunks(SIZE))
    assert response.status_code == 201, response.text
    received = response.json()
    assert received["sha256"] == expected and received["length"] == SIZE
    assert received["transfer_encoding"] == "chunked"

    # downloads, with and without Content-Length upstream
    for query, chunked in [("", False), ("&chunked=1", True)]:
        with http.get(f"{gateway.url}/datafiles/big/?size={SIZE}{query}", stream=True) as download:
            assert download.status_code == 200
            assert download.headers["Content-Disposition"] == 'attachment; filename="big.bin"'
            if chunked:
                assert "Content-Length" not in download.headers
            else:
                assert download.headers["Content-Length"] == str(SIZE)
            digest, length = hashlib.sha256(), 0
            for piece in download.iter_content(MiB):
                digest.update(piece)
                length += len(piece)
        assert length == SIZE and digest.hexdigest() == expected

    growth = peak_rss_kib(worker) - before
    print(f"gateway worker peak RSS: {before} KiB before, grew by {growth} KiB")
    assert growth < MAX_GROWTH_KIB, f"gateway worker peak RSS grew by {growth} KiB for {SIZE // MiB} MiB bodies"
    assert gateway.worker_pids() == [worker]  # same worker throughout: nothing crashed


def test_client_disconnect_mid_download_frees_the_worker(gateway, http):
    with http.get(f"{gateway.url}/datafiles/big/?size={SIZE}", stream=True) as download:
        first = next(download.iter_content(MiB))
        assert len(first) > 0
    # the worker threads are not stuck: more requests still go through
    for _ in range(6):
        assert http.get(gateway.url + "/labels/").status_code == 200


def test_a_body_cut_upstream_is_cut_for_the_client_too(gateway, http):
    import requests

    for query in ("", "?chunked=1"):
        with pytest.raises(requests.RequestException):
            with http.get(f"{gateway.url}/datafiles/broken/{query}", stream=True) as download:
                assert download.status_code == 200
                for _ in download.iter_content(MiB):
                    pass
    assert http.get(gateway.url + "/labels/").status_code == 200
