"""Reads stay bounded (issue 11, item 5): a JSON answer too large is refused from the stored shapes
before any array is read, `.npy` answers stream chunk by chunk from the HDF5 dataset, and a read
touches only the arrays it answers with."""
from __future__ import annotations

import io

import h5py
import numpy as np
import pytest

from services.neo.npy import npy_header
from tests.integration.neo.conftest import minimal_body, npy_bytes
from tests.integration.neo.test_binary import multipart, signal_fields

CHUNK_ROWS = 65536  # ArrayStore's default chunk of 1-D arrays


@pytest.fixture
def hdf5_reads(monkeypatch):
    """Every read of an HDF5 dataset in this process: (dataset name, rows read)."""
    reads: list[tuple[str, int]] = []
    original = h5py.Dataset.__getitem__

    def spy(self, selection, *args, **kwargs):
        data = original(self, selection, *args, **kwargs)
        reads.append((self.name, int(np.shape(data)[0]) if np.ndim(data) else 1))
        return data

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    return reads


@pytest.fixture
def small_json(make_app, users):
    """A user of an app whose JSON answers carry at most 1,000 values."""
    api = users()
    api.client = make_app(JSON_MAX_SAMPLES=1000).test_client()
    return api


def streamed(response) -> list[bytes]:
    assert response.status_code == 200, response.get_json() if response.is_json else response.status
    assert response.is_streamed
    pieces = [bytes(piece) for piece in response.response]
    response.close()
    return pieces


def test_a_json_read_over_the_limit_is_refused_from_the_shape_before_reading(small_json, hdf5_reads):
    neo_id = multipart(small_json, "analogsignal", signal_fields(), {"signal": np.arange(5000.0)}).get_json()["neo_id"]
    hdf5_reads.clear()
    for part in ("full", "data"):
        response = small_json.get(f"analogsignal/{neo_id}", q=part)
        assert response.status_code == 400
        body = response.get_json()
        assert body["message_type"] == "too_large_for_json"
        assert body["details"] == {"values": 5000, "limit": 1000}
        assert all(word in body["message"] for word in ("window", "downsample", "format=npy"))
    assert hdf5_reads == []  # refused from the stored shape alone
    within = small_json.get(f"analogsignal/{neo_id}", start_index=100, samples_count=1000)
    assert within.get_json()["signal"]["data"] == list(np.arange(100.0, 1100.0))


def test_waveforms_count_towards_the_json_limit_and_are_not_read_when_refused(small_json, hdf5_reads):
    times, waveforms = np.arange(100.0), np.zeros((100, 2, 8), dtype=np.float32)  # 100 + 1,600 values
    fields = {**minimal_body("spiketrain"), "times": {"units": "ms"}, "waveforms": {"units": "mv"}}
    neo_id = multipart(small_json, "spiketrain", fields, {"times": times, "waveforms": waveforms}).get_json()["neo_id"]
    hdf5_reads.clear()
    response = small_json.get(f"spiketrain/{neo_id}")
    assert response.status_code == 400 and response.get_json()["details"]["values"] == 1700
    assert hdf5_reads == []
    assert small_json.get(f"spiketrain/{neo_id}", end_index=49).status_code == 200  # 50 + 800 values


def test_an_npy_download_streams_chunk_by_chunk_with_its_length(api, hdf5_reads):
    values = np.random.default_rng(3).standard_normal(5 * CHUNK_ROWS + 123)
    neo_id = multipart(api, "analogsignal", signal_fields(), {"signal": values}).get_json()["neo_id"]
    hdf5_reads.clear()
    response = api.client.get(api.url(f"analogsignal/{neo_id}"), query_string={"format": "npy"},
                              headers=api.headers, buffered=False)
    pieces = streamed(response)
    assert pieces[0] == npy_header(values.shape, values.dtype)  # the header first, alone
    assert len(pieces) == 1 + 6  # then one piece per stored chunk
    assert b"".join(pieces) == npy_bytes(values)
    assert int(response.headers["Content-Length"]) == len(npy_bytes(values))
    assert max(rows for _, rows in hdf5_reads) <= CHUNK_ROWS  # never the whole array at once


