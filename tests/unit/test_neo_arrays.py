"""services.neo.arrays (+ pyramid): chunked HDF5 storage of NEO array fields."""
from __future__ import annotations

import io
import tracemalloc

import h5py
import numpy as np
import pytest

from services.neo import arrays as arrays_module
from services.neo import pyramid
from services.neo.arrays import ArrayStore, Overview
from services.neo.npy import NpyStream, iter_npy

SMALL = dict(chunk_samples=1000, pyramid_block=8, pyramid_factor=4, pyramid_top=16)


@pytest.fixture
def store(tmp_path):
    s = ArrayStore(tmp_path / "data", **SMALL)
    yield s
    s.close()


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _npy_stream(arr) -> NpyStream:
    buf = io.BytesIO()
    np.save(buf, arr)
    buf.seek(0)
    return NpyStream(buf)


def brute_force(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        seg = x[a:b]
        i, j = int(np.argmin(seg)), int(np.argmax(seg))
        out += [seg[i], seg[j]] if i <= j else [seg[j], seg[i]]
    return np.array(out, dtype=x.dtype)


# ---- round trips ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8", "int64", "float16"])
@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 12_345])
def test_1d_round_trip(store, dtype, n):
    x = (np.random.default_rng(n).standard_normal(n) * 50).astype(dtype)
    desc = store.write("analogsignal_1", {"signal": x})
    info = desc["fields"]["signal"]
    assert info == {"shape": [n], "dtype": dtype, "nbytes": x.nbytes, "sorted": info["sorted"]}
    assert isinstance(info["sorted"], bool)
    assert store.length(desc, "signal") == n
    got = store.read(desc, "signal")
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, x)
    with h5py.File(store.path(desc)) as f:
        ds = f["data/signal"]
        assert ds.compression is None
        if n:
            assert ds.chunks == (min(n, 1000),)


@pytest.mark.parametrize("shape,dtype", [((300, 50), "float32"), ((200, 4, 32), "int16"),
                                         ((7, 3, 1000), "float64"), ((0, 32), "float32"), ((5, 0), "float32")])
def test_nd_round_trip(store, shape, dtype):
    x = (np.random.default_rng(3).standard_normal(shape) * 100).astype(dtype)
    desc = store.write("spike_9", {"waveforms": x})
    info = desc["fields"]["waveforms"]
    assert info == {"shape": list(shape), "dtype": dtype, "nbytes": x.nbytes, "sorted": None}
    np.testing.assert_array_equal(store.read(desc, "waveforms"), x)
    np.testing.assert_array_equal(store.read(desc, "waveforms", 2, 5), x[2:5])
    parts = list(store.iter_chunks(desc, "waveforms", 1, None, chunk_samples=17))
    assert all(p.shape[0] <= 17 for p in parts)
    if shape[0] > 1:
        np.testing.assert_array_equal(np.concatenate(parts), x[1:])


def test_nd_chunks_are_256k_to_1m(tmp_path):
    s = ArrayStore(tmp_path)
    x = np.zeros((20_000, 4, 32), np.float32)  # 512 bytes per spike
    desc = s.write("spiketrain_1", {"waveforms": x, "times": np.arange(20_000, dtype=np.float64)})
    with h5py.File(s.path(desc)) as f:
        chunks = f["data/waveforms"].chunks
        assert chunks[1:] == (4, 32)
        assert 256 * 1024 <= chunks[0] * 512 <= 1024 * 1024
        assert f["data/times"].chunks == (20_000,)


def test_dtypes_kept_and_refused(store, tmp_path):
    big_endian = np.arange(5000, dtype=">f4")
    desc = store.write("analogsignal_2", {"signal": big_endian, "ints": np.arange(5, dtype=np.int32)})
    got = store.read(desc, "signal")
    assert got.dtype == np.float32 and got.dtype.isnative
    np.testing.assert_array_equal(got, big_endian)
    assert desc["fields"]["ints"]["dtype"] == "int32"
    before = _files(store.root)
    for bad in [np.array([1 + 2j]), np.array(["a", "b"]), np.array([{}, None], dtype=object),
                np.array([True, False]), np.array(["2020-01-01"], dtype="datetime64[D]"), np.float32(3.0),
                np.zeros(3, dtype=[("a", "f4")])]:
        with pytest.raises(ValueError):
            store.write("analogsignal_3", {"signal": np.arange(3.0), "bad": bad})
    with pytest.raises(ValueError):
        store.write("analogsignal_3", {"bad/name": np.arange(3.0)})
    for key in ["../etc", "a/b", "", ".hidden"]:
        with pytest.raises(ValueError):
            store.write(key, {"x": np.arange(3.0)})
    assert _files(store.root) == before  # nothing written, no temp file left


