"""Reading NEO objects: parts (`q`), windows and overviews of arrays, cascade, ETags, formats."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import orjson

from services.neo.context import NeoContext
from services.neo.npy import iter_npy, npy_length
from services.neo.relations import children_of, container_size, descendants, visible_parents
from services.neo.schema import NEO_TYPES, NeoType
from services.neo.service import load_readable, parse_object_id, require_type
from services.neo.units import TIME, convert
from services.neo.windows import (
    BadWindow,
    WindowRequest,
    end_is_by_time,
    parse_window,
    regular_window,
    start_is_by_time,
    timed_window,
)
from shared.errors import BadRequest
from shared.params import parse_flag
from shared.identity import Identity

PARTS = ("full", "info", "data", "parents", "children")
ARRAY_FORMS = ("data", "shape")  # `arrays=shape`: array fields as {units, shape, dtype}, nothing read
NPY_MEDIA_TYPE = "application/x-npy"


@dataclass(frozen=True)
class ReadRequest:
    part: str = "full"
    cascade: bool = False
    window: WindowRequest = field(default_factory=WindowRequest)
    format: str = "json"
    field: str | None = None
    variant: str = ""  # what distinguishes this representation for the ETag
    arrays: str = "data"


def flag(args: Mapping[str, str], name: str) -> bool:
    return parse_flag(args.get(name), name)


def parse_read_request(args: Mapping[str, str], accept: str = "") -> ReadRequest:
    part = args.get("q", "full").strip().lower() or "full"
    if part not in PARTS:
        raise BadRequest(f"`q` must be one of {', '.join(PARTS)}.", message_type="invalid_parameter")
    fmt = args.get("format", "").strip().lower() or ("npy" if NPY_MEDIA_TYPE in accept else "json")
    if fmt not in ("json", "npy"):
        raise BadRequest("`format` must be json or npy.", message_type="invalid_parameter")
    arrays = args.get("arrays", "").strip().lower() or "data"
    if arrays not in ARRAY_FORMS:
        raise BadRequest(f"`arrays` must be one of {', '.join(ARRAY_FORMS)}.", message_type="invalid_parameter")
    variant = "&".join(f"{k}={v}" for k, v in sorted(args.items())) + f"|{fmt}"
    return ReadRequest(part, flag(args, "cascade"), parse_window(args), fmt, args.get("field") or None, variant,
                       arrays)


# --- arrays: which samples, read how --------------------------------------------------------------

@dataclass(frozen=True)
class PlannedArray:
    """One array of an answer, known by its shape before any of it is read: the JSON limit is
    checked and the .npy length announced from the shape; then the data is read whole (`load`,
    for JSON within the limit) or piece by piece (`pieces`, for a .npy stream)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    load: Callable[[], np.ndarray]
    pieces: Callable[[], Iterator[np.ndarray]]

    @property
    def values(self) -> int:
        return math.prod(self.shape)


def _stored(ctx: NeoContext, desc: Mapping[str, Any], name: str, start: int = 0, stop: int | None = None) -> PlannedArray:
    """Rows [start, stop) of a stored field, read only when asked for."""
    info = desc["fields"][name]
    length = int(info["shape"][0])
    start = max(0, min(start, length))
    stop = length if stop is None else max(start, min(stop, length))
    return PlannedArray(
        shape=(stop - start, *(int(d) for d in info["shape"][1:])), dtype=np.dtype(info["dtype"]),
        load=lambda: ctx.arrays.read(desc, name, start, stop),
        pieces=lambda: ctx.arrays.iter_chunks(desc, name, start, stop),
    )


def _in_memory(array: np.ndarray) -> PlannedArray:
    """An array computed already (an overview: at most `downsample` values)."""
    return PlannedArray(shape=array.shape, dtype=array.dtype, load=lambda: array, pieces=lambda: iter((array,)))


