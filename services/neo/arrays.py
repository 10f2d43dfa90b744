"""Array data of NEO objects in chunked HDF5 files under DATA_DIR.

One file per object version, written once and never modified:

    <root>/<h[0:2]>/<h[2:4]>/<key>.<uuid hex>.h5      h = sha1(key), e.g. ab/cd/analogsignal_12.3f...e1.h5

An update writes a new file (atomically: a hidden temp name in the same directory, then
os.replace), so readers holding the old descriptor keep reading the old file until it is deleted.

Inside a file:

    /data/<field>                      the array, chunked along axis 0, uncompressed, native byte order
                                       (attrs: sorted = 1/0 for 1-D arrays)
    /pyramid/<field>/<level>           level = 1, 2, ...: (entries, 2) min/max pairs in occurrence order
                                       (see services.neo.pyramid; group attrs block, factor, levels)

Pyramids exist for 1-D arrays longer than chunk_samples. Everything streams: a field is written in
pieces of a few MiB whatever its size or source (numpy array or `NpyStream`), with the pyramid
and the sortedness computed on the way.

Readers keep a small per-process LRU of open files (immutable, so never stale), opened without
HDF5's chunk cache: a window is then read straight from its bytes in the file, in time proportional
to the window (a 10,000-sample read does not pull the whole 256 KiB chunk through a cache).
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Literal, Union

import h5py
import numpy as np

from services.neo.npy import NpyStream
from services.neo.pyramid import Overview, PyramidBuilder, level_sizes
from services.neo.pyramid import overview as _pyramid_overview

__all__ = ["ArraySource", "ArrayStore", "NpyStream", "Overview"]

ArraySource = Union[np.ndarray, NpyStream]

FORMAT = "gnode-neo-arrays"
FORMAT_VERSION = 1
WRITE_BYTES = 4 << 20  # bytes per write call while streaming a field in
CHUNK_BYTES = 512 << 10  # target chunk size of n-D arrays (256 KiB - 1 MiB)
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _check_dtype(name: str, dtype: np.dtype) -> np.dtype:
    """The dtype stored for a source dtype (native byte order) or ValueError."""
    if dtype.hasobject or dtype.kind not in "iuf" or dtype.itemsize > 8 or dtype.fields is not None:
        raise ValueError(f"array field {name!r}: dtype {dtype} is not supported "
                         "(integers and float16/32/64 only)")
    return dtype.newbyteorder("=") if not dtype.isnative else dtype


class _Source:
    """A validated array source: shape, stored dtype, and pieces of at most `rows` rows."""

    def __init__(self, name: str, source):
        if not _FIELD.match(name):
            raise ValueError(f"invalid array field name {name!r}")
        self.name = name
        if isinstance(source, NpyStream):
            self.stream, self.array = source, None
            shape, dtype = source.shape, source.dtype
        else:
            self.stream, self.array = None, np.asarray(source)
            shape, dtype = self.array.shape, self.array.dtype
        self.dtype = _check_dtype(name, dtype)
        if len(shape) < 1:
            raise ValueError(f"array field {name!r}: 0-d arrays are not stored, use a 1-element array")
        self.shape = tuple(int(d) for d in shape)
        self.row_elems = math.prod(self.shape[1:])

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_elems * self.dtype.itemsize

    def pieces(self, rows: int) -> Iterator[np.ndarray]:
        if self.stream is not None:
            it = self.stream.iter_chunks(rows) if self.shape[0] else iter(())
        else:
            it = (self.array[i:i + rows] for i in range(0, self.shape[0], rows))
        for piece in it:
            yield piece if piece.dtype == self.dtype else piece.astype(self.dtype)


class _Sortedness:
    """Non-decreasing check over consecutive 1-D pieces (NaN anywhere -> not sorted)."""

    def __init__(self):
        self.sorted = True
        self._last = None

    def feed(self, x: np.ndarray) -> None:
        if not self.sorted or not len(x):
            return
        if self._last is None:
            if x.dtype.kind == "f" and np.isnan(x[0]):
                self.sorted = False
                return
        elif not x[0] >= self._last:
            self.sorted = False
            return
        if len(x) > 1 and not np.all(x[1:] >= x[:-1]):
            self.sorted = False
            return
        self._last = x[-1]


class _Handle:
    """An open file with its datasets looked up once."""

    def __init__(self, path: Path):
        self.file = h5py.File(path, "r", rdcc_nbytes=0)
        self.used = time.monotonic()
        self._datasets: dict[str, h5py.Dataset] = {}
        self._pyramids: dict[str, tuple[int, int, list[h5py.Dataset]]] = {}

    def dataset(self, field: str) -> h5py.Dataset:
        ds = self._datasets.get(field)
        if ds is None:
            try:
                ds = self.file["data"][field]
            except KeyError:
                raise KeyError(f"array field {field!r} is not in {self.file.filename}") from None
            self._datasets[field] = ds
        return ds

    def pyramid(self, field: str) -> tuple[int, int, list[h5py.Dataset]]:
        """(block, factor, level datasets); no levels when the field has no pyramid."""
        pyr = self._pyramids.get(field)
        if pyr is None:
            group = self.file.get(f"pyramid/{field}")
            if group is None:
                pyr = (1, 1, [])
            else:
                levels = int(group.attrs["levels"])
                pyr = (int(group.attrs["block"]), int(group.attrs["factor"]),
                       [group[str(lvl)] for lvl in range(1, levels + 1)])
            self._pyramids[field] = pyr
        return pyr


class _OpenFiles:
    """LRU of open read handles by relative file name, per process; idle ones are dropped."""

    def __init__(self, capacity: int = 64, idle_seconds: float = 120.0):
        self.capacity, self.idle_seconds = capacity, idle_seconds
        self._lock = threading.Lock()
        self._handles: OrderedDict[str, _Handle] = OrderedDict()
        self._pid = os.getpid()
        self._swept = time.monotonic()

    def get(self, rel: str, locate: Callable[[str], Path]) -> _Handle:
        now = time.monotonic()
        with self._lock:
            if self._pid != os.getpid():  # forked: never share HDF5 handles with the parent
                self._handles, self._pid = OrderedDict(), os.getpid()
            handle = self._handles.get(rel)
            if handle is not None:
                self._handles.move_to_end(rel)
                handle.used = now
                return handle
            handle = _Handle(locate(rel))  # FileNotFoundError propagates
            self._handles[rel] = handle
            while len(self._handles) > self.capacity:
                self._handles.popitem(last=False)
            if now - self._swept > self.idle_seconds / 4:
                self._swept = now
                for p in [p for p, h in self._handles.items() if now - h.used > self.idle_seconds]:
                    del self._handles[p]  # closed when the last reader lets go of it
            return handle

    def drop(self, rel: str) -> None:
        with self._lock:
            self._handles.pop(rel, None)

    def clear(self) -> None:
        with self._lock:
            self._handles.clear()


class ArrayStore:
    """Array fields of NEO objects, one immutable HDF5 file per object version (see module doc)."""

    def __init__(self, root: str | Path, *, chunk_samples: int = 65536, pyramid_block: int = 64,
                 pyramid_factor: int = 16, pyramid_top: int = 4096, open_files: int = 64):
        if chunk_samples < 1 or pyramid_block < 2 or pyramid_factor < 2 or pyramid_top < 2:
            raise ValueError("chunk_samples >= 1, pyramid_block, pyramid_factor, pyramid_top >= 2")
        self.root = Path(root)
        self.chunk_samples = chunk_samples
        self.pyramid_block = pyramid_block
        self.pyramid_factor = pyramid_factor
        self.pyramid_top = pyramid_top
        self._files = _OpenFiles(open_files)

    # ---- locations ------------------------------------------------------------------------

    def _relative_dir(self, key: str) -> PurePosixPath:
        if not _KEY.match(key) or ".." in key:
            raise ValueError(f"invalid array key {key!r}")
        digest = hashlib.sha1(key.encode()).hexdigest()
        return PurePosixPath(digest[:2], digest[2:4])

    def path(self, descriptor: Mapping) -> Path:
        return self._locate(descriptor["file"])

    def _locate(self, file: str) -> Path:
        rel = PurePosixPath(file)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"invalid array file {file!r}")
        return self.root.joinpath(*rel.parts)

    def _handle(self, descriptor: Mapping) -> _Handle:
        return self._files.get(descriptor["file"], self._locate)

    def _field(self, descriptor: Mapping, field: str) -> Mapping:
        try:
            return descriptor["fields"][field]
        except KeyError:
            raise KeyError(f"no array field {field!r}") from None

    # ---- writing --------------------------------------------------------------------------

    def write(self, key: str, fields: Mapping[str, ArraySource]) -> dict:
        """Write all array fields of one object version into one new file; returns its descriptor."""
        return self._write(key, {}, None, fields)

    def copy_fields(self, key: str, old_descriptor: Mapping, keep: list[str],
                    new_fields: Mapping[str, ArraySource]) -> dict:
        """A new version: fields `keep` copied from the old file (chunk by chunk, by HDF5), plus `new_fields`."""
        keep = list(dict.fromkeys(keep))
        old_fields = old_descriptor["fields"]
        missing = [k for k in keep if k not in old_fields]
        if missing:
            raise KeyError(f"array fields {missing} are not in the old version")
        both = sorted(set(keep) & set(new_fields))
        if both:
            raise ValueError(f"array fields {both} are both kept and replaced")
        return self._write(key, {k: old_fields[k] for k in keep}, old_descriptor if keep else None, new_fields)

    def _write(self, key: str, kept: Mapping[str, Mapping], old_descriptor, fields: Mapping[str, ArraySource]) -> dict:
        sources = [_Source(name, src) for name, src in fields.items()]  # validate before touching disk
        rel_dir = self._relative_dir(key)
        directory = self.root.joinpath(*rel_dir.parts)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{key}.{uuid.uuid4().hex}.h5"
        final, tmp = directory / name, directory / f".{name}.tmp"
        described: dict[str, dict] = {}
        try:
            with h5py.File(tmp, "w", libver=("v110", "latest")) as out:
                out.attrs["format"] = FORMAT
                out.attrs["format_version"] = FORMAT_VERSION
                out.attrs["key"] = key
                data = out.create_group("data")
                pyramids = out.create_group("pyramid")
                if kept:
                    old = self._handle(old_descriptor).file  # H5Ocopy: chunk by chunk, in HDF5
                    for field in kept:
                        old.copy(old["data"][field], data, name=field)
                        if f"pyramid/{field}" in old:
                            old.copy(old["pyramid"][field], pyramids, name=field)
                        described[field] = dict(kept[field])
                for source in sources:
                    described[source.name] = self._write_field(data, pyramids, source)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return {"file": str(rel_dir / name), "fields": described}

    def _chunk_rows(self, source: _Source) -> int:
        if len(source.shape) == 1:
            return self.chunk_samples
        row_bytes = source.row_elems * source.dtype.itemsize
        return max(1, CHUNK_BYTES // max(1, row_bytes))

    def _write_field(self, data: h5py.Group, pyramids: h5py.Group, source: _Source) -> dict:
        n, shape, dtype = source.shape[0], source.shape, source.dtype
        one_d = len(shape) == 1
        if n == 0 or source.row_elems == 0:
            ds = data.create_dataset(source.name, shape=shape, dtype=dtype)
            for _ in source.pieces(max(1, n)):  # consume a stream's (empty) data
                pass
            chunk_rows = 1
        else:
            chunk_rows = min(self._chunk_rows(source), n)
            ds = data.create_dataset(source.name, shape=shape, dtype=dtype, chunks=(chunk_rows, *shape[1:]))
        row_bytes = max(1, source.row_elems * dtype.itemsize)
        unit = chunk_rows * max(1, WRITE_BYTES // (chunk_rows * row_bytes))

        builder = None
        if one_d and n > self.chunk_samples:
            sizes = level_sizes(n, self.pyramid_block, self.pyramid_factor, self.pyramid_top)
            group = pyramids.create_group(source.name)
            group.attrs["block"] = self.pyramid_block
            group.attrs["factor"] = self.pyramid_factor
            group.attrs["levels"] = len(sizes)
            outputs = [group.create_dataset(str(lvl), shape=(size, 2), dtype=dtype)
                       for lvl, size in enumerate(sizes, start=1)]
            builder = PyramidBuilder(outputs, block=self.pyramid_block, factor=self.pyramid_factor, dtype=dtype)
        order = _Sortedness() if one_d else None

        done = 0
        if n and source.row_elems:
            for piece in source.pieces(unit):
                count = piece.shape[0]
                if done + count > n:
                    raise ValueError(f"array field {source.name!r}: more rows than announced")
                ds[done:done + count] = piece
                done += count
                if builder is not None:
                    builder.feed(piece)
                if order is not None:
                    order.feed(piece)
            if done != n:
                raise ValueError(f"array field {source.name!r}: {done} rows written, {n} announced")
        if builder is not None:
            builder.finish()
        if order is not None:
            ds.attrs["sorted"] = int(order.sorted)
        return {"shape": list(shape), "dtype": dtype.name, "nbytes": source.nbytes,
                "sorted": order.sorted if order is not None else None}

    # ---- reading --------------------------------------------------------------------------

    def _dataset(self, descriptor: Mapping, field: str) -> h5py.Dataset:
        return self._handle(descriptor).dataset(field)

    def length(self, descriptor: Mapping, field: str) -> int:
        return int(self._field(descriptor, field)["shape"][0])

    def _window(self, info: Mapping, start: int, stop: int | None) -> tuple[int, int]:
        n = int(info["shape"][0])
        start = max(0, min(int(start), n))
        stop = n if stop is None else max(start, min(int(stop), n))
        return start, stop

    def read(self, descriptor: Mapping, field: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) along axis 0 (clamped to the array)."""
        info = self._field(descriptor, field)
        start, stop = self._window(info, start, stop)
        if stop == start:
            return np.empty((0, *info["shape"][1:]), dtype=info["dtype"])
        return self._dataset(descriptor, field)[start:stop]

    def iter_chunks(self, descriptor: Mapping, field: str, start: int = 0, stop: int | None = None,
                    chunk_samples: int | None = None) -> Iterator[np.ndarray]:
        """Rows [start, stop) in pieces of at most chunk_samples rows (default: the stored chunk rows).

        Arguments and the file are checked at the call, not at the first iteration."""
        info = self._field(descriptor, field)
        start, stop = self._window(info, start, stop)
        if chunk_samples is not None and chunk_samples < 1:
            raise ValueError("chunk_samples must be >= 1")
        if stop == start:
            return iter(())
        ds = self._dataset(descriptor, field)
        step = chunk_samples or (ds.chunks[0] if ds.chunks else stop - start)
        return (ds[pos:min(pos + step, stop)] for pos in range(start, stop, step))

    def take(self, descriptor: Mapping, field: str, indices: np.ndarray, *, batch: int = 4096) -> np.ndarray:
        """The rows at `indices` (any order, repeats allowed), read as point selections of at most
        `batch` rows: memory and time follow the number of indices, not the span they cover."""
        info = self._field(descriptor, field)
        n = int(info["shape"][0])
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise IndexError(f"array field {field!r}: indices outside [0, {n})")
        if not indices.size:
            return np.empty((0, *info["shape"][1:]), dtype=info["dtype"])
        wanted, positions = np.unique(indices, return_inverse=True)  # h5py wants increasing indices
        ds = self._dataset(descriptor, field)
        rows = np.concatenate([ds[wanted[i:i + batch]] for i in range(0, len(wanted), batch)])
        return rows[positions]

    def overview(self, descriptor: Mapping, field: str, start: int, stop: int, points: int) -> Overview:
        """About `points` values keeping the peaks of [start, stop) of a 1-D field (see pyramid.Overview)."""
        info = self._field(descriptor, field)
        if len(info["shape"]) != 1:
            raise ValueError(f"array field {field!r} is not 1-D")
        start, stop = self._window(info, start, stop)
        n = int(info["shape"][0])
        if n == 0:
            return Overview(np.empty(0, dtype=info["dtype"]), 1.0, 0, "raw", None)
        handle = self._handle(descriptor)
        ds = handle.dataset(field)
        block, factor, levels = handle.pyramid(field)

        def reader(level: int, lo: int, hi: int) -> np.ndarray:
            return ds[lo:hi] if level == 0 else levels[level - 1][lo:hi]

        return _pyramid_overview(reader, n, start, stop, points, dtype=ds.dtype, block=block, factor=factor,
                                 levels=len(levels), raw_limit=4 * self.chunk_samples)

    def searchsorted(self, descriptor: Mapping, field: str, value: float,
                     side: Literal["left", "right"] = "left") -> int:
        """np.searchsorted on a sorted 1-D field, reading O(log n) single values and one chunk."""
        info = self._field(descriptor, field)
        if side not in ("left", "right"):
            raise ValueError("side must be 'left' or 'right'")
        if len(info["shape"]) != 1 or info.get("sorted") is not True:
            raise ValueError(f"array field {field!r} is not a sorted 1-D array")
        n = int(info["shape"][0])
        if n == 0:
            return 0
        if isinstance(value, float) and math.isnan(value):
            return n  # NaN sorts last, as in numpy
        ds = self._dataset(descriptor, field)
        lo, hi = 0, n  # the answer is in [lo, hi]
        span = max(1, ds.chunks[0] if ds.chunks else n)
        while hi - lo > span:
            mid = (lo + hi) // 2
            x = ds[mid]
            if (x < value) if side == "left" else (x <= value):
                lo = mid + 1
            else:
                hi = mid
        return lo + int(np.searchsorted(ds[lo:hi], value, side=side))

    # ---- removal ------------------------------------------------------------------------

    def delete(self, descriptor: Mapping) -> None:
        """Remove a version's file (a missing file is fine; open readers elsewhere keep their view)."""
        path = self.path(descriptor)
        self._files.drop(descriptor["file"])
        path.unlink(missing_ok=True)

    def remove_stale_temp_files(self, older_than: float = 3600.0) -> int:
        """Remove temp files left by writers that died more than `older_than` seconds ago; returns how many."""
        removed, limit = 0, time.time() - older_than
        for tmp in self.root.glob("*/*/.*.h5.tmp"):
            try:
                if tmp.stat().st_mtime < limit:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def close(self) -> None:
        """Forget the open read handles of this store."""
        self._files.clear()
