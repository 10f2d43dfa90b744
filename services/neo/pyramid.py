"""Min/max pyramids of 1-D arrays: built while streaming, queried for peak-preserving overviews.

Level 1 holds one entry per `block` samples, level k+1 one entry per `factor` entries of level k;
entry j of level l covers samples [j * span(l), min((j + 1) * span(l), n)) with
span(l) = block * factor ** (l - 1) (span(0) = 1: level 0 is the samples themselves).

An entry is a pair of values *in the order they occur*: (min, max) when the first minimum comes
before (or at) the first maximum, else (max, min). So min = pair.min(), max = pair.max() and the
order is known without storing anything else. NaN propagates like numpy's min/max (a block with
a NaN is (nan, nan)); "first occurrence" follows numpy's argmin/argmax.

Storage-agnostic: the builder writes to anything supporting `out[a:b] = pairs` (h5py datasets,
numpy arrays) and the overview reads through a `reader(level, lo, hi)` callable.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

GRID_RATIO = 8  # a pyramid level serves an overview when a bucket spans >= GRID_RATIO of its entries
GROUP_ENTRIES = 1 << 20  # entries reduced per step of an overview (bounds its memory)


def level_sizes(n: int, block: int, factor: int, top: int) -> list[int]:
    """Entries per level (index 0 = level 1): levels are added until one has fewer than `top`."""
    if n <= 0:
        return []
    sizes = [-(-n // block)]
    while sizes[-1] >= top and sizes[-1] > 1:
        sizes.append(-(-sizes[-1] // factor))
    return sizes


def spans(block: int, factor: int, levels: int) -> list[int]:
    """Samples per entry for levels 0..levels."""
    return [1] + [block * factor ** i for i in range(levels)]


def block_pairs(rows: np.ndarray) -> np.ndarray:
    """(m, k) samples -> (m, 2) extremes in occurrence order."""
    m = rows.shape[0]
    imin = rows.argmin(axis=1)
    imax = rows.argmax(axis=1)
    r = np.arange(m)
    return _ordered(rows[r, imin], rows[r, imax], imin <= imax)


def merge_pairs(groups: np.ndarray) -> np.ndarray:
    """(m, k, 2) pairs -> (m, 2): the extremes of k consecutive entries, in occurrence order."""
    a, b = groups[..., 0], groups[..., 1]
    mins, maxs = np.minimum(a, b), np.maximum(a, b)
    imin = mins.argmin(axis=1)
    imax = maxs.argmax(axis=1)
    r = np.arange(groups.shape[0])
    child_min_first = a[r, imin] <= b[r, imin]
    min_first = np.where(imin != imax, imin < imax, child_min_first)
    return _ordered(mins[r, imin], maxs[r, imax], min_first)


def _ordered(mn: np.ndarray, mx: np.ndarray, min_first: np.ndarray) -> np.ndarray:
    out = np.empty((mn.shape[0], 2), dtype=mn.dtype)
    out[:, 0] = np.where(min_first, mn, mx)
    out[:, 1] = np.where(min_first, mx, mn)
    return out


class PyramidBuilder:
    """Feed the samples in order (any chunk sizes); `finish()` writes the last partial entries.

    Memory: the entries of each level are buffered up to `flush_entries` before being written,
    plus fewer than `block` samples / `factor` entries carried between chunks."""

    def __init__(self, outputs: Sequence, *, block: int, factor: int, dtype, flush_entries: int = 1 << 16):
        self.outputs = list(outputs)
        self.block, self.factor = block, factor
        self.dtype = np.dtype(dtype)
        self.flush_entries = flush_entries
        levels = len(self.outputs)
        self._carry_samples = np.empty(0, self.dtype)
        self._carry_pairs = [np.empty((0, 2), self.dtype) for _ in range(max(0, levels - 1))]
        self._pending: list[list[np.ndarray]] = [[] for _ in range(levels)]
        self._pending_n = [0] * levels
        self._written = [0] * levels

    def feed(self, chunk: np.ndarray) -> None:
        if not self.outputs or not len(chunk):
            return
        x = np.concatenate([self._carry_samples, chunk]) if len(self._carry_samples) else chunk
        full = len(x) // self.block * self.block
        if full:
            self._emit(0, block_pairs(x[:full].reshape(-1, self.block)))
        self._carry_samples = x[full:].copy()

    def finish(self) -> list[int]:
        """Flush everything; returns the number of entries written per level."""
        if not self.outputs:
            return []
        if len(self._carry_samples):
            self._emit(0, block_pairs(self._carry_samples[None, :]))
            self._carry_samples = self._carry_samples[:0]
        for i, carry in enumerate(self._carry_pairs):
            if len(carry):
                self._carry_pairs[i] = carry[:0]
                self._emit(i + 1, merge_pairs(carry[None]))
        for i in range(len(self.outputs)):
            self._flush(i)
        return list(self._written)

    def _emit(self, i: int, pairs: np.ndarray) -> None:
        self._pending[i].append(pairs)
        self._pending_n[i] += len(pairs)
        if self._pending_n[i] >= self.flush_entries:
            self._flush(i)
        if i + 1 < len(self.outputs):
            carry = self._carry_pairs[i]
            x = np.concatenate([carry, pairs]) if len(carry) else pairs
            full = len(x) // self.factor * self.factor
            if full:
                self._emit(i + 1, merge_pairs(x[:full].reshape(-1, self.factor, 2)))
            self._carry_pairs[i] = x[full:].copy()

    def _flush(self, i: int) -> None:
        if not self._pending_n[i]:
            return
        parts = self._pending[i]
        data = parts[0] if len(parts) == 1 else np.concatenate(parts)
        start = self._written[i]
        self.outputs[i][start:start + len(data)] = data
        self._written[i] += len(data)
        self._pending[i], self._pending_n[i] = [], 0


# ---------------------------------------------------------------------------------------------
# Overview queries

Reader = Callable[[int, int, int], np.ndarray]  # (level, lo, hi) -> samples (level 0) or (k, 2) pairs


@dataclass
class Overview:
    """About `points` values keeping the peaks of a 1-D window.

    method "raw": the window itself (it had <= points samples).
    method "minmax": `buckets` buckets of about `bucket_samples` samples, each emitting its min and
    max in the order they occur. `edges` are the buckets + 1 sample indices delimiting the buckets
    ([edges[i], edges[i+1]) is bucket i): start + floor(i * n / buckets) when the window is reduced
    from raw samples; when served from pyramid level l, the inner edges are rounded to the nearest
    multiple of that level's span (at most 1/16 of a bucket away)."""

    values: np.ndarray
    bucket_samples: float
    buckets: int
    method: str
    edges: np.ndarray | None = field(default=None, repr=False)