@dataclass
class ArrayView:
    """The selected part of an object's arrays, plus the scalar fields the window changes."""

    arrays: dict[str, PlannedArray] = field(default_factory=dict)
    scalar_overrides: dict[str, float] = field(default_factory=dict)
    downsample: dict[str, Any] | None = None
    window: tuple[int, int] | None = None

    @property
    def values(self) -> int:
        return sum(planned.values for planned in self.arrays.values())


def _scalar(doc: Mapping[str, Any], name: str) -> tuple[float, str]:
    value = doc[name]
    return float(value["data"]), value["units"]


def _field_length(ctx: NeoContext, doc: Mapping[str, Any], name: str) -> int:
    return int(doc["arrays"]["fields"][name]["shape"][0])


def _analogsignal_window(ctx: NeoContext, doc, window: WindowRequest) -> ArrayView:
    desc = doc["arrays"]
    length = _field_length(ctx, doc, "signal")
    t_start, unit = _scalar(doc, "t_start")
    samples_per_unit = doc["sampling_rate"]["base"] * TIME.factor(unit)
    start, stop = regular_window(window, length=length, t_start=t_start, samples_per_unit=samples_per_unit) \
        if window.selects else (0, length)
    view = ArrayView(window=(start, stop), scalar_overrides={"t_start": t_start + start / samples_per_unit})
    if window.downsample:
        overview = ctx.arrays.overview(desc, "signal", start, stop, window.downsample)
        view.arrays["signal"] = _in_memory(overview.values)
        view.downsample = _overview_info(overview)
    else:
        view.arrays["signal"] = _stored(ctx, desc, "signal", start, stop)
    return view


def _overview_info(overview) -> dict[str, Any]:
    return {"points": int(len(overview.values)), "buckets": int(overview.buckets),
            "bucket_samples": float(overview.bucket_samples), "method": overview.method}


def _times_search(ctx: NeoContext, doc, time_unit: str):
    desc = doc["arrays"]
    times_unit = doc["times"]["units"]

    def search(time: float, side: str) -> int:
        value = convert(time, time_unit, times_unit, TIME)
        try:
            return ctx.arrays.searchsorted(desc, "times", value, side)
        except ValueError:
            raise BadWindow("The times of this object are not sorted; select by index instead.") from None

    def time_at(index: int) -> float:
        return float(convert(ctx.arrays.read(desc, "times", index, index + 1)[0], times_unit, time_unit, TIME))

    return search, time_at


def _irsa_window(ctx: NeoContext, doc, window: WindowRequest) -> ArrayView:
    desc = doc["arrays"]
    length = _field_length(ctx, doc, "signal")
    t_start, unit = _scalar(doc, "t_start")
    search, time_at = _times_search(ctx, doc, unit)
    start, stop = timed_window(window, length=length, search=search, time_at=time_at, t_start=t_start) \
        if window.selects else (0, length)
    if window.selects and stop == start:
        raise BadWindow("No samples fall in this window.")
    view = ArrayView(window=(start, stop))
    if window.selects:
        view.scalar_overrides["t_start"] = time_at(start)
    if window.downsample and stop - start > window.downsample:
        overview = ctx.arrays.overview(desc, "signal", start, stop, window.downsample)
        picks = np.linspace(start, stop - 1, len(overview.values)).astype(np.int64)
        view.arrays["signal"] = _in_memory(overview.values)
        view.arrays["times"] = _in_memory(ctx.arrays.take(desc, "times", picks))
        view.downsample = _overview_info(overview)
    else:
        view.arrays["signal"] = _stored(ctx, desc, "signal", start, stop)
        view.arrays["times"] = _stored(ctx, desc, "times", start, stop)
    return view


