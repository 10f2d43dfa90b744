"""Creating NEO objects in the neo service from `neo` library objects (and plain arrays).

Seed 001's model is per channel: a neo `AnalogSignal` of N channels becomes N `analogsignal`s (in
an `analogsignalarray` when N > 1); an `Event` of K times becomes an `eventarray` with K `event`s,
an `Epoch` an `epocharray` with its `epoch`s; spike trains keep their waveforms. Times go in s,
rates in hz, voltages in mv. A signal in other units (pA, dimensionless...) keeps its numbers, is
stored as mv and says so in `annotations.original_units`. Names of types without a `name`
attribute go to `annotations.name`. This runs in the parse sandbox: objects go into the plan
(plan.py); the worker creates them and tags each with the task's `file_origin`, so that a
repeated attempt can find and remove what an interrupted one created.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:
    from services.files.conversion.plan import PlanWriter, Ref

MAX_ANNOTATION_ITEMS = 10_000


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of an annotation value (numpy, quantities, dates, nested containers)."""
    import quantities as pq

    if depth > 8:
        return str(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if np.isfinite(number) else str(number)
    if isinstance(value, pq.Quantity):
        magnitude = plain(value.magnitude.tolist() if value.ndim else float(value.magnitude), depth + 1)
        return {"units": value.dimensionality.string, "data": magnitude}
    if isinstance(value, np.ndarray):
        if value.size > MAX_ANNOTATION_ITEMS:
            return f"<array of shape {value.shape}>"
        return plain(value.tolist(), depth + 1)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in list(value.items())[:MAX_ANNOTATION_ITEMS]}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, depth + 1) for v in list(value)[:MAX_ANNOTATION_ITEMS]]
    return str(value)


def annotations_of(obj: Any, **extra: Any) -> dict[str, Any]:
    out = plain(dict(getattr(obj, "annotations", None) or {}))
    array_annotations = getattr(obj, "array_annotations", None)
    if array_annotations:
        out["array_annotations"] = plain(dict(array_annotations))
    out.update({k: plain(v) for k, v in extra.items() if v is not None})
    return out


def _common(obj: Any) -> dict[str, Any]:
    body = {}
    if getattr(obj, "description", None):
        body["description"] = str(obj.description)[:10_000]
    return body


def _seconds(quantity) -> float:
    return float(quantity.rescale("s").magnitude)


def _hz(quantity) -> float:
    return float(quantity.rescale("Hz").magnitude)


def voltage(array) -> tuple[np.ndarray, str | None]:
    """(magnitudes in mV, None) for a voltage; (magnitudes as they are, original units) otherwise."""
    import quantities as pq

    units = array.units if hasattr(array, "units") else None
    if units is not None:
        try:
            return np.asarray(array.rescale(pq.mV).magnitude), None
        except ValueError:
            return np.asarray(array.magnitude), array.dimensionality.string
    return np.asarray(array), None