def overview(reader: Reader, n: int, start: int, stop: int, points: int, *, dtype, block: int = 64,
             factor: int = 16, levels: int = 0, raw_limit: int = 1 << 18) -> Overview:
    """Min/max overview of samples [start, stop) of an n-sample array with `levels` pyramid levels.

    Windows of at most `raw_limit` samples (or arrays without a pyramid) are reduced from raw samples
    with exact bucket edges; larger ones from the coarsest level with span <= bucket / GRID_RATIO,
    reading raw samples and finer levels only for the two unaligned window edges."""
    if points < 1:
        raise ValueError("points must be >= 1")
    start, stop = max(0, min(start, n)), max(0, min(stop, n))
    stop = max(start, stop)
    width = stop - start
    dtype = np.dtype(dtype)
    if width <= points:
        return Overview(np.asarray(reader(0, start, stop)), 1.0, width, "raw", None)
    nb = max(1, points // 2)
    bucket = width / nb
    span = spans(block, factor, levels)
    top = 0
    if width > raw_limit:
        for lvl in range(1, levels + 1):
            if span[lvl] * GRID_RATIO <= bucket:
                top = lvl
    g = span[top]
    edges = start + (np.arange(nb + 1, dtype=np.int64) * width) // nb
    first_aligned = -(-start // g) * g  # A: the window start rounded up to the grid
    last_aligned = stop // g * g  # the window stop rounded down to the grid
    if g > 1:
        inner = (edges[1:-1] + g // 2) // g * g
        edges[1:-1] = np.maximum.accumulate(np.clip(inner, first_aligned, last_aligned))
    # entries of level `top` fully inside the window; the array's last (partial) entry ends at n
    lo_entry = first_aligned // g
    if stop == n:
        hi_entry, interior_stop = -(-n // g), n
    else:
        hi_entry, interior_stop = stop // g, last_aligned
    bounds = np.empty(nb + 1, dtype=np.int64)  # entry index where each bucket's interior starts
    bounds[0] = lo_entry
    bounds[1:-1] = edges[1:-1] // g
    bounds[-1] = hi_entry
    bounds = np.clip(bounds, lo_entry, max(lo_entry, hi_entry))

    minv = np.empty(nb, dtype=dtype)
    maxv = np.empty(nb, dtype=dtype)
    mink = np.full(nb, -1, dtype=np.int64)
    maxk = np.full(nb, -1, dtype=np.int64)
    _interior(reader, top, g, bounds, minv, maxv, mink, maxk)

    # the unaligned window edges, from finer levels: they belong to the first / last bucket
    left = _pieces(start, min(first_aligned, interior_stop), top, span)
    right = _pieces(max(interior_stop, first_aligned), stop, top, span)
    if left:
        _combine(0, [_piece_extremes(reader, span, *p) for p in left], minv, maxv, mink, maxk)
    if right:
        _combine(nb - 1, [_piece_extremes(reader, span, *p) for p in right], minv, maxv, mink, maxk)

    values = np.empty(2 * nb, dtype=dtype)
    min_first = mink <= maxk
    values[0::2] = np.where(min_first, minv, maxv)
    values[1::2] = np.where(min_first, maxv, minv)
    return Overview(values, width / nb, nb, "minmax", edges)


def _entries(reader: Reader, level: int, g: int, lo: int, hi: int):
    """(mins, maxs, min keys, max keys) of entries [lo, hi) of a level; key = 2 * first sample (+1 when second)."""
    data = np.asarray(reader(level, lo, hi))
    if level == 0:
        keys = 2 * np.arange(lo, hi, dtype=np.int64)
        return data, data, keys, keys
    a, b = data[:, 0], data[:, 1]
    base = 2 * g * np.arange(lo, hi, dtype=np.int64)
    second = (a > b) | (a != a)  # max first (NaN pairs: either, both values are NaN)
    return np.minimum(a, b), np.maximum(a, b), base + second, base + ~second


def _interior(reader: Reader, level: int, g: int, bounds: np.ndarray, minv, maxv, mink, maxk) -> None:
    """Fill the extremes of the buckets' interiors (entries bounds[i]..bounds[i+1] of `level`)."""
    nb = len(bounds) - 1
    i = 0
    while i < nb:
        # a group of buckets covering at most GROUP_ENTRIES entries (at least one bucket)
        j = int(np.searchsorted(bounds, bounds[i] + GROUP_ENTRIES, side="right")) - 1
        j = min(max(j, i + 1), nb)
        lo, hi = int(bounds[i]), int(bounds[j])
        if hi > lo:
            mins, maxs, kmin, kmax = _entries(reader, level, g, lo, hi)
            seg = bounds[i:j + 1] - lo
            lens = np.diff(seg)
            nonempty = np.flatnonzero(lens > 0)
            starts = seg[nonempty]
            counts = lens[nonempty]
            vmin = np.minimum.reduceat(mins, starts)
            vmax = np.maximum.reduceat(maxs, starts)
            out = i + nonempty
            minv[out], maxv[out] = vmin, vmax
            mink[out] = _first_key(mins, kmin, vmin, starts, counts)
            maxk[out] = _first_key(maxs, kmax, vmax, starts, counts)
        i = j


def _first_key(values: np.ndarray, keys: np.ndarray, extreme: np.ndarray, starts, counts) -> np.ndarray:
    """Per segment, the smallest key among entries equal to the segment's extreme (NaN equals NaN)."""
    target = np.repeat(extreme, counts)
    hit = values == target
    if values.dtype.kind == "f":
        hit |= np.isnan(values) & np.isnan(target)
    return np.minimum.reduceat(np.where(hit, keys, np.iinfo(np.int64).max), starts)


def _pieces(p: int, q: int, top: int, span: list[int]) -> list[tuple[int, int, int]]:
    """Decompose samples [p, q) into (level, lo_entry, hi_entry) pieces of levels < top, left to right."""
    left, right = [], []
    lvl = 0
    while p < q and lvl < top:
        nxt = span[lvl + 1]
        p2 = min(-(-p // nxt) * nxt, q)
        q2 = max(q // nxt * nxt, p2)
        if p < p2:
            left.append((lvl, p, p2))
        if q2 < q:
            right.append((lvl, q2, q))
        p, q = p2, q2
        lvl += 1
    if p < q:
        left.append((lvl, p, q))
    return [(lvl, a // span[lvl], -(-b // span[lvl])) for lvl, a, b in left + right[::-1]]


def _piece_extremes(reader: Reader, span: list[int], level: int, lo: int, hi: int):
    mins, maxs, kmin, kmax = _entries(reader, level, span[level], lo, hi)
    i, j = int(np.argmin(mins)), int(np.argmax(maxs))
    return mins[i], int(kmin[i]), maxs[j], int(kmax[j])


def _isnan(v) -> bool:
    return isinstance(v, (float, np.floating)) and v != v


def _combine(b: int, pieces, minv, maxv, mink, maxk) -> None:
    """Merge the scalar extremes of edge pieces into bucket b (keys are positions, so order is kept)."""
    cands_min = [(v, k) for v, k, _, _ in pieces]
    cands_max = [(v, k) for _, _, v, k in pieces]
    if mink[b] >= 0:  # the bucket has an interior
        cands_min.append((minv[b], int(mink[b])))
        cands_max.append((maxv[b], int(maxk[b])))
    minv[b], mink[b] = _pick(cands_min, lambda x, y: x < y)
    maxv[b], maxk[b] = _pick(cands_max, lambda x, y: x > y)


def _pick(cands, better):
    """numpy's argmin/argmax semantics over (value, key) candidates: NaN wins, then ties go to the smallest key."""
    best = None
    for v, k in cands:
        if best is None:
            best = (v, k)
            continue
        bv, bk = best
        if _isnan(bv):
            if _isnan(v) and k < bk:
                best = (v, k)
        elif _isnan(v) or better(v, bv) or (v == bv and k < bk):
            best = (v, k)
    return best