def test_strided_and_fortran_arrays(store):
    base = np.arange(30_000, dtype=np.float64)
    f_order = np.asfortranarray(np.arange(6000.0).reshape(2000, 3))
    desc = store.write("analogsignal_4", {"strided": base[::3], "reversed": base[::-1], "f": f_order})
    np.testing.assert_array_equal(store.read(desc, "strided"), base[::3])
    np.testing.assert_array_equal(store.read(desc, "reversed"), base[::-1])
    np.testing.assert_array_equal(store.read(desc, "f"), f_order)
    assert desc["fields"]["strided"]["sorted"] is True and desc["fields"]["reversed"]["sorted"] is False
    ov = store.overview(desc, "reversed", 0, 10_000, 10)
    np.testing.assert_array_equal(ov.values, brute_force(base[::-1], ov.edges))


def test_concurrent_readers(store):
    import threading

    x, _ = _spiky(300_000, 20)
    desc = store.write("analogsignal_4", {"signal": x})
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(30):
                a = int(rng.integers(0, 290_000))
                np.testing.assert_array_equal(store.read(desc, "signal", a, a + 10_000), x[a:a + 10_000])
                ov = store.overview(desc, "signal", a, 300_000, 50)
                np.testing.assert_array_equal(ov.values, brute_force(x, ov.edges))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_stale_temp_files_removed(store):
    import os

    desc = store.write("analogsignal_4", {"signal": np.arange(10.0)})
    directory = store.path(desc).parent
    stale, fresh = directory / ".analogsignal_4.dead.h5.tmp", directory / ".analogsignal_4.live.h5.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (1, 1))
    assert store.remove_stale_temp_files(older_than=600) == 1
    assert not stale.exists() and fresh.exists() and store.path(desc).exists()


def test_windows_and_edges(store):
    x = np.arange(10_000, dtype=np.float32)
    desc = store.write("analogsignal_4", {"signal": x})
    for start, stop in [(0, 1), (0, 10_000), (998, 1002), (999, 1000), (1000, 1001), (1999, 4001),
                        (9_999, 10_000), (9_990, 20_000), (5, None), (500, 400), (10_000, 10_001), (-5, 3)]:
        expected = x[max(0, start):stop] if stop is None or stop >= max(0, start) else x[:0]
        np.testing.assert_array_equal(store.read(desc, "signal", start, stop), expected)
    chunks = list(store.iter_chunks(desc, "signal", 1500, 4100))
    assert [len(c) for c in chunks] == [1000, 1000, 600]
    np.testing.assert_array_equal(np.concatenate(chunks), x[1500:4100])
    assert list(store.iter_chunks(desc, "signal", 50, 50)) == []
    with pytest.raises(KeyError):
        store.read(desc, "nope")
    with pytest.raises(KeyError):
        store.iter_chunks(desc, "nope")  # checked at the call, before any response starts
    with pytest.raises(ValueError):
        store.iter_chunks(desc, "signal", chunk_samples=0)


def test_empty_fields(store):
    desc = store.write("spiketrain_5", {"times": np.empty(0), "waveforms": np.empty((0, 2, 30), np.float32)})
    assert store.read(desc, "times").shape == (0,)
    assert store.read(desc, "waveforms", 0, 10).shape == (0, 2, 30)
    assert desc["fields"]["times"]["sorted"] is True
    assert store.searchsorted(desc, "times", 1.0) == 0
    ov = store.overview(desc, "times", 0, 0, 100)
    assert ov.values.shape == (0,) and ov.method == "raw"
    assert list(store.iter_chunks(desc, "waveforms")) == []


def test_npy_stream_source(store):
    x = np.random.default_rng(5).standard_normal(25_000).astype(np.float32)
    w = np.random.default_rng(6).standard_normal((120, 3, 40)).astype(np.float64)
    desc = store.write("spiketrain_6", {"signal": _npy_stream(x), "waveforms": _npy_stream(w),
                                        "empty": _npy_stream(np.empty(0, np.int16))})
    np.testing.assert_array_equal(store.read(desc, "signal"), x)
    np.testing.assert_array_equal(store.read(desc, "waveforms"), w)
    assert desc["fields"]["empty"] == {"shape": [0], "dtype": "int16", "nbytes": 0, "sorted": True}


