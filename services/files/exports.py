"""Exports of converted data: `GET /datafiles/<id>/download/?format=hdf5|nix|nwb|csv`.

The NEO objects a conversion created (`extracted_info.blocks`) are read back from the neo service
as the requesting user, rebuilt as `neo` objects (analog signals of one `analogsignalarray` become
one multi-channel signal again; event and epoch arrays become `Event`s and `Epoch`s; annotations
come back, `original_units` restores the units) and written to a temporary file under
`FILES_DIR/tmp/`, which is streamed and removed once sent:

- `nix`: neo's NixIO; `nwb`: neo's NWBIO (NWB 2); `csv`: one line per analog signal channel, as
  the ascii-csv converter reads them;
- `hdf5` (h5py): `/block_<i>/segment_<j>/<kind>_<k>` datasets (`analogsignal` samples x channels,
  `spiketrain`, `event` and `epoch` times) with their units, rate, start and names as attributes,
  annotations as a JSON attribute.

Whoever may read the datafile may export it (anonymous callers too, for a public one). The NEO
objects are read as the caller, and those the caller may not read (or that are gone) are left out
(docs/permissions.md); when no block is left the answer is 401 (anonymous) or 403.
"""
from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from flask import Response, request, send_file

from services.files.clients import ServiceDown, ServiceRefused
from shared.errors import BadRequest, Conflict, Forbidden, NotAuthenticated, ServiceUnavailable

LEFT_OUT = (401, 403, 404)  # the neo service's answers for an object the caller may not read, or gone

FORMATS = {"hdf5": ("h5", "application/x-hdf5"), "nix": ("nix", "application/x-hdf5"),
           "nwb": ("nwb", "application/x-hdf5"), "csv": ("csv", "text/csv")}
_OURS = ("channel_index", "original_units", "name", "channels", "file_origin")


