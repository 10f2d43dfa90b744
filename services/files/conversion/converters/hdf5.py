"""Conversion type 5 (HDF5): each numeric dataset at the root becomes the data of a NEO object.

The dataset's attributes choose the object: `neo_type` (analogsignal, the default;
irsaanalogsignal with a `times` dataset; spiketrain), `units`, `sampling_rate` (Hz), `t_start`,
`t_stop` (s), `name`. A 2-D dataset gives one signal per column. The file passed the HDF5 rules
(hdf5_rules.py) before it gets here.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from services.files.conversion import neo_objects
from services.files.conversion.errors import ConversionError

_SPIKE_TIME_SCALES = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "mcs": 1e-6}


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _signal_units(raw: Any) -> str:
    units = str(raw).strip().lower().replace("µ", "mc").replace("uv", "mcv")
    if units not in ("v", "mv", "mcv"):
        raise ConversionError(f"signal units {raw!r}; use V, mV or uV")
    return units


def _spiketrain(plan, name: str, data, attrs: dict, annotations: dict, segment_id, label: str) -> None:
    times = np.asarray(data, dtype=np.float64).ravel()
    units = str(attrs.get("units", "s")).lower()
    scale = _SPIKE_TIME_SCALES.get(units)
    if scale is None:
        raise ConversionError(f"/{name}: spike times in {units!r}; use s, ms or us")
    times = times * scale
    t_stop = float(attrs.get("t_stop", float(times.max()) if len(times) else 0.0))
    plan.create("spiketrain", {
        "segment": segment_id, "t_start": {"units": "s", "data": float(attrs.get("t_start", 0.0))},
        "t_stop": {"units": "s", "data": t_stop}, "times": {"units": "s"},
        "annotations": {**annotations, "name": label}}, {"times": times})


def _signals(plan, f, name: str, data, kind: str, attrs: dict, annotations: dict, segment_id, label: str) -> None:
    import h5py

    matrix = np.asarray(data).reshape(data.shape[0], -1)
    units = _signal_units(attrs.get("units", "mv"))
    rate = float(attrs.get("sampling_rate", 1000.0))
    times = None
    if kind == "irsaanalogsignal":
        times_ds = f.get(str(attrs.get("times", "times")))
        if not isinstance(times_ds, h5py.Dataset) or times_ds.shape[0] != matrix.shape[0]:
            raise ConversionError(f"/{name}: an irregular signal needs a `times` dataset of the same length")
        times = np.asarray(times_ds[()], dtype=np.float64)
    for column in range(matrix.shape[1]):
        body = {"name": label if matrix.shape[1] == 1 else f"{label} #{column}", "segment": segment_id,
                "t_start": {"units": "s", "data": float(attrs.get("t_start", 0.0))},
                "signal": {"units": units}, "annotations": {**annotations, "column": column}}
        arrays = {"signal": np.ascontiguousarray(matrix[:, column])}
        if times is None:
            body["sampling_rate"] = {"units": "hz", "data": rate}
            plan.create("analogsignal", body, arrays)
        else:
            body["times"] = {"units": "s"}
            plan.create("irsaanalogsignal", body, {**arrays, "times": times})


def parse_hdf5(source, plan, candidate) -> dict[str, Any]:
    import h5py

    try:
        f = h5py.File(source.path, "r")
    except OSError as exc:
        raise ConversionError(f"not a readable HDF5 file: {exc}") from None
    with f:
        datasets = [(name, obj) for name, obj in f.items()
                    if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "iuf" and obj.ndim in (1, 2) and obj.size]
        if not datasets:
            raise ConversionError("no numeric array at the root ('/') of the file")
        _, segment_id = neo_objects.container(plan, source.title, source="hdf5", datasets=[name for name, _ in datasets])
        for name, dataset in datasets:
            attrs = {k: _attr(v) for k, v in dataset.attrs.items()}
            kind = str(attrs.get("neo_type", "analogsignal")).lower()
            label = str(attrs.get("name", name))
            annotations = neo_objects.plain({"dataset": f"/{name}", **{k: v for k, v in attrs.items() if k != "neo_type"}})
            if kind == "spiketrain":
                _spiketrain(plan, name, dataset[()], attrs, annotations, segment_id, label)
            elif kind in ("analogsignal", "irsaanalogsignal"):
                _signals(plan, f, name, dataset[()], kind, attrs, annotations, segment_id, label)
            else:
                raise ConversionError(f"/{name}: neo_type {kind!r} is not one of analogsignal, irsaanalogsignal, spiketrain")
    return {"kind": "objects"}