def test_failed_write_leaves_nothing(store):
    old = store.write("analogsignal_7", {"signal": np.arange(5000.0)})
    before = _files(store.root)
    buf = io.BytesIO()
    np.save(buf, np.arange(50_000.0))
    truncated = io.BytesIO(buf.getvalue()[:-1000])
    with pytest.raises(ValueError, match="truncated"):
        store.write("analogsignal_7", {"signal": NpyStream(truncated)})
    assert _files(store.root) == before
    np.testing.assert_array_equal(store.read(old, "signal"), np.arange(5000.0))


# ---- versions ---------------------------------------------------------------------------------

def test_new_version_is_a_new_file_old_stays_readable(store):
    v1 = store.write("analogsignal_8", {"signal": np.arange(3000, dtype=np.float32)})
    first = store.read(v1, "signal", 0, 10)  # the old file is open in the handle cache now
    v2 = store.write("analogsignal_8", {"signal": -np.arange(4000, dtype=np.float32)})
    assert v1["file"] != v2["file"]
    assert v1["file"].split("/")[:2] == v2["file"].split("/")[:2]  # same fan-out directory
    assert all(len(part) == 2 for part in v1["file"].split("/")[:2])
    assert not [p for p in _files(store.root) if p.endswith(".tmp")]
    np.testing.assert_array_equal(first, np.arange(10))
    np.testing.assert_array_equal(store.read(v1, "signal"), np.arange(3000, dtype=np.float32))
    np.testing.assert_array_equal(store.read(v2, "signal"), -np.arange(4000, dtype=np.float32))
    fresh = ArrayStore(store.root, **SMALL)  # another process
    np.testing.assert_array_equal(fresh.read(v1, "signal", 2990), np.arange(2990, 3000, dtype=np.float32))
    store.delete(v1)
    store.delete(v1)  # missing is fine
    with pytest.raises(FileNotFoundError):
        store.read(v1, "signal")
    np.testing.assert_array_equal(fresh.read(v1, "signal", 0, 3), [0, 1, 2])  # an open reader is undisturbed
    np.testing.assert_array_equal(store.read(v2, "signal", 0, 3), [0, -1, -2])


def test_copy_fields(store):
    times = np.sort(np.random.default_rng(7).uniform(0, 100, 7000))
    w1 = np.random.default_rng(8).standard_normal((7000, 2, 8)).astype(np.float32)
    v1 = store.write("spiketrain_9", {"times": times, "waveforms": w1})
    np.testing.assert_array_equal(store.read(v1, "times", 0, 5), times[:5])  # v1 open for reading
    w2 = np.ones((7000, 2, 8), np.float32)
    v2 = store.copy_fields("spiketrain_9", v1, ["times"], {"waveforms": _npy_stream(w2)})
    assert v2["file"] != v1["file"]
    assert v2["fields"]["times"] == v1["fields"]["times"]
    np.testing.assert_array_equal(store.read(v2, "times"), times)
    np.testing.assert_array_equal(store.read(v2, "waveforms"), w2)
    np.testing.assert_array_equal(store.read(v1, "waveforms"), w1)
    # the pyramid came along: overview of the kept field matches brute force
    ov = store.overview(v2, "times", 0, 7000, 100)
    np.testing.assert_array_equal(ov.values, brute_force(times, ov.edges))
    with h5py.File(store.path(v2)) as f:
        assert "pyramid/times/1" in f and f["data/times"].chunks == (1000,)
    assert store.searchsorted(v2, "times", 50.0) == np.searchsorted(times, 50.0)
    v3 = store.copy_fields("spiketrain_9", v2, [], {"times": times[:10]})
    assert set(v3["fields"]) == {"times"}
    with pytest.raises(ValueError, match="both kept and replaced"):
        store.copy_fields("spiketrain_9", v1, ["times"], {"times": times})
    with pytest.raises(KeyError):
        store.copy_fields("spiketrain_9", v1, ["nope"], {})


def test_path_refuses_escape(store):
    for bad in ["../x.h5", "/etc/passwd", ""]:
        with pytest.raises(ValueError):
            store.path({"file": bad, "fields": {}})


# ---- pyramid and overview ---------------------------------------------------------------------