def _annotations(raw: dict | None, drop=()) -> dict[str, Any]:
    """Annotations in a form NIX and NWB accept: scalars, strings, flat lists; the rest as JSON text."""
    out = {}
    for key, value in (raw or {}).items():
        if key in drop or key == "array_annotations":
            continue
        if isinstance(value, (str, int, float, bool)):
            out[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            out[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out[key] = value
        elif value is not None:
            out[key] = json.dumps(value)
    return out


class _Reader:
    def __init__(self, ctx, identity):
        self.ctx, self.identity = ctx, identity

    def get(self, neo_id: str) -> dict[str, Any] | None:
        """The object, or None when the caller may not read it (or it is gone): it is left out."""
        try:
            # Arrays as their shapes only: they come in .npy (array()), and a long signal's JSON is refused.
            return self.ctx.neo.get(self.identity, neo_id, q="full", arrays="shape")
        except ServiceRefused as exc:
            if exc.status in LEFT_OUT:
                return None
            raise

    def each(self, neo_ids) -> list[tuple[str, dict[str, Any]]]:
        """(id, object) of the readable ones of `neo_ids`, in order."""
        found = ((neo_id, self.get(neo_id)) for neo_id in neo_ids or [])
        return [(neo_id, obj) for neo_id, obj in found if obj is not None]

    def objects(self, neo_ids) -> list[dict[str, Any]]:
        return [obj for _, obj in self.each(neo_ids)]

    def array(self, neo_id: str, field: str) -> np.ndarray:
        return self.ctx.neo.array(self.identity, neo_id, field)


def _units(obj: dict, default: str) -> str:
    original = (obj.get("annotations") or {}).get("original_units")
    return original or default


def _quantity_units(unit: str) -> str:
    return {"mv": "mV", "v": "V", "mcv": "uV", "s": "s", "ms": "ms", "mcs": "us", "hz": "Hz", "khz": "kHz"}.get(unit, unit)


def _value(field: dict | None, to: str):
    import quantities as pq

    return pq.Quantity(field["data"], _quantity_units(field["units"])).rescale(to)


def rebuild_blocks(ctx, identity, block_ids: list[str]) -> list[Any]:
    import neo
    import quantities as pq

    reader = _Reader(ctx, identity)
    blocks = []
    for raw in reader.objects(block_ids):
        block = neo.Block(name=raw.get("name"), description=raw.get("description"),
                          **_annotations(raw.get("annotations"), drop=("file_origin",)))
        for seg_raw in reader.objects(raw.get("segment")):
            segment = neo.Segment(name=seg_raw.get("name"), description=seg_raw.get("description"),
                                  **_annotations(seg_raw.get("annotations")))
            groups: dict[str, list[dict]] = {}
            for signal_id, signal in reader.each(seg_raw.get("analogsignal")):
                signal["_data"] = reader.array(signal_id, "signal")
                groups.setdefault(signal.get("analogsignalarray") or signal_id, []).append(signal)
            for key, channels in groups.items():
                lengths = {len(c["_data"]) for c in channels}
                batches = [channels] if len(lengths) == 1 else [[c] for c in channels]
                for batch in batches:
                    first = batch[0]
                    data = np.column_stack([c["_data"] for c in batch])
                    name = (first.get("annotations") or {}).get("name") or first.get("name")
                    units = _units(first, "mV") if first["signal"]["units"] == "mv" else _quantity_units(first["signal"]["units"])
                    annotations = _annotations(first.get("annotations"), drop=_OURS)
                    if key.startswith("analogsignalarray_"):
                        annotations.update(_annotations((reader.get(key) or {}).get("annotations"), drop=_OURS))
                    segment.analogsignals.append(neo.AnalogSignal(
                        data, units=units, sampling_rate=_value(first["sampling_rate"], "Hz"),
                        t_start=_value(first["t_start"], "s"), name=name, **annotations))
            for signal_id, signal in reader.each(seg_raw.get("irsaanalogsignal")):
                units = _units(signal, "mV") if signal["signal"]["units"] == "mv" else _quantity_units(signal["signal"]["units"])
                times = pq.Quantity(reader.array(signal_id, "times"), _quantity_units(signal["times"]["units"]))
                segment.irregularlysampledsignals.append(neo.IrregularlySampledSignal(
                    times, reader.array(signal_id, "signal"), units=units, name=signal.get("name"),
                    **_annotations(signal.get("annotations"), drop=_OURS)))
            for train_id, train in reader.each(seg_raw.get("spiketrain")):
                times = pq.Quantity(reader.array(train_id, "times"), _quantity_units(train["times"]["units"]))
                waveforms = None
                stored = train.get("waveforms")
                if isinstance(stored, dict) and (stored.get("shape") or stored.get("data") is not None):
                    waveforms = reader.array(train_id, "waveforms")
                    if waveforms.ndim == 2:
                        waveforms = waveforms[:, np.newaxis, :]
                    waveforms = waveforms * pq.mV
                segment.spiketrains.append(neo.SpikeTrain(
                    times, t_start=_value(train["t_start"], "s"), t_stop=_value(train["t_stop"], "s"),
                    waveforms=waveforms, name=(train.get("annotations") or {}).get("name"),
                    **_annotations(train.get("annotations"), drop=_OURS + ("left_sweep", "sampling_rate"))))
            for array in reader.objects(seg_raw.get("eventarray")):
                events = reader.objects(array.get("event"))
                segment.events.append(neo.Event(
                    np.array([_value(e["time"], "s").magnitude for e in events], dtype=float) * pq.s,
                    labels=np.array([e["label"] for e in events], dtype="U"),
                    name=(array.get("annotations") or {}).get("name"), **_annotations(array.get("annotations"), drop=_OURS)))
            for array in reader.objects(seg_raw.get("epocharray")):
                epochs = reader.objects(array.get("epoch"))
                segment.epochs.append(neo.Epoch(
                    np.array([_value(e["time"], "s").magnitude for e in epochs], dtype=float) * pq.s,
                    durations=np.array([_value(e["duration"], "s").magnitude for e in epochs], dtype=float) * pq.s,
                    labels=np.array([e["label"] for e in epochs], dtype="U"),
                    name=(array.get("annotations") or {}).get("name"), **_annotations(array.get("annotations"), drop=_OURS)))
            block.segments.append(segment)
        blocks.append(block)
    return blocks


def write_hdf5(blocks, path: Path) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["format"] = "gnode-datafile-export"
        for i, block in enumerate(blocks):
            g_block = f.create_group(f"block_{i}")
            g_block.attrs.update(name=block.name or "", annotations=json.dumps(block.annotations, default=str))
            for j, segment in enumerate(block.segments):
                g_seg = g_block.create_group(f"segment_{j}")
                g_seg.attrs.update(name=segment.name or "", annotations=json.dumps(segment.annotations, default=str))
                for k, signal in enumerate(segment.analogsignals):
                    ds = g_seg.create_dataset(f"analogsignal_{k}", data=signal.magnitude, chunks=True)
                    ds.attrs.update(units=signal.dimensionality.string, sampling_rate=float(signal.sampling_rate.rescale("Hz")),
                                    t_start=float(signal.t_start.rescale("s")), name=signal.name or "",
                                    annotations=json.dumps(signal.annotations, default=str))
                for k, signal in enumerate(segment.irregularlysampledsignals):
                    ds = g_seg.create_dataset(f"irregularsignal_{k}", data=signal.magnitude)
                    g_seg.create_dataset(f"irregularsignal_{k}_times", data=signal.times.rescale("s").magnitude)
                    ds.attrs.update(units=signal.dimensionality.string, name=signal.name or "")
                for k, train in enumerate(segment.spiketrains):
                    ds = g_seg.create_dataset(f"spiketrain_{k}", data=train.rescale("s").magnitude)
                    ds.attrs.update(units="s", t_start=float(train.t_start.rescale("s")), t_stop=float(train.t_stop.rescale("s")),
                                    name=train.name or "", annotations=json.dumps(train.annotations, default=str))
                    if train.waveforms is not None and train.waveforms.size:
                        g_seg.create_dataset(f"spiketrain_{k}_waveforms", data=train.waveforms.magnitude)
                for k, event in enumerate(segment.events):
                    ds = g_seg.create_dataset(f"event_{k}", data=event.times.rescale("s").magnitude)
                    ds.attrs.update(units="s", name=event.name or "", labels=[str(x) for x in event.labels])
                for k, epoch in enumerate(segment.epochs):
                    ds = g_seg.create_dataset(f"epoch_{k}", data=epoch.times.rescale("s").magnitude)
                    ds.attrs.update(units="s", name=epoch.name or "", labels=[str(x) for x in epoch.labels],
                                    durations=epoch.durations.rescale("s").magnitude)


def write_csv(blocks, path: Path) -> None:
    with open(path, "w") as f:
        for block in blocks:
            for segment in block.segments:
                for signal in segment.analogsignals:
                    data = np.asarray(signal.magnitude).reshape(signal.shape[0], -1)
                    for channel in range(data.shape[1]):
                        f.write(",".join(repr(float(v)) for v in data[:, channel]) + "\n")


def write_nix(blocks, path: Path) -> None:
    from neo.io import NixIO

    with NixIO(str(path), mode="ow") as io:
        io.write_all_blocks(blocks)


def write_nwb(blocks, path: Path, title: str) -> None:
    import warnings

    from neo.io import NWBIO

    for block in blocks:
        block.annotations.setdefault("session_start_time", datetime.now(timezone.utc))
        block.annotations.setdefault("session_description", title or "G-Node datafile export")
        block.annotations.setdefault("identifier", str(uuid.uuid4()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynwb's deprecation notes about neo's use of it
        NWBIO(str(path), mode="w").write_all_blocks(blocks)


def export_response(*, ctx, identity, doc, fmt: str) -> Response:
    if fmt not in FORMATS:
        raise BadRequest(f"`format` must be one of {', '.join(FORMATS)} (or empty for the original file).",
                         message_type="invalid_parameter")
    blocks_ids = (doc.get("extracted_info") or {}).get("blocks") or []
    if doc.get("current_state") != "converted" or not blocks_ids:
        raise Conflict(f"datafile_{doc['_id']} has no converted electrophysiology data to export; "
                       "download it without `format`, or convert it first.", message_type="not_converted")
    try:
        blocks = rebuild_blocks(ctx, identity, blocks_ids)
    except ServiceDown as exc:
        raise ServiceUnavailable(f"Cannot read the converted data: {exc}.", headers={"Retry-After": "5"}) from None
    except ServiceRefused as exc:
        raise Forbidden(f"Cannot read the converted data: {exc}.") from None
    if not blocks:
        if not identity.is_authenticated:
            raise NotAuthenticated(f"The converted data of datafile_{doc['_id']} is not public; log in to export it.")
        raise Forbidden(f"You may not read the converted data of datafile_{doc['_id']} (or it was deleted).")
    extension, media_type = FORMATS[fmt]
    fd, name = tempfile.mkstemp(prefix="export-", suffix=f".{extension}", dir=ctx.store.tmp_dir())
    os.close(fd)
    path = Path(name)
    handle = None
    try:
        if fmt == "hdf5":
            write_hdf5(blocks, path)
        elif fmt == "csv":
            write_csv(blocks, path)
        elif fmt == "nix":
            path.unlink()
            write_nix(blocks, path)
        else:
            path.unlink()
            write_nwb(blocks, path, doc.get("title") or "")
        stem = (doc.get("title") or f"datafile_{doc['_id']}").rsplit(".", 1)[0] or f"datafile_{doc['_id']}"
        handle = open(path, "rb")
    finally:
        path.unlink(missing_ok=True)  # the open handle keeps the bytes until the response is closed
    size = os.fstat(handle.fileno()).st_size
    response = send_file(handle, mimetype=media_type, as_attachment=True, download_name=f"{stem}.{extension}",
                         conditional=False, max_age=0)
    response.content_length = size
    return response.make_conditional(request, accept_ranges=True, complete_length=size)
