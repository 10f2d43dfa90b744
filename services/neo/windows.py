"""Signal slicing: which samples the `start_time`, `end_time`, `duration`, `start_index`,
`end_index`, `samples_count` and `downsample` parameters of seed 001 select.

Rules (documented in docs/neo.md):
- times are in the unit of the object's `t_start`; indices count samples from 0;
- the start comes from `start_index`, else `start_time`, else the first sample;
- the end comes from `end_index` (inclusive), else `samples_count`, else `end_time` (inclusive),
  else `duration` (from the start), else the last sample; parameters beyond these are redundant
  and disregarded, as the seed says;
- a window that starts after the data, ends before it starts, or a negative or non-numeric
  parameter is a 400.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable, Mapping

from shared.errors import BadRequest

_EPSILON = 1e-9
MAX_DOWNSAMPLE = 1_000_000


class BadWindow(BadRequest):
    message_type = "invalid_window"


@dataclass(frozen=True)
class WindowRequest:
    start_time: float | None = None
    end_time: float | None = None
    duration: float | None = None
    start_index: int | None = None
    end_index: int | None = None
    samples_count: int | None = None
    downsample: int | None = None

    @property
    def selects(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name != "downsample")

    @property
    def is_empty(self) -> bool:
        return not self.selects and self.downsample is None


WINDOW_PARAMETERS = tuple(f.name for f in fields(WindowRequest))
_FLOATS = ("start_time", "end_time", "duration")


def parse_window(args: Mapping[str, str]) -> WindowRequest:
    values: dict[str, float | int] = {}
    for name in WINDOW_PARAMETERS:
        raw = args.get(name)
        if raw is None or raw == "":
            continue
        values[name] = _parse_number(name, raw)
    request = WindowRequest(**values)  # type: ignore[arg-type]
    if request.duration is not None and request.duration < 0:
        raise BadWindow("`duration` cannot be negative.")
    if request.samples_count is not None and request.samples_count < 1:
        raise BadWindow("`samples_count` must be at least 1.")
    if request.downsample is not None and not 1 <= request.downsample <= MAX_DOWNSAMPLE:
        raise BadWindow(f"`downsample` must be between 1 and {MAX_DOWNSAMPLE}.")
    return request


def _parse_number(name: str, raw: str) -> float | int:
    try:
        value = float(raw) if name in _FLOATS else int(raw)
    except ValueError:
        kind = "a number" if name in _FLOATS else "a whole number"
        raise BadWindow(f"`{name}` must be {kind}, not {raw!r}.") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise BadWindow(f"`{name}` must be a finite number.")
    if name in ("start_index", "end_index") and value < 0:
        raise BadWindow(f"`{name}` cannot be negative.")
    return value


def _checked(start: int, stop: int, length: int, *, allow_empty: bool) -> tuple[int, int]:
    stop = min(stop, length)
    if length and start >= length and not (allow_empty and start == length):
        raise BadWindow(f"The window starts after the data ends ({length} samples).")
    if stop < start or (stop == start and not allow_empty and length):
        raise BadWindow("The window is empty: its end is before its start.")
    return start, max(stop, start)


def regular_window(request: WindowRequest, *, length: int, t_start: float, samples_per_unit: float) -> tuple[int, int]:
    """[start, stop) of a regularly sampled signal (`samples_per_unit`: rate in 1 / t_start's unit)."""
    def index_at(time: float) -> float:
        return (time - t_start) * samples_per_unit

    if request.start_index is not None:
        start = request.start_index
    elif request.start_time is not None:
        start = max(0, math.ceil(index_at(request.start_time) - _EPSILON))
    else:
        start = 0
    if request.end_index is not None:
        stop = request.end_index + 1
    elif request.samples_count is not None:
        stop = start + request.samples_count
    elif request.end_time is not None:
        if request.end_time < t_start:
            raise BadWindow("`end_time` is before the signal starts.")
        stop = math.floor(index_at(request.end_time) + _EPSILON) + 1
    elif request.duration is not None:
        stop = start + round(request.duration * samples_per_unit)
    else:
        stop = length
    return _checked(start, stop, length, allow_empty=False)


def start_is_by_time(request: WindowRequest) -> bool:
    return request.start_index is None and request.start_time is not None


def end_is_by_time(request: WindowRequest) -> bool:
    return request.end_index is None and request.samples_count is None and (
        request.end_time is not None or request.duration is not None
    )


def timed_window(
    request: WindowRequest,
    *,
    length: int,
    search: Callable[[float, str], int],
    time_at: Callable[[int], float],
    t_start: float,
) -> tuple[int, int]:
    """[start, stop) of samples with their own sorted times (spike trains, irregular signals).

    `search(time, side)` is searchsorted on the times, given in t_start's unit; an empty window is
    allowed here (a stretch without spikes is a valid answer).
    """
    if request.start_index is not None:
        if length and request.start_index >= length:
            raise BadWindow(f"`start_index` is past the last value ({length} values).")
        start = request.start_index
        window_start = time_at(start) if start < length else t_start
    elif request.start_time is not None:
        start, window_start = search(request.start_time, "left"), request.start_time
    else:
        start, window_start = 0, t_start
    if request.end_index is not None:
        stop = request.end_index + 1
    elif request.samples_count is not None:
        stop = start + request.samples_count
    elif request.end_time is not None:
        stop = search(request.end_time, "right")
    elif request.duration is not None:
        stop = search(window_start + request.duration, "left")
    else:
        stop = length
    return _checked(start, stop, length, allow_empty=True)
