"""Conversion types 3 (ascii-csv) and 5 (HDF5), checked object by object through the neo API."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from tests.integration.files.conftest import number

pytestmark = pytest.mark.usefixtures("worker")


def test_ascii_csv_becomes_one_analogsignal_per_line(api):
    rows = [[1.0, 2.5, -3.0], [4.0, 5.0, 6.0, 7.0, 8.0], [0.125]]
    data = "\n".join(",".join(repr(v) for v in row) for row in rows).encode() + b"\n"
    uploaded = api.upload("ascii_csv.txt", data)
    assert uploaded["current_state"] == "queued" and uploaded["last_task_id"]
    fields = api.wait_state(uploaded["id"])
    assert fields["current_state"] == "converted", fields
    assert fields["current_state_code"] == 10 and fields["conversion_type"] == 3
    assert fields["operations_log"] == "ascii-csv: success "
    assert fields["last_task_id"] == uploaded["last_task_id"]
    info = fields["extracted_info"]
    assert info["objects"] == {"block": 1, "segment": 1, "analogsignal": 3}
    (block,) = info["blocks"]
    block_json = api.neo(block)
    assert block_json["name"] == "ascii_csv.txt" and len(block_json["segment"]) == 1
    segment = api.neo(block_json["segment"][0])
    signals = segment["analogsignal"]
    assert len(signals) == 3
    for row, neo_id in zip(rows, signals):
        signal = api.neo(neo_id)
        assert signal["signal"]["units"] == "mv" and signal["sampling_rate"]["units"] == "hz"
        assert np.array_equal(api.neo_array(neo_id, "signal"), np.array(row))
    assert fields["progress"]["percent"] == 100.0


def test_text_that_is_not_csv_is_not_convertible(api):
    fields = api.wait_state(api.upload("notes.txt", b"Dear diary,\ntoday the rat slept.\n")["id"])
    assert fields["current_state"] == "non_convertible" and fields["current_state_code"] == 30
    assert fields["conversion_type"] is None and "not convertible" in fields["operations_log"]


def test_hdf5_root_arrays_become_neo_objects(api, tmp_path):
    path = tmp_path / "arrays.h5"
    rng = np.random.default_rng(1)
    lfp = rng.standard_normal((500, 2)).astype(np.float32)
    spikes = np.array([0.01, 0.25, 0.5])
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("lfp", data=lfp, chunks=True)
        ds.attrs.update({"units": "uV", "sampling_rate": 2000.0, "t_start": 1.5, "name": "LFP"})
        st = f.create_dataset("unit1", data=spikes)
        st.attrs.update({"neo_type": "spiketrain", "units": "s", "t_stop": 1.0})
        f.create_group("ignored").create_dataset("deep", data=[1, 2, 3])
    fields = api.wait_state(api.upload("arrays.h5", path.read_bytes())["id"])
    assert fields["current_state"] == "converted", fields
    assert fields["conversion_type"] == 5 and fields["operations_log"] == "hdf5: success "
    assert fields["extracted_info"]["objects"] == {"block": 1, "segment": 1, "analogsignal": 2, "spiketrain": 1}
    segment = api.neo(api.neo(fields["extracted_info"]["blocks"][0])["segment"][0])
    first, second = (api.neo(s) for s in segment["analogsignal"])
    assert first["name"] == "LFP #0" and second["name"] == "LFP #1"
    assert first["signal"]["units"] == "mcv" and first["sampling_rate"]["data"] == 2000.0
    assert first["t_start"] == {"units": "s", "data": 1.5}
    assert np.array_equal(api.neo_array(first["neo_id"], "signal"), lfp[:, 0])
    assert api.neo_array(first["neo_id"], "signal").dtype == np.float32
    assert np.array_equal(api.neo_array(second["neo_id"], "signal"), lfp[:, 1])
    (train,) = segment["spiketrain"]
    assert np.allclose(api.neo_array(train, "times"), spikes)
    assert api.neo(train)["t_stop"]["data"] == 1.0


def test_hdf5_without_a_root_array_fails_with_the_reason(api, tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_group("g").create_dataset("x", data=[1.0])
    fields = api.wait_state(api.upload("empty.h5", path.read_bytes())["id"])
    assert fields["current_state"] == "failed"
    assert fields["operations_log"].startswith("hdf5: failure (no numeric array at the root")


def test_convert_endpoint_queues_a_task_at_once(api):
    uploaded = api.upload("later.csv", b"1,2,3\n", convert=0)
    assert uploaded["current_state"] == "uploaded" and uploaded["last_task_id"] is None
    response = api.get(f"/datafiles/{number(uploaded['id'])}/convert/")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    task = body["task_id"]
    assert task and body["selected"][0]["fields"]["last_task_id"] == task
    again = api.get(f"/datafiles/{number(uploaded['id'])}/convert/").get_json()
    assert again["task_id"] == task or api.fields(uploaded["id"])["current_state"] == "converted"
    fields = api.wait_state(uploaded["id"])
    assert fields["current_state"] == "converted" and fields["last_task_id"] == task
    conflict = api.get(f"/datafiles/{number(uploaded['id'])}/convert/")
    assert conflict.status_code == 409 and conflict.get_json()["message_type"] == "already_converted"


def test_only_writers_may_convert(api, other):
    uploaded = api.upload("mine.csv", b"1,2\n", convert=0)
    assert other.get(f"/datafiles/{number(uploaded['id'])}/convert/").status_code == 403
