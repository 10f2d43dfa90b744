"""Slicing (seed 001 "Partial Data Requests"): start_time, end_time, duration, start_index, end_index,
samples_count and downsample on analog signals, irregularly sampled signals and spike trains.

Times are in the unit of the object's t_start; end_index and end_time are inclusive; the start comes
from start_index, else start_time; the end from end_index, else samples_count, else end_time, else
duration; other parameters are redundant and disregarded; useless combinations are 400.
"""
from __future__ import annotations

import pytest

N = 200  # samples; the value of sample i is i, so a window shows which samples it holds


@pytest.fixture
def signal(api):
    """20 kHz (20 samples per ms), t_start 0 ms, values 0..199."""
    return api.create(
        "analogsignal",
        name="LFP FIX Signal-5",
        sampling_rate={"units": "hz", "data": 20000},
        t_start={"units": "ms", "data": 0},
        signal={"units": "mv", "data": [float(i) for i in range(N)]},
    )["neo_id"]


def window(api, path, **params):
    response = api.get(path, **params)
    assert response.status_code == 200, (params, response.get_json())
    return response.get_json()


def test_the_seed_example_30_to_100_downsampled_to_10(api, signal):
    body = window(api, f"analogsignal/{signal}", start_index=30, end_index=100, downsample=10)
    data = body["signal"]["data"]
    assert len(data) == 10
    assert body["t_start"] == {"units": "ms", "data": 1.5}
    assert body["signal"]["units"] == "mv"
    assert body["sampling_rate"] == {"units": "hz", "data": 20000}
    assert min(data) == 30 and max(data) == 100  # the window's peaks are kept
    assert all(30 <= v <= 100 for v in data) and data == sorted(data)
    assert body["name"] == "LFP FIX Signal-5"


@pytest.mark.parametrize("params,first,last,t_start", [
    ({"start_index": 30, "end_index": 100}, 30, 100, 1.5),
    ({"start_index": 30, "samples_count": 10}, 30, 39, 1.5),
    ({"start_index": 30, "end_time": 2.0}, 30, 40, 1.5),
    ({"start_index": 30, "duration": 0.5}, 30, 39, 1.5),
    ({"start_time": 1.5, "end_time": 2.0}, 30, 40, 1.5),
    ({"start_time": 1.5, "duration": 1.0}, 30, 49, 1.5),
    ({"start_time": 1.5, "samples_count": 5}, 30, 34, 1.5),
    ({"start_time": 1.5, "end_index": 35}, 30, 35, 1.5),
    ({"start_time": 1.52}, 31, N - 1, 1.55),  # rounds up to the next sample
    ({"start_index": 190}, 190, N - 1, 9.5),
    ({"end_index": 9}, 0, 9, 0.0),
    ({"samples_count": 3}, 0, 2, 0.0),
    ({"end_time": 0.45}, 0, 9, 0.0),
    ({"duration": 0.5}, 0, 9, 0.0),
    ({"start_time": -5, "end_index": 2}, 0, 2, 0.0),  # before the signal: from its first sample
    ({"start_index": 190, "end_index": 5000}, 190, N - 1, 9.5),  # clamped to the data
    ({"start_index": 190, "end_time": 99.0}, 190, N - 1, 9.5),
])
def test_analogsignal_windows(api, signal, params, first, last, t_start):
    body = window(api, f"analogsignal/{signal}", **params)
    assert body["signal"]["data"] == [float(i) for i in range(first, last + 1)]
    assert body["t_start"]["units"] == "ms"
    assert body["t_start"]["data"] == pytest.approx(t_start)


@pytest.mark.parametrize("params,first,last", [
    ({"start_index": 30, "start_time": 9.0, "end_index": 39}, 30, 39),  # start_index wins
    ({"start_index": 30, "end_index": 39, "samples_count": 100, "end_time": 9.0, "duration": 9.0}, 30, 39),
    ({"start_index": 30, "samples_count": 10, "end_time": 9.0, "duration": 9.0}, 30, 39),
    ({"start_index": 30, "end_time": 2.0, "duration": 9.0}, 30, 40),
])
def test_redundant_parameters_are_disregarded(api, signal, params, first, last):
    body = window(api, f"analogsignal/{signal}", **params)
    assert body["signal"]["data"] == [float(i) for i in range(first, last + 1)]


