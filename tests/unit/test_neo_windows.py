"""Which samples each combination of slicing parameters selects."""
import numpy as np
import pytest

from services.neo.windows import BadWindow, parse_window, regular_window, timed_window

# 20 kHz signal, t_start 0 ms: 20 samples per ms
RATE_PER_MS = 20.0


def window(length=1000, t_start=0.0, **params):
    request = parse_window({k: str(v) for k, v in params.items()})
    return regular_window(request, length=length, t_start=t_start, samples_per_unit=RATE_PER_MS)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, (0, 1000)),
        ({"start_index": 30, "end_index": 100}, (30, 101)),  # the seed's example: 71 points
        ({"start_index": 30}, (30, 1000)),
        ({"end_index": 9}, (0, 10)),
        ({"start_index": 30, "samples_count": 5}, (30, 35)),
        ({"start_time": 1.5, "end_time": 2.0}, (30, 41)),
        ({"start_time": 1.5, "duration": 1.0}, (30, 50)),
        ({"start_index": 30, "end_time": 2.0}, (30, 41)),
        ({"start_time": 1.5, "samples_count": 10}, (30, 40)),
        ({"duration": 1.0}, (0, 20)),
        ({"end_time": 2.0}, (0, 41)),
        ({"start_time": 1.52}, (31, 1000)),  # between samples: the next one
        ({"start_time": -5}, (0, 1000)),  # before the signal: from its start
        ({"start_index": 990, "samples_count": 100}, (990, 1000)),  # clipped at the end
        # redundant parameters are disregarded: index beats time, end_index beats the rest
        ({"start_index": 30, "start_time": 4.0, "end_index": 40, "duration": 9, "samples_count": 2}, (30, 41)),
    ],
)
def test_regular_windows(params, expected):
    assert window(**params) == expected


def test_t_start_shifts_times():
    assert window(t_start=10.0, start_time=11.5, end_time=12.0) == (30, 41)
    with pytest.raises(BadWindow):
        window(t_start=10.0, end_time=5.0)


@pytest.mark.parametrize(
    "params",
    [
        {"start_index": 1000},
        {"start_index": 50, "end_index": 10},
        {"start_time": 100},
        {"start_index": -1},
        {"samples_count": 0},
        {"duration": -1},
        {"downsample": 0},
        {"start_index": "abc"},
        {"start_time": "nan"},
        {"end_index": 1.5},
    ],
)
def test_useless_windows_are_400(params):
    with pytest.raises(BadWindow):
        window(**params)


def test_timed_windows_use_the_times():
    times = np.array([0.5, 1.0, 1.0, 2.5, 4.0, 7.0])

    def select(**params):
        request = parse_window({k: str(v) for k, v in params.items()})
        return timed_window(
            request,
            length=len(times),
            search=lambda value, side: int(np.searchsorted(times, value, side)),
            time_at=lambda index: float(times[index]),
            t_start=0.0,
        )

    assert select() == (0, 6)
    assert select(start_time=1.0, end_time=4.0) == (1, 5)
    assert select(start_time=1.0, duration=3.0) == (1, 4)
    assert select(start_index=3, duration=2.0) == (3, 5)
    assert select(start_time=5.0, end_time=6.0) == (5, 5)  # no spikes there: empty, not an error
    assert select(start_index=2, samples_count=2) == (2, 4)
    with pytest.raises(BadWindow):
        select(start_index=7)
