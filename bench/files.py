"""Files service end to end: a 1 GiB file uploaded and downloaded through the gateway.

    python -m bench files   (or python -m bench.files [--mib 1024] [--dir /tmp])

Starts the whole system (stack.system.System, as `make run` does, in a temporary var dir, on free
ports, with its own MONGO_DB_PREFIX and EVENT_EXCHANGE), registers and logs in a user, then:

  * uploads a file of `--mib` MiB (random bytes, written to disk first) with `POST /datafiles/`
    (multipart, `raw_file` streamed from disk with a Content-Length, convert=0): MB/s;
  * downloads it with `GET /datafiles/<id>/download/` streamed in 1 MiB pieces, checking its sha256
    against the upload's: MB/s;
  * samples (every 20 ms, from /proc) the RSS of the gateway's and the files service's gunicorn
    worker processes during each transfer and reports the peak of the busiest one.

Targets: at least 100 MB/s each way, peak RSS under 200 MB for the gateway and the files service.
Prints each figure with PASS/MISS, then one final JSON line. Stops everything it started and
removes its files, databases and exchange.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from bench.neo import MB, MemorySampler, MultipartFile, child_pids, register_and_login, verdict

TARGET_MB_S = 100.0
TARGET_PEAK_MB = 200.0


def make_file(path: Path, mib: int) -> str:
    """`mib` MiB of random bytes (16 MiB pieces); returns the sha256."""
    rng = np.random.default_rng(7)
    digest = hashlib.sha256()
    piece = 16
    with open(path, "wb") as f:
        for start in range(0, mib, piece):
            data = rng.integers(0, 256, size=min(piece, mib - start) * 1024 * 1024, dtype=np.uint8).tobytes()
            digest.update(data)
            f.write(data)
    return digest.hexdigest()


def peak(sampler: MemorySampler) -> dict:
    """The busiest process: its peak RSS (sampled) and its growth over its RSS before."""
    rows = [{"pid": pid, "peak_rss_mb": round(sampler.peak[pid] / MB, 1),
             "growth_mb": round((sampler.peak[pid] - sampler.before[pid].get("VmRSS", 0)) / MB, 1)}
            for pid in sampler.pids]
    return max(rows, key=lambda r: (r["growth_mb"], r["peak_rss_mb"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="size of the file in MiB")
    parser.add_argument("--dir", default=None, help="where to put the temporary files (default: system temp)")
    args, _ignored = parser.parse_known_args(argv)

    import pymongo

    from stack.procs import free_port
    from stack.system import System

    tag = uuid.uuid4().hex[:10]
    exchange, db_prefix = f"gnode.bench.{tag}", f"gnode_bench_{tag}_"
    external_mongo = os.environ.get("MONGO_URL") or None
    results: dict = {"bench": "files", "cpus": os.cpu_count(), "mib": args.mib}
    system = None
    with tempfile.TemporaryDirectory(prefix="bench-files-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        try:
            load = os.getloadavg()[0]
            results["loadavg_1min_at_start"] = round(load, 2)
            source = tmp / "big.bin"
            t0 = time.perf_counter()
            sha256 = make_file(source, args.mib)
            size = source.stat().st_size
            print(f"files bench: {os.cpu_count()} CPUs (1-min load average before: {load:.2f}); a {args.mib} MiB file "
                  f"written in {time.perf_counter() - t0:.1f} s", flush=True)
            system = System(
                var_dir=tmp / "var", gateway_port=free_port(), random_ports=True, mongo_port=free_port(),
                mongo_url=external_mongo, amqp_url=os.environ.get("AMQP_URL") or None,
                extra_env={"EVENT_EXCHANGE": exchange, "MONGO_DB_PREFIX": db_prefix,
                           "PASSWORD_HASH_MEMORY_KIB": "8192", "PASSWORD_HASH_TIME_COST": "1"},
            )
            t0 = time.perf_counter()
            system.start(say=lambda text: None)
            gateway = system.gateway_url
            print(f"  system started in {time.perf_counter() - t0:.1f} s; client in this process (shares the CPUs)",
                  flush=True)
            session = register_and_login(gateway)
            # warm-up: imports, indexes, pooled connections
            warm = session.post(f"{gateway}/datafiles/", files={"raw_file": ("warm.bin", b"x" * 1024)}, data={"convert": "0"})
            warm.raise_for_status()

            files_pids = child_pids(next(c for c in system.children if c.name == "files").process.pid)
            gateway_pids = child_pids(next(c for c in system.children if c.name == "gateway").process.pid)

            body = MultipartFile({"convert": (b"0", "text/plain")}, "raw_file", source, filename="big.bin")
            with MemorySampler(files_pids) as files_mem, MemorySampler(gateway_pids) as gw_mem:
                t0 = time.perf_counter()
                response = session.post(f"{gateway}/datafiles/", data=body, headers={"Content-Type": body.content_type})
                upload_s = time.perf_counter() - t0
            if response.status_code != 201:
                raise RuntimeError(f"upload: HTTP {response.status_code}: {response.text[:500]}")
            fields = response.json()["selected"][0]["fields"]
            if fields["sha256"] != sha256 or fields["size"] != size:
                raise RuntimeError("the stored file differs from the source")
            upload = {"seconds": round(upload_s, 2), "mb_s": round(size / MB / upload_s, 1),
                      "gateway": peak(gw_mem), "files": peak(files_mem)}
            number = fields["id"].rsplit("_", 1)[1]

            with MemorySampler(files_pids) as files_mem, MemorySampler(gateway_pids) as gw_mem:
                t0 = time.perf_counter()
                digest = hashlib.sha256()
                received = 0
                with session.get(f"{gateway}/datafiles/{number}/download/", stream=True) as r:
                    r.raise_for_status()
                    for chunk in r.iter_content(1024 * 1024):
                        digest.update(chunk)
                        received += len(chunk)
                download_s = time.perf_counter() - t0
            if received != size or digest.hexdigest() != sha256:
                raise RuntimeError("the downloaded file differs from the source")
            download = {"seconds": round(download_s, 2), "mb_s": round(size / MB / download_s, 1),
                        "gateway": peak(gw_mem), "files": peak(files_mem)}
            results.update(upload=upload, download=download)

            for label, figures in (("upload", upload), ("download", download)):
                print(f"  {label:8s} {size / MB:.0f} MB in {figures['seconds']:.2f} s: {figures['mb_s']:.1f} MB/s "
                      f"(target >= {TARGET_MB_S:.0f}) {verdict(figures['mb_s'] >= TARGET_MB_S)}", flush=True)
                for part in ("gateway", "files"):
                    row = figures[part]
                    print(f"    {part:8s} peak RSS {row['peak_rss_mb']:.1f} MB (grew {row['growth_mb']:+.1f} MB) "
                          f"(target < {TARGET_PEAK_MB:.0f}) {verdict(row['peak_rss_mb'] < TARGET_PEAK_MB)}", flush=True)
            results["pass"] = all(f["mb_s"] >= TARGET_MB_S and f["gateway"]["peak_rss_mb"] < TARGET_PEAK_MB
                                  and f["files"]["peak_rss_mb"] < TARGET_PEAK_MB for f in (upload, download))
        finally:
            if system is not None:
                system.stop()
                if system.mongo_url:
                    try:
                        client = pymongo.MongoClient(system.mongo_url, serverSelectionTimeoutMS=2000)
                        for name in client.list_database_names():
                            if name.startswith(db_prefix):
                                client.drop_database(name)
                    except Exception:
                        pass
                if system.amqp_url:
                    try:
                        system.delete_broker_topology(exchange)
                    except Exception:
                        pass
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
