"""NEO service end to end: a large analogsignal created and read through the gateway.

    python -m bench neo   (or python -m bench.neo [--samples 100000000] [--small 1000000] [--reads 20] ...)

Starts the whole system (stack.system.System: SecantusDB unless MONGO_URL is set, RabbitMQ check,
every built service, the gateway) in a temporary var dir, on free ports, with its own
MONGO_DB_PREFIX and EVENT_EXCHANGE; registers and logs in a user through the gateway. Then:

  * creates a float32 analogsignal of `samples` samples (100 M = 400 MB) through the binary path:
    multipart (`json` part + `signal` .npy part) streamed from a file on disk with a
    Content-Length; time, MB/s, and the memory growth of the neo service's gunicorn workers
    (RSS sampled every 20 ms from /proc, plus VmHWM before/after);
  * reads 10,000-sample windows through the gateway (JSON and `format=npy`) at a few positions
    across the signal, and the same on a signal of `small` samples: median, p90, ratio big/small;
  * `downsample=2000` over the whole signal: median;
  * the whole signal as .npy (streamed from the HDF5 chunks: MB/s and the neo workers' RSS growth)
    and as JSON (refused from its stored shape: time and RSS growth);
  * the same windows read directly with h5py from the signal's HDF5 file (the floor).

Prints each figure with its target and PASS/MISS, then one final JSON line. Stops everything it
started and removes its files, databases and exchange.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import requests

WINDOW = 10_000
DOWNSAMPLE = 2000
MB = 1e6

TARGET_CREATE_MB_S = 100.0
TARGET_CREATE_MEMORY_X = 2.0  # peak memory growth below this many times the array size
TARGET_NPY_WINDOW_MS = 10.0
TARGET_RATIO = 1.5
TARGET_DOWNSAMPLE_MS = 50.0
TARGET_WHOLE_READ_MEMORY_X = 0.1  # neo worker RSS growth while the whole signal is read, to the array size


# --- the source file ------------------------------------------------------------------------------

def make_npy(path: Path, n: int, seed: int = 0) -> None:
    """A float32 .npy file of n samples (a noisy sine with spikes), written in 16 MB pieces."""
    from services.neo.npy import iter_npy

    rng = np.random.default_rng(seed)
    step = 1 << 22

    def chunks():
        for i in range(0, n, step):
            t = np.arange(i, min(i + step, n), dtype=np.float32)
            x = np.sin(t * np.float32(2e-4)) * np.float32(50)
            x += rng.standard_normal(len(t), dtype=np.float32) * np.float32(5)
            spikes = rng.integers(0, len(t), 20)
            x[spikes] += rng.choice([-500.0, 500.0], 20).astype(np.float32)
            yield x

    with open(path, "wb") as f:
        for part in iter_npy((n,), np.float32, chunks()):
            f.write(part)


class MultipartFile:
    """A multipart/form-data body: small fields in memory, one file part streamed from disk.

    Iterable with a length, so requests sends it with a Content-Length (not chunked) and urllib3
    writes it piece by piece: the body is never held in memory."""

    def __init__(self, fields: dict[str, tuple[bytes, str]], file_field: str, path: Path,
                 *, filename: str | None = None, content_type: str = "application/octet-stream",
                 chunk_bytes: int = 1 << 20):
        self.boundary = f"bench-{uuid.uuid4().hex}"
        self.path, self.chunk_bytes = path, chunk_bytes
        b = self.boundary.encode()
        head = b""
        for name, (value, ctype) in fields.items():
            head += (b"--" + b + b"\r\nContent-Disposition: form-data; name=\"" + name.encode() + b"\"\r\n"
                     b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + value + b"\r\n")
        head += (b"--" + b + b"\r\nContent-Disposition: form-data; name=\"" + file_field.encode() + b"\"; "
                 b"filename=\"" + (filename or path.name).encode() + b"\"\r\n"
                 b"Content-Type: " + content_type.encode() + b"\r\n\r\n")
        self.head, self.tail = head, b"\r\n--" + b + b"--\r\n"
        self.file_size = path.stat().st_size
        self.sent_at: float | None = None  # perf_counter() when the last piece was handed to the socket

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.head) + self.file_size + len(self.tail)

    def __iter__(self):
        yield self.head
        with open(self.path, "rb") as f:
            while True:
                data = f.read(self.chunk_bytes)
                if not data:
                    break
                yield data
        yield self.tail
        self.sent_at = time.perf_counter()


# --- memory of the service's worker processes -------------------------------------------------------

def child_pids(parent: int) -> list[int]:
    """Processes whose parent is `parent` (the gunicorn workers of a master)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == parent:
            pids.append(int(entry))
    return sorted(pids)


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes ({} when it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        return {}
    return out


class MemorySampler:
    """RSS of some processes sampled every `interval` s in a background thread; VmHWM before/after."""

    def __init__(self, pids: list[int], interval: float = 0.02):
        self.pids, self.interval = pids, interval
        self.before = {pid: proc_memory(pid) for pid in pids}
        self.peak = {pid: m.get("VmRSS", 0) for pid, m in self.before.items()}
        self.after: dict[int, dict[str, int]] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                rss = proc_memory(pid).get("VmRSS")
                if rss is not None and rss > self.peak[pid]:
                    self.peak[pid] = rss
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.after = {pid: proc_memory(pid) for pid in self.pids}

    def report(self) -> dict:
        """The worker that grew most: its RSS growth (sampled peak - baseline) and VmHWM figures."""
        rows = []
        for pid in self.pids:
            base = self.before[pid].get("VmRSS", 0)
            rows.append({
                "pid": pid,
                "rss_before_mb": round(base / MB, 1),
                "rss_peak_growth_mb": round((self.peak[pid] - base) / MB, 1),
                "rss_after_mb": round(self.after.get(pid, {}).get("VmRSS", 0) / MB, 1),
                "hwm_before_mb": round(self.before[pid].get("VmHWM", 0) / MB, 1),
                "hwm_after_mb": round(self.after.get(pid, {}).get("VmHWM", 0) / MB, 1),
                # VmHWM cannot be reset: the growth it shows is only a lower bound when the old
                # high-water mark was above the baseline RSS
                "hwm_growth_over_baseline_mb": round(
                    max(0, self.after.get(pid, {}).get("VmHWM", 0) - base) / MB, 1),
            })
        worst = max(rows, key=lambda r: (r["rss_peak_growth_mb"], r["hwm_growth_over_baseline_mb"]))
        return {"worst": worst, "workers": rows, "samples": self.samples}


# --- helpers --------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def stats_ms(values: list[float]) -> dict:
    return {"median_ms": round(statistics.median(values) * 1e3, 3), "p90_ms": round(percentile(values, 90) * 1e3, 3),
            "n": len(values)}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def service_duration_ms(log_path: Path, method: str, path_prefix: str) -> float | None:
    """duration_ms of the last access-log line of that method and path in a JSON service log."""
    found = None
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("method") == method and str(entry.get("path", "")).startswith(path_prefix) \
                and "duration_ms" in entry:
            found = entry["duration_ms"]
    return found



def stop_system(system, *, external_mongo: str | None, db_prefix: str, exchange: str) -> None:
    """Stop a bench's system and remove what it left in a shared MongoDB and RabbitMQ; a failing
    cleanup is printed, never raised (it must not hide the bench's own error)."""
    import pymongo

    amqp_url = system.amqp_url
    system.stop()
    if external_mongo:
        try:
            client = pymongo.MongoClient(external_mongo, serverSelectionTimeoutMS=5000)
            for name in client.list_database_names():
                if name.startswith(db_prefix):
                    client.drop_database(name)
            client.close()
        except Exception as exc:
            print(f"  could not drop the {db_prefix}* databases: {exc}", flush=True)
    if amqp_url:
        try:
            system.delete_broker_topology(exchange)
        except Exception as exc:
            print(f"  could not delete the exchange {exchange}: {exc}", flush=True)

def register_and_login(gateway: str) -> requests.Session:
    name = f"bench{uuid.uuid4().hex[:10]}"
    password = "a long enough bench password"
    session = requests.Session()
    session.trust_env = False
    r = session.post(f"{gateway}/account/register/", json={"username": name, "email": f"{name}@example.org",
                                                           "password": password})
    if r.status_code != 201:
        raise RuntimeError(f"register: HTTP {r.status_code}: {r.text[:300]}")
    r = session.post(f"{gateway}/account/authenticate/", data={"username": name, "password": password})
    if r.status_code != 200:
        raise RuntimeError(f"login: HTTP {r.status_code}: {r.text[:300]}")
    session.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return session


def create_signal(session: requests.Session, gateway: str, src: Path, name: str) -> tuple[dict, float, float]:
    """(the created object, seconds until the response, seconds until the body was sent)."""
    meta = {"name": name, "sampling_rate": {"units": "Hz", "data": 20000.0},
            "t_start": {"units": "s", "data": 0.0}, "signal": {"units": "mV"}}
    body = MultipartFile({"json": (json.dumps(meta).encode(), "application/json")}, "signal", src,
                         filename="signal.npy")
    t0 = time.perf_counter()
    r = session.post(f"{gateway}/electrophysiology/analogsignal/", data=body,
                     headers={"Content-Type": body.content_type})
    elapsed = time.perf_counter() - t0
    if r.status_code != 201:
        raise RuntimeError(f"create: HTTP {r.status_code}: {r.text[:500]}")
    return r.json(), elapsed, (body.sent_at or t0 + elapsed) - t0


def window_positions(n: int, count: int) -> list[int]:
    return sorted({int(p) for p in np.linspace(0, n - WINDOW, count)})


def read_windows(session: requests.Session, gateway: str, signals: dict[str, tuple[str, list[int], np.ndarray]],
                 reps: int) -> dict[str, dict[str, list[float]]]:
    """Time 10,000-sample window reads in JSON and npy, round-robin over signals, positions and formats
    (so that no signal or format is favoured by when it is measured); plus `q=info` (no array read:
    the fixed cost of a request through the gateway and the service) for reference.

    signals: label -> (neo_id, positions, expected data). Returns label -> format -> seconds."""
    urls: list[tuple[str, str, str]] = []
    for label, (neo_id, positions, expected) in signals.items():
        base = f"{gateway}/electrophysiology/analogsignal/{neo_id}/"
        for p in positions:
            window = f"{base}?start_index={p}&samples_count={WINDOW}"
            want = np.asarray(expected[p:p + WINDOW])
            r = session.get(window)  # check once per position (and warm up handles and connections)
            r.raise_for_status()
            if not np.array_equal(np.asarray(r.json()["signal"]["data"], dtype=np.float32), want):
                raise RuntimeError(f"JSON window at {p} of {neo_id} differs from the source")
            r = session.get(window + "&format=npy")
            r.raise_for_status()
            if not np.array_equal(np.load(io.BytesIO(r.content)), want):
                raise RuntimeError(f"npy window at {p} of {neo_id} differs from the source")
            urls += [(label, "json", window), (label, "npy", window + "&format=npy")]
        urls.append((label, "info", f"{base}?q=info"))
    times: dict[str, dict[str, list[float]]] = {label: {"json": [], "npy": [], "info": []} for label in signals}
    for _ in range(reps):
        for label, fmt, url in urls:
            t0 = time.perf_counter()
            r = session.get(url)
            _ = r.content
            times[label][fmt].append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {r.status_code}: {r.text[:200]}")
    return times


def h5_file(data_dir: Path, samples: int) -> Path:
    """The stored signal with `samples` values (files are named by type and a random suffix)."""
    import h5py

    found = []
    for path in sorted(data_dir.glob("*/*/analogsignal_*.h5")):
        with h5py.File(path, "r") as f:
            if "data/signal" in f and f["data/signal"].shape[0] == samples:
                found.append(path)
    if len(found) != 1:
        raise RuntimeError(f"expected one HDF5 file with {samples} samples under {data_dir}, found {found}")
    return found[0]


def h5_floor(path: Path, positions: list[int], reps: int) -> dict[str, dict]:
    """Window reads with raw h5py on an open dataset: default chunk cache, and none (as the service)."""
    import h5py

    out = {}
    for label, kwargs in (("default", {}), ("no_chunk_cache", {"rdcc_nbytes": 0})):
        with h5py.File(path, "r", **kwargs) as f:
            ds = f["data/signal"]
            for p in positions:
                ds[p:p + WINDOW]
            times = []
            for _ in range(reps):
                for p in positions:
                    t0 = time.perf_counter()
                    ds[p:p + WINDOW]
                    times.append(time.perf_counter() - t0)
        out[label] = stats_ms(times)
    return out


def time_downsample(session: requests.Session, gateway: str, neo_id: str, reps: int) -> dict[str, dict]:
    base = f"{gateway}/electrophysiology/analogsignal/{neo_id}/?downsample={DOWNSAMPLE}"
    out = {}
    for fmt, url in (("json", base), ("npy", base + "&format=npy")):
        r = session.get(url)
        r.raise_for_status()
        info = r.json()["downsample"] if fmt == "json" else json.loads(r.headers.get("X-Neo-Downsample", "{}"))
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            r = session.get(url)
            _ = r.content
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
        out[fmt] = {**stats_ms(times), "points": info.get("points"), "method": info.get("method")}
    return out


def whole_signal_reads(session: requests.Session, gateway: str, neo_id: str, neo_pids: list[int],
                       expected_bytes: int) -> dict:
    """The whole signal as .npy (streamed: MB/s, the neo workers' RSS growth) and as JSON (refused
    from its shape before anything is read: time, RSS growth)."""
    url = f"{gateway}/electrophysiology/analogsignal/{neo_id}/"
    with MemorySampler(neo_pids) as npy_mem:
        t0 = time.perf_counter()
        r = session.get(url, params={"format": "npy"}, stream=True)
        received = sum(len(piece) for piece in r.iter_content(1 << 20))
        npy_s = time.perf_counter() - t0
    if r.status_code != 200 or received != expected_bytes or int(r.headers.get("Content-Length", -1)) != received:
        raise RuntimeError(f"npy download: HTTP {r.status_code}, {received} bytes, Content-Length "
                           f"{r.headers.get('Content-Length')}, expected {expected_bytes}")
    with MemorySampler(neo_pids) as json_mem:
        t0 = time.perf_counter()
        r = session.get(url, params={"q": "data"})
        json_s = time.perf_counter() - t0
    if r.status_code != 400 or r.json().get("message_type") != "too_large_for_json":
        raise RuntimeError(f"whole JSON read: HTTP {r.status_code}: {r.text[:300]}")
    return {"npy": {"seconds": round(npy_s, 3), "mb_s": round(received / MB / npy_s, 1), "bytes": received,
                    "rss_peak_growth_mb": npy_mem.report()["worst"]["rss_peak_growth_mb"]},
            "json_refused": {"ms": round(json_s * 1e3, 2),
                             "rss_peak_growth_mb": json_mem.report()["worst"]["rss_peak_growth_mb"]}}


# --- main -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000_000, help="samples of the large signal")
    parser.add_argument("--small", type=int, default=1_000_000, help="samples of the small signal")
    parser.add_argument("--positions", type=int, default=5, help="window positions across each signal")
    parser.add_argument("--reads", type=int, default=30, help="reads per position and format")
    parser.add_argument("--downsamples", type=int, default=20, help="timed downsample requests per format")
    parser.add_argument("--dir", default=None, help="where to put the temporary files (default: system temp)")
    # parse_known_args: `python -m bench neo` calls main() with the runner's own arguments
    args, _ignored = parser.parse_known_args(argv)

    import pymongo

    from stack.procs import free_port
    from stack.system import System

    n, n_small = args.samples, args.small
    size_mb = 4 * n / MB
    tag = uuid.uuid4().hex[:10]
    exchange, db_prefix = f"gnode.bench.{tag}", f"gnode_bench_{tag}_"
    external_mongo = os.environ.get("MONGO_URL") or None
    results: dict = {"bench": "neo", "cpus": os.cpu_count(), "samples": n, "small_samples": n_small,
                     "megabytes": round(size_mb, 1), "window": WINDOW}
    began = time.perf_counter()
    system = None
    with tempfile.TemporaryDirectory(prefix="bench-neo-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        try:
            load = os.getloadavg()[0]  # before this bench adds its own: other work sharing the CPUs
            results["loadavg_1min_at_start"] = round(load, 2)
            t0 = time.perf_counter()
            big_src, small_src = tmp / "big.npy", tmp / "small.npy"
            make_npy(big_src, n, seed=0)
            make_npy(small_src, n_small, seed=1)
            print(f"neo bench: {os.cpu_count()} CPUs (1-min load average before the bench: {load:.2f}); {n:,} float32 "
                  f"samples ({size_mb:.0f} MB) and {n_small:,} samples; .npy sources written in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)

            system = System(
                var_dir=tmp / "var", gateway_port=free_port(), random_ports=True, mongo_port=free_port(),
                mongo_url=external_mongo, amqp_url=os.environ.get("AMQP_URL") or None,
                extra_env={"EVENT_EXCHANGE": exchange, "MONGO_DB_PREFIX": db_prefix,
                           # registration and login are not measured here: cheap password hashing
                           "PASSWORD_HASH_MEMORY_KIB": "8192", "PASSWORD_HASH_TIME_COST": "1"},
            )
            t0 = time.perf_counter()
            system.start(say=lambda text: None)
            gateway = system.gateway_url
            workers = os.environ.get("GUNICORN_WORKERS", "2")
            threads = os.environ.get("GUNICORN_THREADS", "8")
            print(f"  system started in {time.perf_counter() - t0:.1f} s (MongoDB: "
                  f"{'MONGO_URL' if external_mongo else 'SecantusDB started here'}; gunicorn {workers} workers x "
                  f"{threads} threads per service); client in this process (shares the CPUs)", flush=True)
            results.update(gunicorn_workers=int(workers), gunicorn_threads=int(threads))
            session = register_and_login(gateway)

            # a small create first: warms up imports, indexes and connections in the neo service
            small_doc, small_create_s, _ = create_signal(session, gateway, small_src, "bench small")

            # --- the large create, with the neo workers' memory watched
            neo_master = next(c for c in system.children if c.name == "neo").process.pid
            gateway_master = next(c for c in system.children if c.name == "gateway").process.pid
            neo_workers, gateway_workers = child_pids(neo_master), child_pids(gateway_master)
            with MemorySampler(neo_workers) as neo_mem, MemorySampler(gateway_workers) as gw_mem:
                big_doc, create_s, upload_s = create_signal(session, gateway, big_src, "bench large")
            if child_pids(neo_master) != neo_workers:
                print("  WARNING: the neo workers changed during the create (a worker restarted)", flush=True)
            create_mb_s = big_src.stat().st_size / MB / create_s
            service_ms = service_duration_ms(system.var_dir / "log" / "neo.log", "POST",
                                             "/electrophysiology/analogsignal")
            mem = neo_mem.report()
            worst = mem["worst"]
            growth_x = worst["rss_peak_growth_mb"] / size_mb
            hwm_x = worst["hwm_growth_over_baseline_mb"] / size_mb
            gw_worst = gw_mem.report()["worst"]
            print(f"  create {n:,} samples (multipart, streamed, through the gateway):", flush=True)
            print(f"    time {create_s:6.2f} s = {create_mb_s:7.1f} MB/s   target >= {TARGET_CREATE_MB_S:.0f} MB/s  "
                  f"{verdict(create_mb_s >= TARGET_CREATE_MB_S)}   (neo service's own request time: "
                  f"{'n/a' if service_ms is None else f'{service_ms / 1e3:.2f} s'})", flush=True)
            upload_mb_s = big_src.stat().st_size / MB / upload_s
            print(f"    of which: body sent in {upload_s:.2f} s ({upload_mb_s:.0f} MB/s: gateway -> neo -> multipart "
                  f"parser -> spool file), then {create_s - upload_s:.2f} s until the answer (HDF5 write + pyramid "
                  f"from the spooled upload, MongoDB insert)", flush=True)
            print(f"    neo worker peak RSS growth {worst['rss_peak_growth_mb']:7.1f} MB = {growth_x:.2f}x the array   "
                  f"target < {TARGET_CREATE_MEMORY_X:.0f}x  {verdict(growth_x < TARGET_CREATE_MEMORY_X)}   "
                  f"(sampled every 20 ms, {mem['samples']} samples; pid {worst['pid']}, RSS "
                  f"{worst['rss_before_mb']:.0f} -> {worst['rss_after_mb']:.0f} MB)", flush=True)
            print(f"    neo worker VmHWM {worst['hwm_before_mb']:.0f} -> {worst['hwm_after_mb']:.0f} MB: growth over "
                  f"baseline RSS {worst['hwm_growth_over_baseline_mb']:.1f} MB = {hwm_x:.2f}x   target < "
                  f"{TARGET_CREATE_MEMORY_X:.0f}x  {verdict(hwm_x < TARGET_CREATE_MEMORY_X)}", flush=True)
            print(f"    (gateway worker peak RSS growth {gw_worst['rss_peak_growth_mb']:.1f} MB, for information)",
                  flush=True)
            results["create"] = {"seconds": round(create_s, 3), "mb_s": round(create_mb_s, 1),
                                 "service_ms": service_ms,
                                 "upload_seconds": round(upload_s, 3), "memory_growth_x": round(growth_x, 3),
                                 "hwm_growth_x": round(hwm_x, 3), "neo_memory": mem,
                                 "gateway_rss_peak_growth_mb": gw_worst["rss_peak_growth_mb"],
                                 "small_create_seconds": round(small_create_s, 3)}

            # --- window reads
            big_id, small_id = big_doc["neo_id"], small_doc["neo_id"]
            big_data = np.load(big_src, mmap_mode="r")
            small_data = np.load(small_src, mmap_mode="r")
            big_pos, small_pos = window_positions(n, args.positions), window_positions(n_small, args.positions)
            times = read_windows(session, gateway, {"big": (big_id, big_pos, big_data),
                                                    "small": (small_id, small_pos, small_data)}, args.reads)
            windows = {}
            print(f"  {WINDOW:,}-sample window through the gateway ({len(big_pos)} positions x {args.reads} reads "
                  f"per format and signal, interleaved; request sent -> body received):", flush=True)
            for fmt in ("json", "npy"):
                big, small = stats_ms(times["big"][fmt]), stats_ms(times["small"][fmt])
                ratio = big["median_ms"] / small["median_ms"]
                windows[fmt] = {"big": big, "small": small, "ratio": round(ratio, 3)}
                target = f"target < {TARGET_NPY_WINDOW_MS:.0f} ms  {verdict(big['median_ms'] < TARGET_NPY_WINDOW_MS)}" \
                    if fmt == "npy" else "(no target)"
                print(f"    {fmt:4s} {n / 1e6:>5g}M: median {big['median_ms']:7.2f} ms  p90 "
                      f"{big['p90_ms']:7.2f} ms   {target}", flush=True)
                print(f"    {fmt:4s} {n_small / 1e6:>5g}M: median {small['median_ms']:7.2f} ms  p90 "
                      f"{small['p90_ms']:7.2f} ms", flush=True)
                print(f"    {fmt:4s} ratio {n / 1e6:g}M/{n_small / 1e6:g}M of the medians: {ratio:5.2f}   "
                      f"target < {TARGET_RATIO}  {verdict(ratio < TARGET_RATIO)}", flush=True)
            info = stats_ms(times["big"]["info"] + times["small"]["info"])
            windows["info_reference"] = info
            print(f"    for reference, q=info (same path, no array read): median {info['median_ms']:7.2f} ms  p90 "
                  f"{info['p90_ms']:7.2f} ms", flush=True)
            results["windows"] = windows

            # --- downsample over the whole signal
            ds = time_downsample(session, gateway, big_id, args.downsamples)
            print(f"  downsample={DOWNSAMPLE} over all {n:,} samples ({args.downsamples} requests per format):",
                  flush=True)
            for fmt in ("json", "npy"):
                d = ds[fmt]
                print(f"    {fmt:4s} median {d['median_ms']:7.2f} ms  p90 {d['p90_ms']:7.2f} ms ({d['points']} points, "
                      f"{d['method']})   target < {TARGET_DOWNSAMPLE_MS:.0f} ms  "
                      f"{verdict(d['median_ms'] < TARGET_DOWNSAMPLE_MS)}", flush=True)
            results["downsample"] = ds

            # --- the whole signal: streamed as .npy, refused as JSON
            whole = whole_signal_reads(session, gateway, big_id, child_pids(neo_master),
                                       big_src.stat().st_size)
            npy_x = whole["npy"]["rss_peak_growth_mb"] / size_mb
            json_x = whole["json_refused"]["rss_peak_growth_mb"] / size_mb
            print(f"  the whole {n:,}-sample signal through the gateway:", flush=True)
            print(f"    .npy {whole['npy']['seconds']:6.2f} s = {whole['npy']['mb_s']:7.1f} MB/s; neo worker peak RSS "
                  f"growth {whole['npy']['rss_peak_growth_mb']:.1f} MB = {npy_x:.3f}x the array   target < "
                  f"{TARGET_WHOLE_READ_MEMORY_X}x  {verdict(npy_x < TARGET_WHOLE_READ_MEMORY_X)}", flush=True)
            print(f"    JSON refused (400 too_large_for_json) in {whole['json_refused']['ms']:.1f} ms; neo worker peak "
                  f"RSS growth {whole['json_refused']['rss_peak_growth_mb']:.1f} MB = {json_x:.3f}x   target < "
                  f"{TARGET_WHOLE_READ_MEMORY_X}x  {verdict(json_x < TARGET_WHOLE_READ_MEMORY_X)}", flush=True)
            results["whole_signal"] = whole

            # --- the floor: raw h5py on the service's file
            path = h5_file(system.var_dir / "data", args.samples)
            floor = h5_floor(path, big_pos, args.reads)
            print(f"  floor: the same windows with raw h5py on the open file ({path.name}):", flush=True)
            print(f"    default chunk cache: median {floor['default']['median_ms']:7.3f} ms  p90 "
                  f"{floor['default']['p90_ms']:7.3f} ms;  no chunk cache (as the service): median "
                  f"{floor['no_chunk_cache']['median_ms']:7.3f} ms  p90 {floor['no_chunk_cache']['p90_ms']:7.3f} ms",
                  flush=True)
            results["h5py_floor"] = floor

            checks = {
                "create_mb_s": create_mb_s >= TARGET_CREATE_MB_S,
                "create_memory": growth_x < TARGET_CREATE_MEMORY_X and hwm_x < TARGET_CREATE_MEMORY_X,
                "npy_window_ms": windows["npy"]["big"]["median_ms"] < TARGET_NPY_WINDOW_MS,
                "json_ratio": windows["json"]["ratio"] < TARGET_RATIO,
                "npy_ratio": windows["npy"]["ratio"] < TARGET_RATIO,
                "downsample_ms": ds["json"]["median_ms"] < TARGET_DOWNSAMPLE_MS
                and ds["npy"]["median_ms"] < TARGET_DOWNSAMPLE_MS,
                "whole_read_memory": npy_x < TARGET_WHOLE_READ_MEMORY_X and json_x < TARGET_WHOLE_READ_MEMORY_X,
            }
            results["targets"] = {"create_mb_s": TARGET_CREATE_MB_S, "create_memory_x": TARGET_CREATE_MEMORY_X,
                                  "npy_window_ms": TARGET_NPY_WINDOW_MS, "ratio": TARGET_RATIO,
                                  "downsample_ms": TARGET_DOWNSAMPLE_MS,
                                  "whole_read_memory_x": TARGET_WHOLE_READ_MEMORY_X}
            results["pass"] = checks
            missed = [k for k, ok in checks.items() if not ok]
            print(f"  {len(checks) - len(missed)}/{len(checks)} targets met"
                  + (f"; missed: {', '.join(missed)}" if missed else ""), flush=True)
        finally:
            if system is not None:
                stop_system(system, external_mongo=external_mongo, db_prefix=db_prefix, exchange=exchange)
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
