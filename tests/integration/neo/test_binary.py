"""The binary path: multipart create/update with .npy parts, `format=npy` / `Accept: application/x-npy`
reads, and `size` in bytes."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.integration.neo.conftest import minimal_body, npy_bytes

NPY = "application/x-npy"


def multipart(api, path, fields: dict, arrays: dict, *, json_as_file=False):
    data = {name: (io.BytesIO(raw if isinstance(raw, bytes) else npy_bytes(raw)), f"{name}.npy")
            for name, raw in arrays.items()}
    text = json.dumps(fields)
    data["json"] = (io.BytesIO(text.encode()), "object.json") if json_as_file else text
    return api.client.post(api.url(path), data=data, headers=api.headers, content_type="multipart/form-data")


def signal_fields(**extra):
    body = minimal_body("analogsignal")
    body["signal"] = {"units": "mV"}
    body.update(extra)
    return body


def load(response):
    assert response.status_code == 200, response.get_json() if response.is_json else response.status
    assert response.mimetype == NPY
    return np.load(io.BytesIO(response.data), allow_pickle=False)


@pytest.mark.parametrize("json_as_file", [False, True])
def test_multipart_create_keeps_float32_and_reads_back_as_npy(api, json_as_file):
    values = np.linspace(-1, 1, 2000, dtype=np.float32)
    response = multipart(api, "analogsignal", signal_fields(), {"signal": values}, json_as_file=json_as_file)
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["size"] == 2000 * 4
    assert created["signal"]["units"] == "mv"
    neo_id = created["neo_id"]

    info = api.get(f"info/{neo_id}").get_json()
    assert info["arrays"]["signal"] == {"shape": [2000], "dtype": "float32"}

    array = load(api.get(f"analogsignal/{neo_id}", format="npy"))
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, values)

    as_json = api.get(f"analogsignal/{neo_id}").get_json()["signal"]["data"]
    np.testing.assert_allclose(as_json, values, rtol=1e-6)


def test_npy_window_by_accept_header_with_x_neo_headers(api):
    values = np.arange(200, dtype=np.float32)
    neo_id = multipart(api, "analogsignal", signal_fields(), {"signal": values}).get_json()["neo_id"]
    response = api.get(f"analogsignal/{neo_id}", headers={"Accept": NPY}, start_index=30, end_index=100)
    array = load(response)
    np.testing.assert_array_equal(array, values[30:101])
    assert array.dtype == np.float32
    assert response.headers["X-Neo-Id"] == neo_id
    assert response.headers["X-Neo-Field"] == "signal"
    assert response.headers["X-Neo-Units"] == "mv"
    assert response.headers["X-Neo-T-Start"] == "1.5 ms"
    assert response.headers["X-Neo-Sampling-Rate"] == "20000.0 hz"
    assert response.headers["ETag"]
    assert f"{neo_id}_signal.npy" in response.headers["Content-Disposition"]


def test_npy_of_a_downsampled_window(api):
    neo_id = multipart(api, "analogsignal", signal_fields(), {"signal": np.arange(200.0)}).get_json()["neo_id"]
    response = api.get(f"analogsignal/{neo_id}", format="npy", start_index=30, end_index=100, downsample=10)
    array = load(response)
    assert array.shape == (10,) and array.min() == 30 and array.max() == 100
    assert json.loads(response.headers["X-Neo-Downsample"])["points"] == 10


def test_multipart_spiketrain_with_times_and_waveforms_and_npy_per_field(api):
    times = np.array([0.001, 0.004, 0.009], dtype=np.float64)
    waveforms = np.arange(3 * 2 * 8, dtype=np.float32).reshape(3, 2, 8)
    fields = {**minimal_body("spiketrain"), "times": {"units": "s"}, "waveforms": {"units": "mcv"}}
    response = multipart(api, "spiketrain", fields, {"times": times, "waveforms": waveforms})
    assert response.status_code == 201, response.get_json()
    neo_id = response.get_json()["neo_id"]
    assert response.get_json()["size"] == times.nbytes + waveforms.nbytes
    np.testing.assert_array_equal(load(api.get(f"spiketrain/{neo_id}", format="npy")), times)
    got = load(api.get(f"spiketrain/{neo_id}", format="npy", field="waveforms", start_index=1))
    np.testing.assert_array_equal(got, waveforms[1:])
    assert got.dtype == np.float32
    body = api.get(f"spiketrain/{neo_id}").get_json()
    assert body["waveforms"]["units"] == "mcv" and np.array(body["waveforms"]["data"]).shape == (3, 2, 8)


def test_multipart_irsaanalogsignal_with_integer_arrays(api):
    fields = {**minimal_body("irsaanalogsignal"), "signal": {"units": "v"}, "times": {"units": "ms"}}
    signal, times = np.array([5, 6, 7], dtype=np.int16), np.array([0.0, 2.0, 9.0])
    response = multipart(api, "irsaanalogsignal", fields, {"signal": signal, "times": times})
    assert response.status_code == 201, response.get_json()
    neo_id = response.get_json()["neo_id"]
    got = load(api.get(f"irsaanalogsignal/{neo_id}", format="npy", start_time=1))
    np.testing.assert_array_equal(got, [6, 7])
    assert got.dtype == np.int16


def test_multipart_update_replaces_the_array_and_its_size(api):
    neo_id = api.create("analogsignal")["neo_id"]
    values = np.arange(10, dtype=np.float32)
    response = multipart(api, f"analogsignal/{neo_id}", {"signal": {"units": "mcv"}}, {"signal": values})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["size"] == 40
    body = api.get(f"analogsignal/{neo_id}").get_json()
    assert body["signal"] == {"units": "mcv", "data": values.tolist()}
    assert body["name"] == "Signal"


def test_a_json_update_of_one_array_keeps_the_other(api):
    neo_id = api.create("irsaanalogsignal")["neo_id"]
    response = api.post(f"irsaanalogsignal/{neo_id}", {"signal": {"units": "v", "data": [7.0, 8.0, 9.0]}})
    assert response.status_code == 200
    body = api.get(f"irsaanalogsignal/{neo_id}").get_json()
    assert body["signal"] == {"units": "v", "data": [7.0, 8.0, 9.0]}
    assert body["times"] == minimal_body("irsaanalogsignal")["times"]


BAD_PARTS = {
    "data_twice": (signal_fields(signal={"units": "mv", "data": [1.0]}), {"signal": np.zeros(3)}),
    "no_units": ({k: v for k, v in signal_fields().items() if k != "signal"}, {"signal": np.zeros(3)}),
    "unknown_part": (minimal_body("analogsignal"), {"spikes": np.zeros(3)}),
    "scalar_part_alone": ({k: v for k, v in signal_fields().items() if k != "t_start"},
                          {"signal": np.zeros(3), "t_start": np.zeros(1)}),
    "not_npy": (signal_fields(), {"signal": b"this is not an npy file"}),
    "pickle": (signal_fields(), {"signal": b"\x80\x04\x95" + b"\x00" * 40}),
    "two_dimensional": (signal_fields(), {"signal": np.zeros((3, 2))}),
    "zero_dimensional": (signal_fields(), {"signal": np.float64(3.0)}),
    "object_dtype": (signal_fields(), {"signal": "object"}),
    "wrong_unit": (signal_fields(signal={"units": "ms"}), {"signal": np.zeros(3)}),
}


@pytest.mark.parametrize("case", sorted(BAD_PARTS))
def test_bad_multipart_input_is_400_and_nothing_is_saved(api, counts, case):
    fields, arrays = BAD_PARTS[case]
    if isinstance(arrays.get("signal"), str):
        buffer = io.BytesIO()
        np.save(buffer, np.array([1, "a", None], dtype=object), allow_pickle=True)
        arrays = {"signal": buffer.getvalue()}
    before = counts("analogsignal")
    response = multipart(api, "analogsignal", fields, arrays)
    assert response.status_code == 400, response.get_json()
    assert counts("analogsignal") == before


@pytest.mark.parametrize("case", [
    pytest.param("complex"),
    pytest.param("bool"),
    pytest.param("str"),
    pytest.param("truncated"),
])
def test_npy_parts_the_store_cannot_take_are_400_and_nothing_is_saved(api, counts, data_dir, case):
    raw = {
        "complex": npy_bytes(np.array([1 + 2j, 3j])),
        "bool": npy_bytes(np.array([True, False])),
        "str": npy_bytes(np.array(["a", "b"])),
        "truncated": npy_bytes(np.arange(1000.0))[:200],
    }[case]
    before = counts("analogsignal")
    response = multipart(api, "analogsignal", signal_fields(), {"signal": raw})
    assert response.status_code == 400, response.get_json()
    assert counts("analogsignal") == before


def test_an_npy_part_for_a_scalar_field_is_400(api, counts):
    before = counts("analogsignal")
    response = multipart(api, "analogsignal", signal_fields(), {"signal": np.zeros(3), "t_start": np.zeros(1)})
    assert response.status_code == 400
    assert counts("analogsignal") == before


def test_a_multipart_request_without_a_json_part_is_400(api, counts):
    before = counts("analogsignal")
    response = api.client.post(api.url("analogsignal"), headers=api.headers, content_type="multipart/form-data",
                               data={"signal": (io.BytesIO(npy_bytes(np.zeros(3))), "signal.npy")})
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_json"
    response = multipart(api, "analogsignal", {}, {})
    assert response.status_code == 400
    assert counts("analogsignal") == before


@pytest.mark.parametrize("type_name,params", [
    ("segment", {}),
    ("event", {}),
    ("analogsignal", {"field": "t_start"}),
    ("analogsignal", {"field": "nonsense"}),
    ("spike", {}),  # a spike without waveforms has no array
])
def test_npy_of_something_that_is_no_array_is_400(api, type_name, params):
    neo_id = api.create(type_name)["neo_id"]
    response = api.get(f"{type_name}/{neo_id}", format="npy", **params)
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_parameter"


# --- size -------------------------------------------------------------------------------------------

def test_size_is_in_bytes_and_containers_sum_their_descendants(api):
    block = api.create("block")["neo_id"]
    segment = api.create("segment", block=block)["neo_id"]
    other_segment = api.create("segment", block=block)["neo_id"]
    signal = api.create("analogsignal", segment=segment, signal={"units": "mv", "data": [0.0] * 100})
    train = api.create("spiketrain", segment=other_segment)
    spike = api.create("spike", segment=segment, waveforms={"units": "mv", "data": [[0.0] * 10]})
    event = api.create("event", segment=segment)
    assert (signal["size"], train["size"], spike["size"], event["size"]) == (800, 24, 80, 0)
    assert api.get(f"segment/{segment}").get_json()["size"] == 880
    assert api.get(f"segment/{other_segment}").get_json()["size"] == 24
    assert api.get(f"block/{block}").get_json()["size"] == 904
    assert api.get(f"block/{block}", q="info").get_json()["size"] == 904
    assert api.get(f"info/{block}").get_json()["size"] == 904