def test_times_are_in_the_unit_of_t_start_and_count_from_it(api):
    signal = api.create(
        "analogsignal",
        sampling_rate={"units": "khz", "data": 20},
        t_start={"units": "s", "data": 0.005},
        signal={"units": "mcv", "data": [float(i) for i in range(N)]},
    )["neo_id"]
    body = window(api, f"analogsignal/{signal}", start_time=0.0065, end_time=0.007)
    assert body["signal"] == {"units": "mcv", "data": [float(i) for i in range(30, 41)]}
    assert body["t_start"]["units"] == "s"
    assert body["t_start"]["data"] == pytest.approx(0.0065)
    assert body["sampling_rate"] == {"units": "khz", "data": 20}


def test_downsample_alone_gives_about_that_many_points_of_the_whole_signal(api, signal):
    body = window(api, f"analogsignal/{signal}", downsample=20)
    data = body["signal"]["data"]
    assert len(data) == 20
    assert min(data) == 0 and max(data) == N - 1
    assert body["t_start"]["data"] == 0


def test_downsample_larger_than_the_window_returns_the_window(api, signal):
    body = window(api, f"analogsignal/{signal}", start_index=10, end_index=14, downsample=10)
    assert body["signal"]["data"] == [10.0, 11.0, 12.0, 13.0, 14.0]


def test_a_window_with_q_data_holds_the_data_fields_only(api, signal):
    body = window(api, f"analogsignal/{signal}", q="data", start_index=30, samples_count=2)
    assert body["signal"]["data"] == [30.0, 31.0]
    assert body["t_start"]["data"] == 1.5
    assert "name" not in body and "segment" not in body


def test_a_plain_get_returns_the_whole_signal(api, signal):
    body = window(api, f"analogsignal/{signal}")
    assert body["signal"]["data"] == [float(i) for i in range(N)]
    assert body["t_start"] == {"units": "ms", "data": 0}


USELESS = [
    {"start_index": N},  # starts after the data
    {"start_index": 5000, "end_index": 6000},
    {"start_time": 50.0},  # 50 ms: after the 10 ms of data
    {"start_index": 50, "end_index": 40},  # ends before it starts
    {"start_time": 3.0, "end_time": 2.0},
    {"end_time": -1.0},  # ends before the signal starts
    {"duration": -1},
    {"duration": 0},
    {"samples_count": 0},
    {"samples_count": -4},
    {"downsample": 0},
    {"downsample": -1},
    {"start_index": -1},
    {"end_index": -1},
    {"start_index": 1.5},
    {"start_index": "ten"},
    {"start_time": "soon"},
    {"start_time": "nan"},
    {"end_time": "inf"},
    {"downsample": 10**9},
]


@pytest.mark.parametrize("params", USELESS)
def test_useless_windows_are_400(api, signal, params):
    response = api.get(f"analogsignal/{signal}", **params)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["message_type"] == "invalid_window"


@pytest.mark.parametrize("type_name", ["segment", "event", "spike", "block"])
def test_windows_on_objects_that_are_not_signals_are_400(api, type_name):
    neo_id = api.create(type_name)["neo_id"]
    response = api.get(f"{type_name}/{neo_id}", start_index=0, end_index=1)
    assert response.status_code == 400
    response = api.get(f"{type_name}/{neo_id}", downsample=2)
    assert response.status_code == 400


# --- irregularly sampled signals ----------------------------------------------------------------

TIMES = [0.0, 1.0, 3.0, 6.0, 10.0, 15.0, 21.0, 28.0, 36.0, 45.0]  # ms


@pytest.fixture
def irsa(api):
    return api.create(
        "irsaanalogsignal",
        t_start={"units": "ms", "data": 0},
        times={"units": "ms", "data": TIMES},
        signal={"units": "mv", "data": [100.0 + i for i in range(len(TIMES))]},
    )["neo_id"]