def _spiketrain_window(ctx: NeoContext, doc, window: WindowRequest) -> ArrayView:
    if window.downsample:
        raise BadWindow("`downsample` applies to signals, not to spike trains.")
    desc = doc["arrays"]
    length = _field_length(ctx, doc, "times")
    t_start, unit = _scalar(doc, "t_start")
    t_stop = convert(doc["t_stop"]["data"], doc["t_stop"]["units"], unit, TIME)
    search, time_at = _times_search(ctx, doc, unit)
    start, stop = timed_window(window, length=length, search=search, time_at=time_at, t_start=t_start) \
        if window.selects else (0, length)
    view = ArrayView(window=(start, stop))
    for name in desc["fields"]:
        view.arrays[name] = _stored(ctx, desc, name, start, stop)
    # The train's bounds become the window's only where the window was given in time (the
    # parameters that decided it); index-based windows keep the recording's bounds.
    window_start = t_start
    if start_is_by_time(window):
        window_start = max(t_start, window.start_time)
        view.scalar_overrides["t_start"] = window_start
    if end_is_by_time(window):
        end = window.end_time if window.end_time is not None else window_start + window.duration
        view.scalar_overrides["t_stop"] = convert(max(window_start, min(t_stop, end)), unit, doc["t_stop"]["units"], TIME)
    return view


_WINDOWED = {"analogsignal": _analogsignal_window, "irsaanalogsignal": _irsa_window, "spiketrain": _spiketrain_window}


def array_view(ctx: NeoContext, neo_type: NeoType, doc: Mapping[str, Any], window: WindowRequest) -> ArrayView:
    if not doc.get("arrays"):
        if window.is_empty:
            return ArrayView()
        raise BadWindow(f"{neo_type.name} has no array data to slice.")
    if neo_type.name in _WINDOWED:
        return _WINDOWED[neo_type.name](ctx, doc, window)
    if not window.is_empty:
        raise BadWindow(f"Windows apply to {', '.join(_WINDOWED)}, not to {neo_type.name}.")
    return ArrayView(arrays={name: _stored(ctx, doc["arrays"], name) for name in doc["arrays"]["fields"]})


# --- serialisation ------------------------------------------------------------------------------

def _data_value(neo_type: NeoType, doc: Mapping[str, Any], name: str, view: ArrayView | None) -> Any:
    value = doc.get(name)
    if value is None:
        return None
    data_field = neo_type.data_field(name)
    if data_field.is_array:
        if view is None:
            info = (doc.get("arrays") or {}).get("fields", {}).get(name, {})
            return {"units": value["units"], "shape": info.get("shape"), "dtype": info.get("dtype")}
        planned = view.arrays.get(name)
        return {"units": value["units"], "data": planned.load() if planned is not None else None}
    data = view.scalar_overrides.get(name, value["data"]) if view is not None else value["data"]
    return {"units": value["units"], "data": data}