def _spiky(n, seed, dtype=np.float32, spikes=40):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 10).astype(dtype)
    pos = rng.choice(n, size=spikes, replace=False)
    big = np.iinfo(dtype).max // 2 if np.dtype(dtype).kind == "i" else 1e6
    x[pos[: spikes // 2]] = big
    x[pos[spikes // 2:]] = -big
    return x, np.sort(pos)


def test_pyramid_levels_match_brute_force(tmp_path):
    n = 100_003
    x, _ = _spiky(n, 11)
    s = ArrayStore(tmp_path, **SMALL)
    desc = s.write("analogsignal_10", {"signal": x})
    with h5py.File(s.path(desc)) as f:
        group = f["pyramid/signal"]
        levels = int(group.attrs["levels"])
        assert levels == len(pyramid.level_sizes(n, 8, 4, 16)) == 6
        for lvl in range(1, levels + 1):
            pairs = group[str(lvl)][()]
            span = 8 * 4 ** (lvl - 1)
            expected = np.array([brute_force(x[i:i + span], np.array([0, len(x[i:i + span])]))
                                 for i in range(0, n, span)])
            np.testing.assert_array_equal(pairs, expected)
        assert len(group[str(levels)]) < 16 <= len(group[str(levels - 1)])


def test_pyramid_builder_is_independent_of_chunking():
    rng = np.random.default_rng(12)
    x = rng.standard_normal(50_000).astype(np.float32)
    sizes = pyramid.level_sizes(len(x), 16, 4, 8)

    def build(pieces):
        outs = [np.zeros((m, 2), np.float32) for m in sizes]
        b = pyramid.PyramidBuilder(outs, block=16, factor=4, dtype=np.float32, flush_entries=100)
        for p in pieces:
            b.feed(p)
        assert b.finish() == sizes
        return outs

    whole = build([x])
    cuts = np.sort(rng.choice(len(x), 60, replace=False))
    for a, b in zip(whole, build(np.split(x, cuts))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_overview_matches_brute_force(tmp_path, dtype):
    n = 200_017
    x, spikes = _spiky(n, 13, dtype)
    windows = [(0, n), (0, 131_072), (8192, 8192 * 20), (3, n - 5), (12_345, 190_001), (777, 5_777),
               (100, 3_100), (n - 40_000, n), (5_000, 5_000 + 2 * 512 * 8 * 4 + 3), (9, n - 1)]
    # spikes in the unaligned edge pieces of the windows, which are read at the finer levels
    big = np.iinfo(dtype).max // 3 if np.dtype(dtype).kind == "i" else 2e6
    edge_spikes = [p for a, b in windows for p in (a + 1, b - 2)]
    x[edge_spikes[0::2]] = big
    x[edge_spikes[1::2]] = -big
    spikes = np.union1d(spikes, edge_spikes)
    s = ArrayStore(tmp_path, **SMALL)
    desc = s.write("analogsignal_11", {"signal": x})
    for start, stop in windows:
        for points in (2, 3, 11, 100, 2000, 20_000):
            ov = s.overview(desc, "signal", start, stop, points)
            assert isinstance(ov, Overview)
            if stop - start <= points:
                assert ov.method == "raw"
                np.testing.assert_array_equal(ov.values, x[start:stop])
                continue
            nb = points // 2 if points > 1 else 1
            assert ov.method == "minmax" and ov.buckets == nb and len(ov.values) == 2 * nb
            assert ov.bucket_samples == pytest.approx((stop - start) / nb)
            e = ov.edges
            assert e[0] == start and e[-1] == stop and np.all(np.diff(e) > 0)
            assert np.all(np.abs(np.diff(e) - ov.bucket_samples) <= ov.bucket_samples / 8 + 1)
            assert ov.values.dtype == x.dtype
            np.testing.assert_array_equal(ov.values, brute_force(x, e), err_msg=f"{start}:{stop} {points}")
            # every planted spike shows up in its bucket (as that bucket's peak, or a bigger one there)
            inside = spikes[(spikes >= start) & (spikes < stop)]
            bucket = np.searchsorted(e, inside, side="right") - 1
            for b, p in zip(bucket, inside):
                pair = ov.values[2 * b:2 * b + 2]
                assert (pair.max() >= x[p]) if x[p] > 0 else (pair.min() <= x[p]), (start, stop, points, p)
            assert set(x[spikes[(spikes >= start) & (spikes < stop)]].tolist()) & set(ov.values.tolist())


def test_overview_small_array_exact_edges(store):
    x = np.random.default_rng(14).standard_normal(71).astype(np.float64)
    desc = store.write("analogsignal_12", {"signal": x})
    ov = store.overview(desc, "signal", 0, 71, 10)
    assert ov.buckets == 5 and len(ov.values) == 10
    np.testing.assert_array_equal(ov.edges, (np.arange(6) * 71) // 5)
    np.testing.assert_array_equal(ov.values, brute_force(x, ov.edges))
    with pytest.raises(ValueError):
        store.overview(desc, "signal", 0, 71, 0)
    w = store.write("spike_1", {"waveforms": np.zeros((3, 4))})
    with pytest.raises(ValueError):
        store.overview(w, "waveforms", 0, 3, 2)


def test_overview_in_bounded_groups(store, monkeypatch):
    """Long windows are reduced a group of buckets at a time; the result does not depend on it."""
    x, _ = _spiky(50_000, 19, np.float64)
    desc = store.write("analogsignal_13", {"signal": x})
    expected = [store.overview(desc, "signal", a, b, p) for a, b, p in [(0, 50_000, 5000), (3, 3999, 300), (1, 49_999, 40)]]
    monkeypatch.setattr(pyramid, "GROUP_ENTRIES", 37)
    for (a, b, p), ov in zip([(0, 50_000, 5000), (3, 3999, 300), (1, 49_999, 40)], expected):
        again = store.overview(desc, "signal", a, b, p)
        np.testing.assert_array_equal(again.values, ov.values)
        np.testing.assert_array_equal(again.values, brute_force(x, again.edges))


def test_overview_nan_like_numpy(store):
    x = np.random.default_rng(15).standard_normal(30_000)
    x[[10, 12_345, 12_346, 29_999]] = np.nan
    desc = store.write("analogsignal_13", {"signal": x})
    for start, stop, points in [(0, 30_000, 100), (7, 29_993, 38), (5, 20_000, 1000)]:
        ov = store.overview(desc, "signal", start, stop, points)
        np.testing.assert_array_equal(ov.values, brute_force(x, ov.edges))


class RecordingReader:
    def __init__(self, x, outs):
        self.x, self.outs, self.read = x, outs, {}

    def __call__(self, level, lo, hi):
        self.read[level] = self.read.get(level, 0) + (hi - lo)
        return self.x[lo:hi] if level == 0 else self.outs[level - 1][lo:hi]


def test_overview_cost_is_proportional_to_points():
    """Through the pyramid, a huge window reads O(points) entries and raw samples only at its edges."""
    n, block, factor = 20_000_000, 64, 16
    rng = np.random.default_rng(16)
    x = rng.standard_normal(n).astype(np.float32)
    sizes = pyramid.level_sizes(n, block, factor, 4096)
    outs = [np.zeros((m, 2), np.float32) for m in sizes]
    builder = pyramid.PyramidBuilder(outs, block=block, factor=factor, dtype=np.float32)
    for i in range(0, n, 1 << 20):
        builder.feed(x[i:i + (1 << 20)])
    builder.finish()
    for start, stop, points in [(0, n, 2000), (1234, n - 4321, 2000), (999_999, 19_000_001, 500), (17, n, 20_000)]:
        reader = RecordingReader(x, outs)
        ov = pyramid.overview(reader, n, start, stop, points, dtype=np.float32, block=block, factor=factor,
                              levels=len(outs), raw_limit=1 << 18)
        total = sum(reader.read.values())
        assert reader.read.get(0, 0) < 2 * block, reader.read
        assert total <= pyramid.GRID_RATIO * factor * points + 2 * block + 2 * factor * len(outs), reader.read
        np.testing.assert_array_equal(ov.values, brute_force(x, ov.edges))


# ---- searchsorted -----------------------------------------------------------------------------

class CountingDataset:
    def __init__(self, ds):
        self.ds, self.elements, self.calls = ds, 0, 0
        self.chunks = ds.chunks

    def __getitem__(self, item):
        out = self.ds[item]
        self.calls += 1
        self.elements += np.size(out)
        return out


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.float32])
def test_searchsorted_matches_numpy(store, monkeypatch, dtype):
    rng = np.random.default_rng(17)
    times = np.sort(rng.integers(0, 50_000, 123_457)).astype(dtype)
    desc = store.write("spiketrain_14", {"times": times})
    assert desc["fields"]["times"]["sorted"] is True
    counting = CountingDataset(store._dataset(desc, "times"))
    monkeypatch.setattr(store, "_dataset", lambda d, f: counting)
    probes = [-1.0, 0, 0.5, 17, 17.25, 25_000, 49_999, 50_000, 1e12, float(times[0]), float(times[-1]),
              float(times[61_000]), float("nan")]
    for value in probes:
        for side in ("left", "right"):
            counting.elements = counting.calls = 0
            assert store.searchsorted(desc, "times", value, side) == np.searchsorted(times, value, side=side), (value, side)
            assert counting.elements <= 1000 + 20 and counting.calls <= 20


def test_searchsorted_long_runs_of_equal_values(store):
    times = np.repeat(np.arange(40.0), 2_500)  # runs longer than a chunk
    desc = store.write("spiketrain_14", {"times": times})
    for value in (-1, 0, 0.5, 7, 19, 19.5, 39, 40):
        for side in ("left", "right"):
            assert store.searchsorted(desc, "times", value, side) == np.searchsorted(times, value, side=side), (value, side)


def test_searchsorted_refuses_unsorted(store, monkeypatch):
    unsorted = np.arange(5000.0)
    unsorted[4000] = -1
    desc = store.write("spiketrain_15", {"a": unsorted, "b": np.array([0.0, np.nan]), "c": np.array([np.nan]),
                                         "w": np.zeros((3, 2)), "d": np.array([1, 1, 2, 3])})
    assert desc["fields"]["a"]["sorted"] is False
    assert desc["fields"]["b"]["sorted"] is False
    assert desc["fields"]["c"]["sorted"] is False
    assert desc["fields"]["w"]["sorted"] is None
    assert desc["fields"]["d"]["sorted"] is True
    for field in ("a", "b", "w"):
        with pytest.raises(ValueError):
            store.searchsorted(desc, field, 3.0)
    # an unsorted step exactly at a streaming piece boundary is seen too
    monkeypatch.setattr(arrays_module, "WRITE_BYTES", 8 * 1000)
    y = np.concatenate([np.arange(3000.0), np.arange(3000.0)])
    assert store.write("spiketrain_16", {"t": y})["fields"]["t"]["sorted"] is False
    assert store.write("spiketrain_16", {"t": np.sort(y)})["fields"]["t"]["sorted"] is True


# ---- streaming in big arrays ------------------------------------------------------------------

def test_large_npy_write_streams_in_bounded_memory(tmp_path):
    n = 20_000_000
    src = tmp_path / "signal.npy"
    rng = np.random.default_rng(18)
    with open(src, "wb") as f:
        chunks = (rng.standard_normal(min(1 << 20, n - i), dtype=np.float32) for i in range(0, n, 1 << 20))
        for part in iter_npy((n,), np.float32, chunks):
            f.write(part)
    s = ArrayStore(tmp_path / "data")
    tracemalloc.start()
    try:
        with open(src, "rb") as f:
            desc = s.write("analogsignal_17", {"signal": NpyStream(f)})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert desc["fields"]["signal"]["nbytes"] == 4 * n
    assert peak < 4 * n / 5, f"peak {peak / 1e6:.1f} MB for an {4 * n / 1e6:.0f} MB array"
    x = np.load(src, mmap_mode="r")
    for a, b in [(0, 10_000), (65_530, 65_540), (n - 10_000, n)]:
        np.testing.assert_array_equal(s.read(desc, "signal", a, b), x[a:b])
    ov = s.overview(desc, "signal", 0, n, 2000)
    e = ov.edges
    assert ov.values.min() == x.min() and ov.values.max() == x.max()
    np.testing.assert_array_equal(ov.values[:20], brute_force(np.asarray(x[:e[10]]), e[:11]))
    s.close()


def test_take_reads_the_given_rows_in_bounded_point_selections(store, monkeypatch):
    x = np.arange(10_000, dtype=np.float32) * 2
    desc = store.write("take_a", {"x": x, "w": np.arange(300).reshape(100, 3)})
    reads = []
    original = h5py.Dataset.__getitem__

    def spy(self, selection):
        data = original(self, selection)
        reads.append(len(data))
        return data

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    picks = np.array([9_999, 0, 17, 17, 5_000])  # any order, repeats
    np.testing.assert_array_equal(store.take(desc, "x", picks), x[picks])
    reads.clear()
    many = np.arange(0, 10_000, 3)
    np.testing.assert_array_equal(store.take(desc, "x", many, batch=500), x[many])
    assert max(reads) == 500 and sum(reads) == len(many)
    np.testing.assert_array_equal(store.take(desc, "w", [99, 1]), [[297, 298, 299], [3, 4, 5]])
    assert store.take(desc, "x", []).shape == (0,)
    for outside in ([10_000], [-1]):
        with pytest.raises(IndexError):
            store.take(desc, "x", outside)