@pytest.mark.parametrize("params,first,last,t_start", [
    ({"start_time": 3, "end_time": 15}, 2, 5, 3.0),
    ({"start_time": 2, "end_time": 16}, 2, 5, 3.0),  # t_start: the first sample's time
    ({"start_time": 3, "duration": 10}, 2, 4, 3.0),  # [3, 13)
    ({"start_time": 3, "samples_count": 2}, 2, 3, 3.0),
    ({"start_time": 3, "end_index": 6}, 2, 6, 3.0),
    ({"start_index": 2, "end_index": 5}, 2, 5, 3.0),
    ({"start_index": 2, "samples_count": 3}, 2, 4, 3.0),
    ({"start_index": 2, "end_time": 15}, 2, 5, 3.0),
    ({"start_index": 2, "duration": 10}, 2, 4, 3.0),
    ({"end_time": 6}, 0, 3, 0.0),
    ({"duration": 6}, 0, 2, 0.0),
    ({"start_index": 8}, 8, 9, 36.0),
    ({"start_index": 2, "start_time": 40, "end_index": 5, "end_time": 1, "samples_count": 1}, 2, 5, 3.0),  # redundant
])
def test_irsaanalogsignal_windows(api, irsa, params, first, last, t_start):
    body = window(api, f"irsaanalogsignal/{irsa}", **params)
    assert body["signal"]["data"] == [100.0 + i for i in range(first, last + 1)]
    assert body["times"]["data"] == TIMES[first:last + 1]
    assert body["t_start"]["data"] == pytest.approx(t_start)


def test_irsaanalogsignal_downsample_keeps_signal_and_times_paired(api, irsa):
    body = window(api, f"irsaanalogsignal/{irsa}", downsample=4)
    signal, times = body["signal"]["data"], body["times"]["data"]
    assert len(signal) == len(times) == 4
    assert min(signal) == 100 and max(signal) == 109
    assert all(t in TIMES for t in times) and times == sorted(times)
    small = window(api, f"irsaanalogsignal/{irsa}", start_index=2, end_index=4, downsample=10)
    assert small["signal"]["data"] == [102.0, 103.0, 104.0] and small["times"]["data"] == TIMES[2:5]


def test_irsaanalogsignal_times_in_another_unit_than_t_start(api):
    neo_id = api.create(
        "irsaanalogsignal",
        t_start={"units": "ms", "data": 0},
        times={"units": "s", "data": [t / 1000 for t in TIMES]},
        signal={"units": "mv", "data": [100.0 + i for i in range(len(TIMES))]},
    )["neo_id"]
    body = window(api, f"irsaanalogsignal/{neo_id}", start_time=3, end_time=15)
    assert body["signal"]["data"] == [102.0, 103.0, 104.0, 105.0]
    assert body["times"] == {"units": "s", "data": [0.003, 0.006, 0.01, 0.015]}
    assert body["t_start"] == {"units": "ms", "data": pytest.approx(3.0)}


@pytest.mark.parametrize("params", [
    {"start_time": 50}, {"start_index": 10}, {"start_time": 16, "end_time": 20},  # no samples in [16, 20]
    {"start_index": 5, "end_index": 3}, {"duration": -2}, {"downsample": 0},
])
def test_useless_irsaanalogsignal_windows_are_400(api, irsa, params):
    response = api.get(f"irsaanalogsignal/{irsa}", **params)
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_window"


# --- spike trains ---------------------------------------------------------------------------------

SPIKES = [1.0, 5.0, 20.0, 35.0, 60.0, 80.0]  # ms, in a train from 0 to 100 ms


@pytest.fixture
def train(api):
    return api.create(
        "spiketrain",
        t_start={"units": "ms", "data": 0},
        t_stop={"units": "ms", "data": 100},
        times={"units": "ms", "data": SPIKES},
        waveforms={"units": "mv", "data": [[float(i)] * 4 for i in range(len(SPIKES))]},
    )["neo_id"]