def serialise(
    neo_type: NeoType,
    doc: Mapping[str, Any],
    *,
    part: str = "full",
    children: Mapping[str, list] | None = None,
    view: ArrayView | None = None,
    parents: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The flat wire form of seed 001; with no `view`, array fields give their shape, not data.

    `parents` are the links to show (relations.visible_parents); by default the stored ones."""
    out: dict[str, Any] = {"neo_id": doc["neo_id"]}
    if part in ("full", "info"):
        out.update({a.name: doc.get(a.name) for a in neo_type.attributes})
    if part in ("full", "data"):
        out.update({d.name: _data_value(neo_type, doc, d.name, view) for d in neo_type.data_fields})
        if view is not None and view.downsample:
            out["downsample"] = view.downsample
    if part in ("full", "parents"):
        if parents is None:
            parents = {p: f"{p}_{doc[p]}" if doc.get(p) is not None else None for p in neo_type.parents}
        out.update({p: parents.get(p) for p in neo_type.parents})
    if part in ("full", "children") and children is not None:
        out.update(children)
    if part in ("full", "info"):
        out.update(
            author=doc.get("author"), date_created=doc.get("date_created"), last_modified=doc.get("last_modified"),
            size=doc.get("size", 0), description=doc.get("description"), file_origin=doc.get("file_origin"),
            annotations=doc.get("annotations") or {}, safety_level=doc.get("safety_level"),
        )
    return out


def etag_of(parts: list[Any]) -> str:
    return '"' + hashlib.sha1(orjson.dumps(parts, option=orjson.OPT_PASSTHROUGH_DATETIME, default=str)).hexdigest() + '"'


def _representation_etag(doc, children, links, tree, variant: str) -> str:
    """What a GET answers depends on: the object's version and ACL, its (readable) children and
    descendants, which parent links the caller may see, and the parameters."""
    versions = [(d["neo_id"], d["version"], d.get("acl_version", 0)) for _, d in tree] if tree else []
    return etag_of([doc["neo_id"], doc["version"], doc.get("acl_version", 0), doc["size"], children, links, versions,
                    variant])


@dataclass
class ObjectRead:
    doc: dict[str, Any]
    etag: str
    body: dict[str, Any] | None = None
    npy: Iterator[bytes] | None = None
    npy_headers: dict[str, str] = field(default_factory=dict)


def read_object(
    *, ctx: NeoContext, identity: Identity, type_name: str, raw_id: str, request: ReadRequest, if_none_match: str | None = None
) -> ObjectRead:
    neo_type = require_type(type_name)
    doc = load_readable(ctx, identity, neo_type, parse_object_id(neo_type, raw_id))
    children = children_of(ctx, identity, neo_type, doc["_id"]) if neo_type.children else {}
    doc["size"] = container_size(ctx, identity, neo_type, doc)
    with_data = request.arrays == "data"
    tree = _cascade(ctx, identity, neo_type, doc, with_data=with_data) if request.cascade else None
    links = {}
    if request.part in ("full", "parents") or tree:
        links = visible_parents(ctx, identity, [(neo_type, doc), *(tree or [])])
    etag = _representation_etag(doc, children, links, tree, request.variant)
    read = ObjectRead(doc=doc, etag=etag)
    if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return read  # the caller answers 304; no array is read
    if request.format == "npy":
        _read_npy(ctx, neo_type, doc, request, read)
        return read
    view = None
    if request.part in ("full", "data") and with_data:
        view = array_view(ctx, neo_type, doc, request.window)
        _check_json_size(ctx, doc, view)
    read.body = serialise(neo_type, doc, part=request.part, children=children, view=view,
                          parents=links.get(doc["neo_id"]))
    if tree is not None:
        read.body.update(_nest(ctx, neo_type, doc, tree, links, with_data=with_data))
    return read


def _check_json_size(ctx: NeoContext, doc: Mapping[str, Any], view: ArrayView) -> None:
    """Refuse, from the shapes alone (nothing is read yet), an answer with too many values for JSON."""
    if view.values > ctx.limits.json_max_samples:
        raise BadRequest(
            f"{doc['neo_id']} holds {view.values} values, too many for JSON (at most "
            f"{ctx.limits.json_max_samples}); ask for a window, `downsample=N`, or `format=npy`.",
            message_type="too_large_for_json",
            details={"values": view.values, "limit": ctx.limits.json_max_samples},
        )


def plain_etag(
    ctx: NeoContext, identity: Identity, neo_type: NeoType, doc: Mapping[str, Any],
    links: Mapping[str, Mapping[str, str | None]] | None = None,
) -> str:
    """The ETag a plain GET of the object (no parameters) carries, for If-Match on updates.
    `links`: relations.visible_parents of the object, when the caller has them already."""
    children = children_of(ctx, identity, neo_type, doc["_id"]) if neo_type.children else {}
    size = container_size(ctx, identity, neo_type, doc)
    if links is None:
        links = visible_parents(ctx, identity, [(neo_type, doc)])
    return _representation_etag({**doc, "size": size}, children, links, None, ReadRequest().variant + "|json")


def _read_npy(ctx: NeoContext, neo_type: NeoType, doc, request: ReadRequest, read: ObjectRead) -> None:
    name = request.field or neo_type.primary_array
    data_field = neo_type.data_field(name) if name else None
    if data_field is None or not data_field.is_array or not doc.get("arrays") or name not in doc["arrays"]["fields"]:
        raise BadRequest(f"{doc['neo_id']} has no array {name!r} to send as .npy.", message_type="invalid_parameter")
    view = array_view(ctx, neo_type, doc, request.window)
    planned = view.arrays[name]
    # Streamed from the HDF5 chunks: the answer costs one chunk of memory, whatever its length.
    read.npy = iter_npy(planned.shape, planned.dtype, planned.pieces())
    read.npy_headers = {
        "Content-Length": str(npy_length(planned.shape, planned.dtype)),
        "X-Neo-Id": doc["neo_id"],
        "X-Neo-Field": name,
        "X-Neo-Units": doc[name]["units"],
        "Content-Disposition": f'attachment; filename="{doc["neo_id"]}_{name}.npy"',
    }
    for scalar in ("t_start", "t_stop", "sampling_rate"):
        if doc.get(scalar):
            value = view.scalar_overrides.get(scalar, doc[scalar]["data"])
            read.npy_headers[f"X-Neo-{scalar.replace('_', '-').title()}"] = f"{value} {doc[scalar]['units']}"
    if view.downsample:
        read.npy_headers["X-Neo-Downsample"] = orjson.dumps(view.downsample).decode()


# --- cascade ------------------------------------------------------------------------------------

def _cascade(ctx: NeoContext, identity: Identity, neo_type: NeoType, doc, *, with_data: bool
             ) -> list[tuple[NeoType, dict]]:
    """The readable descendants, refused from their count and stored shapes before any array is read."""
    tree, samples = [], 0
    for child_type, child in descendants(ctx, identity, neo_type, doc["_id"], projection={"_outbox": 0}):
        tree.append((child_type, child))
        if with_data:
            samples += sum(math.prod(f["shape"]) for f in ((child.get("arrays") or {}).get("fields") or {}).values())
        if len(tree) > ctx.limits.cascade_max_objects or samples > ctx.limits.cascade_max_samples:
            raise BadRequest(
                f"{doc['neo_id']} has more than {ctx.limits.cascade_max_objects} descendants or "
                f"{ctx.limits.cascade_max_samples} array values; read it level by level with q=children.",
                message_type="cascade_too_large",
            )
    return tree


def _nest(ctx: NeoContext, neo_type: NeoType, root, tree: list[tuple[NeoType, dict]],
          links: Mapping[str, Mapping[str, str | None]], *, with_data: bool) -> dict[str, list]:
    """The root's children lists with each child object in place of its id, recursively (arrays as
    data, or as their shapes without `with_data`)."""
    by_parent: dict[tuple[str, int], dict[str, list]] = {}
    for child_type, child in tree:
        for parent_type in child_type.parents:
            if child.get(parent_type) is not None:
                by_parent.setdefault((parent_type, child[parent_type]), {}).setdefault(child_type.name, []).append(child)
    done: dict[str, dict] = {}

    def render(node_type: NeoType, node) -> dict[str, Any]:
        if node["neo_id"] not in done:
            kids = by_parent.get((node_type.name, node["_id"]), {})
            view = array_view(ctx, node_type, node, WindowRequest()) if with_data else None
            children = {name: [render(NEO_TYPES[name], kid) for kid in kids.get(name, [])] for name in node_type.children}
            done[node["neo_id"]] = serialise(node_type, node, children=children, view=view, parents=links.get(node["neo_id"]))
        return done[node["neo_id"]]

    kids = by_parent.get((neo_type.name, root["_id"]), {})
    return {name: [render(NEO_TYPES[name], kid) for kid in kids.get(name, [])] for name in neo_type.children}
