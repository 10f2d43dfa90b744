"""NEO array storage (services.neo.arrays), measured directly, without HTTP.

    python -m bench.neo_storage [--samples 100000000] [--reads 300] [--overviews 30] [--dir DIR]

Writes a float32 .npy file of `samples` samples (a noisy sine with spikes) to a temporary
directory, then:
  * creates the signal from an NpyStream over that file: write MB/s (timed alone), and in a second
    run the tracemalloc peak and the growth of the process's peak RSS;
  * reads 10,000-sample windows at random offsets through ArrayStore.read, and the same windows with
    raw h5py on an open dataset (the floor): medians;
  * overview(points=2000) of the whole signal: first (cold handle) call and median;
  * a full streamed read (iter_chunks -> iter_npy bytes): MB/s.
Prints human-readable figures and a final JSON line; removes its files.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np

from services.neo.arrays import ArrayStore
from services.neo.npy import NpyStream, iter_npy

WINDOW = 10_000


def _make_npy(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    step = 1 << 22
    with open(path, "wb") as f:
        def chunks():
            for i in range(0, n, step):
                t = np.arange(i, min(i + step, n), dtype=np.float64)
                x = (np.sin(t * 2e-4) * 50 + rng.standard_normal(len(t)) * 5).astype(np.float32)
                spikes = rng.integers(0, len(t), 20)
                x[spikes] += rng.choice([-500.0, 500.0], 20).astype(np.float32)
                yield x
        for part in iter_npy((n,), np.float32, chunks()):
            f.write(part)


def _median_us(values: list[float]) -> float:
    return statistics.median(values) * 1e6


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


class _RssPeak:
    """Samples the resident set size every few ms while in use (Linux /proc; None elsewhere)."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak, self.base = interval, None, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            rss = _rss_bytes()
            if rss is not None:
                self.peak = max(self.peak or 0, rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self.base = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float | None:
        return None if self.base is None or self.peak is None else max(0, self.peak - self.base) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000_000)
    parser.add_argument("--reads", type=int, default=300, help="window reads per series")
    parser.add_argument("--overviews", type=int, default=30, help="overview calls")
    parser.add_argument("--dir", default=None, help="where to put the temporary files (default: system temp)")
    args, _ignored = parser.parse_known_args(argv)
    n = args.samples
    size_mb = 4 * n / 1e6
    rng = np.random.default_rng(1)
    results: dict[str, float | int] = {"samples": n, "megabytes": round(size_mb, 1)}

    with tempfile.TemporaryDirectory(prefix="bench-neo-storage-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        src = tmp / "signal.npy"
        t0 = time.perf_counter()
        _make_npy(src, n)
        print(f"neo storage bench: {n:,} float32 samples ({size_mb:.0f} MB), .npy source written in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        store = ArrayStore(tmp / "data")

        # write, timed alone
        with open(src, "rb") as f:
            t0 = time.perf_counter()
            desc = store.write("analogsignal_1", {"signal": NpyStream(f)})
            write_s = time.perf_counter() - t0
        results["write_mb_s"] = round(size_mb / write_s, 1)
        print(f"  write from NpyStream:     {write_s:6.2f} s  = {size_mb / write_s:7.1f} MB/s "
              f"(file {store.path(desc).stat().st_size / 1e6:.0f} MB incl. pyramid)", flush=True)

        # write again under tracemalloc, sampling the RSS (HDF5's own buffers are not traced)
        with _RssPeak() as rss:
            tracemalloc.start()
            with open(src, "rb") as f:
                t0 = time.perf_counter()
                desc2 = store.write("analogsignal_2", {"signal": NpyStream(f)})
                traced_s = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        store.delete(desc2)
        results["write_tracemalloc_peak_mb"] = round(peak / 1e6, 2)
        results["write_rss_growth_mb"] = None if rss.growth_mb is None else round(rss.growth_mb, 1)
        rss_text = "n/a" if rss.growth_mb is None else f"{rss.growth_mb:.1f} MB"
        print(f"  write memory:             tracemalloc peak {peak / 1e6:.2f} MB "
              f"({100 * peak / (4 * n):.2f}% of the array), peak RSS growth {rss_text} "
              f"(traced run {size_mb / traced_s:.0f} MB/s)", flush=True)

        # window reads: raw h5py with default settings first (HDF5 shares one open file per process,
        # so the store's handles are closed meanwhile), then through the store
        offsets = [int(o) for o in rng.integers(0, n - WINDOW, args.reads)]
        store.close()
        raw = []
        with h5py.File(store.path(desc), "r") as f:
            ds = f["data/signal"]
            for o in offsets:
                t0 = time.perf_counter()
                ds[o:o + WINDOW]
                raw.append(time.perf_counter() - t0)
        store.read(desc, "signal", 0, WINDOW)  # open the handle
        times = []
        for o in offsets[::-1]:
            t0 = time.perf_counter()
            store.read(desc, "signal", o, o + WINDOW)
            times.append(time.perf_counter() - t0)
        results["window_read_us"] = round(_median_us(times), 1)
        results["window_read_raw_h5py_us"] = round(_median_us(raw), 1)
        print(f"  10,000-sample window:     median {_median_us(times):7.1f} us via ArrayStore.read, "
              f"{_median_us(raw):7.1f} us raw h5py (default settings, open dataset)", flush=True)

        # overview of the whole signal
        fresh = ArrayStore(tmp / "data")
        t0 = time.perf_counter()
        ov = fresh.overview(desc, "signal", 0, n, 2000)
        cold = time.perf_counter() - t0
        times = []
        for _ in range(args.overviews):
            t0 = time.perf_counter()
            ov = store.overview(desc, "signal", 0, n, 2000)
            times.append(time.perf_counter() - t0)
        results["overview_2000_ms"] = round(statistics.median(times) * 1e3, 3)
        results["overview_2000_cold_ms"] = round(cold * 1e3, 3)
        print(f"  overview(points=2000):    median {statistics.median(times) * 1e3:7.3f} ms over all {n:,} samples "
              f"(first call with a cold file handle {cold * 1e3:.3f} ms); {ov.buckets} buckets of "
              f"{ov.bucket_samples:.0f} samples", flush=True)
        a = int(rng.integers(0, n // 2))
        times = []
        for _ in range(args.overviews):
            t0 = time.perf_counter()
            store.overview(desc, "signal", a + 7, a + 7 + n // 3, 2000)
            times.append(time.perf_counter() - t0)
        results["overview_2000_unaligned_third_ms"] = round(statistics.median(times) * 1e3, 3)
        print(f"  overview, unaligned 1/3:  median {statistics.median(times) * 1e3:7.3f} ms", flush=True)

        # full streamed read as .npy bytes
        t0 = time.perf_counter()
        total = sum(len(b) for b in iter_npy((n,), np.float32, store.iter_chunks(desc, "signal", chunk_samples=1 << 20)))
        stream_s = time.perf_counter() - t0
        results["stream_npy_mb_s"] = round(total / 1e6 / stream_s, 1)
        print(f"  full read as .npy stream: {stream_s:6.2f} s  = {total / 1e6 / stream_s:7.1f} MB/s", flush=True)
        store.close()
        fresh.close()

    print(json.dumps({"bench": "neo_storage", **results}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