@pytest.mark.parametrize("params,first,last,t_start,t_stop", [
    ({"start_time": 4, "end_time": 40}, 1, 3, 4, 40),
    ({"start_time": 4, "duration": 30}, 1, 2, 4, 34),
    ({"start_time": 4, "samples_count": 2}, 1, 2, 4, 100),
    ({"start_time": 4, "end_index": 4}, 1, 4, 4, 100),
    ({"start_index": 1, "end_index": 3}, 1, 3, 0, 100),
    ({"start_index": 1, "samples_count": 2}, 1, 2, 0, 100),
    ({"start_index": 1, "end_time": 40}, 1, 3, 0, 40),
    ({"end_time": 10}, 0, 1, 0, 10),
    ({"duration": 10}, 0, 1, 0, 10),
    ({"start_time": 5, "end_time": 5}, 1, 1, 5, 5),  # both ends inclusive
    ({"start_time": 6, "end_time": 19}, 1, 0, 6, 19),  # a stretch without spikes is an empty train
    ({"start_time": 4, "duration": 30, "end_time": 40}, 1, 3, 4, 40),  # end_time wins over duration
])
def test_spiketrain_windows(api, train, params, first, last, t_start, t_stop):
    body = window(api, f"spiketrain/{train}", **params)
    assert body["times"] == {"units": "ms", "data": SPIKES[first:last + 1]}
    assert body["waveforms"]["data"] == [[float(i)] * 4 for i in range(first, last + 1)]
    assert body["t_start"]["data"] == pytest.approx(t_start)
    assert body["t_stop"]["data"] == pytest.approx(t_stop)


def test_redundant_times_do_not_change_a_spiketrain_window_selected_by_index(api, train):
    plain = window(api, f"spiketrain/{train}", start_index=1, end_index=3)
    redundant = window(api, f"spiketrain/{train}", start_index=1, start_time=50, end_index=3, end_time=10)
    assert redundant["times"] == plain["times"] == {"units": "ms", "data": SPIKES[1:4]}
    assert redundant["t_start"] == plain["t_start"]
    assert redundant["t_stop"] == plain["t_stop"]


def test_a_spiketrain_window_after_the_last_spike_is_an_empty_train(api, train):
    body = window(api, f"spiketrain/{train}", start_time=85, end_time=95)
    assert body["times"]["data"] == []
    assert (body["t_start"]["data"], body["t_stop"]["data"]) == (85, 95)


def test_spiketrain_times_in_seconds_with_t_start_in_ms(api):
    neo_id = api.create(
        "spiketrain",
        t_start={"units": "ms", "data": 0},
        t_stop={"units": "ms", "data": 100},
        times={"units": "s", "data": [0.001, 0.005, 0.02]},
    )["neo_id"]
    body = window(api, f"spiketrain/{neo_id}", start_time=4, end_time=30)
    assert body["times"] == {"units": "s", "data": [0.005, 0.02]}
    assert body["t_stop"] == {"units": "ms", "data": 30}


@pytest.mark.parametrize("params", [
    {"downsample": 2}, {"start_index": 6}, {"start_index": 3, "end_index": 1}, {"duration": -1},
    {"samples_count": 0}, {"start_time": "x"},
])
def test_useless_spiketrain_windows_are_400(api, train, params):
    response = api.get(f"spiketrain/{train}", **params)
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_window"


def test_an_unsorted_spiketrain_is_sliced_by_index_but_not_by_time(api):
    neo_id = api.create(
        "spiketrain", t_start={"units": "ms", "data": 0}, t_stop={"units": "ms", "data": 100},
        times={"units": "ms", "data": [50.0, 10.0, 30.0]},
    )["neo_id"]
    assert window(api, f"spiketrain/{neo_id}", start_index=1, end_index=2)["times"]["data"] == [10.0, 30.0]
    response = api.get(f"spiketrain/{neo_id}", start_time=5, end_time=40)
    assert response.status_code == 400