def test_an_npy_window_streams_exactly_the_window(api):
    values = np.arange(3 * CHUNK_ROWS, dtype=np.int32)
    neo_id = multipart(api, "analogsignal", signal_fields(), {"signal": values}).get_json()["neo_id"]
    response = api.client.get(api.url(f"analogsignal/{neo_id}"), headers=api.headers, buffered=False,
                              query_string={"format": "npy", "start_index": 1000, "end_index": 2 * CHUNK_ROWS})
    body = b"".join(streamed(response))
    assert body == npy_bytes(values[1000:2 * CHUNK_ROWS + 1])
    assert int(response.headers["Content-Length"]) == len(body)


def test_an_npy_download_of_spike_times_never_reads_the_waveforms(api, hdf5_reads):
    times, waveforms = np.arange(1000.0), np.ones((1000, 32))
    fields = {**minimal_body("spiketrain"), "t_stop": {"units": "ms", "data": 2000},
              "times": {"units": "ms"}, "waveforms": {"units": "mv"}}
    neo_id = multipart(api, "spiketrain", fields, {"times": times, "waveforms": waveforms}).get_json()["neo_id"]
    hdf5_reads.clear()
    response = api.client.get(api.url(f"spiketrain/{neo_id}"), query_string={"format": "npy", "start_time": 10},
                              headers=api.headers, buffered=False)
    assert b"".join(streamed(response)) == npy_bytes(times[10:])
    assert {name for name, _ in hdf5_reads} == {"/data/times"}


def test_a_downsampled_irregular_signal_reads_only_the_picked_times(api, hdf5_reads):
    n = 100_000
    fields = {**minimal_body("irsaanalogsignal"), "signal": {"units": "mv"}, "times": {"units": "ms"}}
    arrays = {"signal": np.sin(np.arange(n) / 100.0), "times": np.arange(n, dtype=np.float64)}
    neo_id = multipart(api, "irsaanalogsignal", fields, arrays).get_json()["neo_id"]
    hdf5_reads.clear()
    body = api.get(f"irsaanalogsignal/{neo_id}", downsample=100).get_json()
    assert len(body["signal"]["data"]) == len(body["times"]["data"]) == 100
    assert body["times"]["data"] == sorted(body["times"]["data"])
    assert max(rows for name, rows in hdf5_reads if name == "/data/times") <= 100


def test_arrays_as_shapes_read_nothing_and_pass_the_json_limit(small_json, hdf5_reads):
    segment = small_json.create("segment")["neo_id"]
    neo_id = multipart(small_json, "analogsignal", signal_fields(segment=segment),
                       {"signal": np.arange(5000.0)}).get_json()["neo_id"]
    hdf5_reads.clear()
    body = small_json.get(f"analogsignal/{neo_id}", arrays="shape").get_json()
    assert body["signal"] == {"units": "mv", "shape": [5000], "dtype": "float64"}
    assert body["sampling_rate"] == {"units": "hz", "data": 20000.0} and body["segment"] == segment
    tree = small_json.get(f"segment/{segment}", cascade="true", arrays="shape").get_json()
    assert tree["analogsignal"][0]["signal"]["shape"] == [5000]
    assert hdf5_reads == []
    assert small_json.get(f"analogsignal/{neo_id}", arrays="everything").status_code == 400


def test_an_npy_answer_can_be_loaded_by_numpy(api):
    values = np.linspace(0, 1, 70_000, dtype=np.float32)
    neo_id = multipart(api, "analogsignal", signal_fields(), {"signal": values}).get_json()["neo_id"]
    response = api.get(f"analogsignal/{neo_id}", format="npy")
    np.testing.assert_array_equal(np.load(io.BytesIO(response.data), allow_pickle=False), values)