def _datetime(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return None


def write_block(plan: "PlanWriter", block: Any, position: int) -> "Ref":
    """The whole block: segments with their signals, spike trains, events and epochs."""
    body = {"name": str(block.name or f"{plan.title} block {position}")[:10_000], "index": position,
            "annotations": annotations_of(block, file_origin=getattr(block, "file_origin", None)), **_common(block)}
    when = _datetime(getattr(block, "file_datetime", None) or getattr(block, "rec_datetime", None))
    if when:
        body["filedatetime"] = when
    block_id = plan.create("block", body)
    for index, segment in enumerate(block.segments):
        write_segment(plan, segment, block_id, index)
    return block_id


def write_segment(plan: "PlanWriter", segment: Any, block_id: "Ref", index: int) -> "Ref":
    body = {"name": str(segment.name or f"segment {index}")[:10_000], "block": block_id, "index": index,
            "annotations": annotations_of(segment), **_common(segment)}
    when = _datetime(getattr(segment, "rec_datetime", None) or getattr(segment, "file_datetime", None))
    if when:
        body["filedatetime"] = when
    segment_id = plan.create("segment", body)
    for signal in segment.analogsignals:
        write_analogsignal(plan, signal, segment_id)
    for signal in getattr(segment, "irregularlysampledsignals", []):
        write_irregular(plan, signal, segment_id)
    for train in segment.spiketrains:
        write_spiketrain(plan, train, segment_id)
    for event in segment.events:
        write_events(plan, event, segment_id)
    for epoch in segment.epochs:
        write_epochs(plan, epoch, segment_id)
    return segment_id


def _channel_annotations(obj: Any, channel: int) -> dict[str, Any]:
    out = {}
    for key, values in (getattr(obj, "array_annotations", None) or {}).items():
        try:
            out[key] = plain(values[channel])
        except (IndexError, TypeError):
            continue
    return out


def write_analogsignal(plan: "PlanWriter", signal: Any, segment_id: "Ref") -> list["Ref"]:
    data, original_units = voltage(signal)
    data = data.reshape(data.shape[0], -1)
    name = str(signal.name or "signal")
    channels = data.shape[1]
    group_id = None
    if channels > 1:
        group_id = plan.create("analogsignalarray", {"segment": segment_id, "annotations": annotations_of(
            signal, name=name, channels=channels, original_units=original_units), **_common(signal)})
    ids = []
    for channel in range(channels):
        extra = {"channel_index": channel, "original_units": original_units, **_channel_annotations(signal, channel)}
        body = {
            "name": name if channels == 1 else f"{name} #{channel}",
            "segment": segment_id,
            "sampling_rate": {"units": "hz", "data": _hz(signal.sampling_rate)},
            "t_start": {"units": "s", "data": _seconds(signal.t_start)},
            "signal": {"units": "mv"},
            "annotations": annotations_of(signal, **extra) if channels == 1 else {"name": name, **{
                k: v for k, v in extra.items() if v is not None}},
            **_common(signal),
        }
        if group_id:
            body["analogsignalarray"] = group_id
        ids.append(plan.create("analogsignal", body, {"signal": np.ascontiguousarray(data[:, channel])}))
    return ids


def write_irregular(plan: "PlanWriter", signal: Any, segment_id: "Ref") -> list["Ref"]:
    data, original_units = voltage(signal)
    data = data.reshape(data.shape[0], -1)
    times = np.asarray(signal.times.rescale("s").magnitude, dtype=np.float64)
    name = str(signal.name or "irregular signal")
    ids = []
    for channel in range(data.shape[1]):
        body = {
            "name": name if data.shape[1] == 1 else f"{name} #{channel}",
            "segment": segment_id,
            "t_start": {"units": "s", "data": float(times[0]) if len(times) else 0.0},
            "signal": {"units": "mv"},
            "times": {"units": "s"},
            "annotations": annotations_of(signal, channel_index=channel, original_units=original_units,
                                          **_channel_annotations(signal, channel)),
            **_common(signal),
        }
        ids.append(plan.create("irsaanalogsignal", body, {"signal": np.ascontiguousarray(data[:, channel]), "times": times}))
    return ids


def write_spiketrain(plan: "PlanWriter", train: Any, segment_id: "Ref") -> "Ref":
    body = {
        "segment": segment_id,
        "t_start": {"units": "s", "data": _seconds(train.t_start)},
        "t_stop": {"units": "s", "data": _seconds(train.t_stop)},
        "times": {"units": "s"},
        "annotations": annotations_of(train, name=train.name, left_sweep=getattr(train, "left_sweep", None),
                                      sampling_rate=getattr(train, "sampling_rate", None)),
        **_common(train),
    }
    arrays = {"times": np.asarray(train.times.rescale("s").magnitude, dtype=np.float64)}
    waveforms = getattr(train, "waveforms", None)
    if waveforms is not None and np.size(waveforms) and len(waveforms) == len(train):
        values, original_units = voltage(waveforms)
        body["waveforms"] = {"units": "mv"}
        if original_units:
            body["annotations"]["waveform_units"] = original_units
        arrays["waveforms"] = np.asarray(values)
    return plan.create("spiketrain", body, arrays)


def _labels(obj: Any, count: int) -> list[str]:
    labels = getattr(obj, "labels", None)
    out = []
    for i in range(count):
        label = labels[i] if labels is not None and len(labels) > i else ""
        if isinstance(label, bytes):
            label = label.decode("utf-8", "replace")
        label = str(label).strip()
        out.append(label or str(i))
    return out


def write_events(plan: "PlanWriter", event: Any, segment_id: "Ref") -> list["Ref"]:
    array_id = plan.create("eventarray", {"segment": segment_id, "annotations": annotations_of(event, name=event.name),
                                         **_common(event)})
    times = np.atleast_1d(event.times.rescale("s").magnitude)
    labels = _labels(event, len(times))
    bodies = [{"label": labels[i], "time": {"units": "s", "data": float(times[i])}, "segment": segment_id,
               "eventarray": array_id, "annotations": _channel_annotations(event, i)} for i in range(len(times))]
    return [array_id, *plan.create_many("event", bodies)]


def write_epochs(plan: "PlanWriter", epoch: Any, segment_id: "Ref") -> list["Ref"]:
    array_id = plan.create("epocharray", {"segment": segment_id, "annotations": annotations_of(epoch, name=epoch.name),
                                         **_common(epoch)})
    times = np.atleast_1d(epoch.times.rescale("s").magnitude)
    durations = np.broadcast_to(np.atleast_1d(epoch.durations.rescale("s").magnitude), times.shape)
    labels = _labels(epoch, len(times))
    bodies = [{"label": labels[i], "time": {"units": "s", "data": float(times[i])},
               "duration": {"units": "s", "data": float(durations[i])}, "segment": segment_id,
               "epocharray": array_id, "annotations": _channel_annotations(epoch, i)} for i in range(len(times))]
    return [array_id, *plan.create_many("epoch", bodies)]


def container(plan: "PlanWriter", name: str, **annotations: Any) -> tuple["Ref", "Ref"]:
    """A block with one segment, for converters whose files have no structure of their own."""
    block_id = plan.create("block", {"name": name[:10_000], "annotations": plain(annotations)})
    segment_id = plan.create("segment", {"name": "segment 0", "block": block_id, "index": 0})
    return block_id, segment_id
