"""Gateway overhead: added latency per request and throughput, with both sides under gunicorn.

    python -m bench.gateway [--requests 2000] [--concurrency 16] [--seconds 10]

Starts a trivial upstream (`GET /account/ping/` -> small JSON, plus an empty revocation list)
and the gateway (AUTH_URL pointing at it), both with `shared/gunicorn_conf.py`, on free ports.
Then measures N sequential requests to the upstream directly and through the gateway (anonymous
and with a Bearer token), and requests per second with C concurrent clients for S seconds.
Prints human-readable figures and a final JSON line; always stops what it started.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from stack.procs import Child, free_port, port_open, venv_bin, wait_until

REPO = Path(__file__).resolve().parents[1]
JWT_SECRET = "bench-jwt-secret-0123456789abcdef-xyz"
INTERNAL_SECRET = "bench-internal-secret-0123456789abcdef"
PING = "/account/ping/"


def create_upstream():
    """The trivial upstream: a tiny Flask app standing in for the auth service."""
    from flask import Flask, jsonify, request

    app = Flask("bench-upstream")

    @app.get(PING)
    def ping():
        return jsonify(message="pong", message_type="ok", logged_in_as=None)

    @app.get("/internal/revocations/")
    def revocations():
        return jsonify(revoked=[], last=0, more=False)

    @app.get("/readyz")
    def readyz():
        return jsonify(status="ok", service="bench-upstream", dependencies={})

    @app.get("/echo-length/")
    def echo_length():
        return jsonify(length=len(request.get_data()))

    return app


def _gunicorn(name: str, app: str, port: int, env: dict[str, str], log_dir: Path) -> Child:
    argv = [
        venv_bin("gunicorn"), "-c", str(REPO / "shared" / "gunicorn_conf.py"), "--no-control-socket",
        "--chdir", str(REPO), "-b", f"127.0.0.1:{port}", app,
    ]
    child = Child(name=name, argv=argv, env=env, log_path=log_dir / f"{name}.log").start()
    url = f"http://127.0.0.1:{port}"
    ok = wait_until(lambda: port_open("127.0.0.1", port) or not child.alive, timeout=30)
    ok = ok and child.alive and wait_until(lambda: _answers(url + "/readyz"), timeout=30)
    if not ok:
        child.stop()
        raise RuntimeError(f"{name} did not start:\n{child.log_tail()}")
    return child


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def sequential(url: str, n: int, headers: dict[str, str] | None = None) -> list[float]:
    """Latencies (ms) of n sequential GETs over one keep-alive connection."""
    timings = []
    with _session() as session:
        for _ in range(min(200, n)):  # warm-up: connections, imports, caches
            session.get(url, headers=headers).raise_for_status()
        for _ in range(n):
            started = time.perf_counter()
            response = session.get(url, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
    return timings


def throughput(url: str, clients: int, seconds: float, headers: dict[str, str] | None = None) -> dict:
    """Requests per second with `clients` threads, each with its own Session, for `seconds`."""
    counts = [0] * clients
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        with _session() as session:
            session.get(url, headers=headers)
            start.wait()
            while time.perf_counter() < stop_at[0]:
                try:
                    if session.get(url, headers=headers).status_code == 200:
                        counts[i] += 1
                    else:
                        errors[i] += 1
                except requests.RequestException:
                    errors[i] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + 3600
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.perf_counter() - began
    return {"requests": sum(counts), "errors": sum(errors), "seconds": round(elapsed, 2),
            "rps": round(sum(counts) / elapsed, 1)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict:
    return {"median_ms": round(statistics.median(values), 3), "p99_ms": round(percentile(values, 99), 3),
            "mean_ms": round(statistics.fmean(values), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per series")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients for the throughput run")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GUNICORN_WORKERS", "2")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", "8")))
    parser.add_argument("--no-direct-throughput", action="store_true", help="skip the direct throughput run")
    # parse_known_args: `python -m bench gateway` calls main() with the runner's own arguments
    args, _ignored = parser.parse_known_args(argv)

    from shared.tokens import issue_token

    base_env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    base_env.update(GUNICORN_WORKERS=str(args.workers), GUNICORN_THREADS=str(args.threads),
                    PYTHONPATH=str(REPO), LOG_LEVEL="INFO")
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        log_dir = Path(tmp)
        try:
            upstream_port, gateway_port = free_port(), free_port()
            children.append(_gunicorn("upstream", "bench.gateway:create_upstream()", upstream_port, base_env, log_dir))
            upstream = f"http://127.0.0.1:{upstream_port}"
            gateway_env = dict(base_env, AUTH_URL=upstream, JWT_SECRET=JWT_SECRET, INTERNAL_SECRET=INTERNAL_SECRET)
            children.append(_gunicorn("gateway", "gateway.app:create_app()", gateway_port, gateway_env, log_dir))
            gateway = f"http://127.0.0.1:{gateway_port}"
            token, _ = issue_token(user_id=1, username="bench", secret=JWT_SECRET, ttl_seconds=3600)
            bearer = {"Authorization": f"Bearer {token}"}

            print(f"gateway bench: {os.cpu_count()} CPUs; gunicorn {args.workers} workers x {args.threads} threads "
                  f"for the upstream and the gateway; client in this process (shares the CPUs)")
            print(f"sequential: {args.requests} GET {PING} per series, one keep-alive connection")
            direct = summary(sequential(upstream + PING, args.requests))
            anonymous = summary(sequential(gateway + PING, args.requests))
            authenticated = summary(sequential(gateway + PING, args.requests, bearer))
            rows = [("direct to upstream", direct), ("through gateway, anonymous", anonymous),
                    ("through gateway, Bearer token", authenticated)]
            for label, s in rows:
                print(f"  {label:32s} median {s['median_ms']:7.3f} ms   p99 {s['p99_ms']:7.3f} ms   "
                      f"mean {s['mean_ms']:7.3f} ms")
            added = {
                "anonymous": {"median_ms": round(anonymous["median_ms"] - direct["median_ms"], 3),
                              "p99_ms": round(anonymous["p99_ms"] - direct["p99_ms"], 3)},
                "bearer": {"median_ms": round(authenticated["median_ms"] - direct["median_ms"], 3),
                           "p99_ms": round(authenticated["p99_ms"] - direct["p99_ms"], 3)},
            }
            print(f"  gateway added latency: anonymous median +{added['anonymous']['median_ms']:.3f} ms, "
                  f"p99 +{added['anonymous']['p99_ms']:.3f} ms; with token median "
                  f"+{added['bearer']['median_ms']:.3f} ms, p99 +{added['bearer']['p99_ms']:.3f} ms")

            print(f"throughput: {args.concurrency} concurrent clients, {args.seconds:g} s each")
            through = throughput(gateway + PING, args.concurrency, args.seconds, bearer)
            print(f"  through gateway (Bearer token)   {through['rps']:8.1f} req/s  "
                  f"({through['requests']} ok, {through['errors']} errors)")
            result = {"bench": "gateway", "cpus": os.cpu_count(), "workers": args.workers, "threads": args.threads,
                      "sequential_requests": args.requests, "direct": direct, "gateway_anonymous": anonymous,
                      "gateway_bearer": authenticated, "added_latency": added,
                      "concurrency": args.concurrency, "gateway_throughput": through}
            if not args.no_direct_throughput:
                direct_through = throughput(upstream + PING, args.concurrency, args.seconds)
                print(f"  direct to upstream               {direct_through['rps']:8.1f} req/s  "
                      f"({direct_through['requests']} ok, {direct_through['errors']} errors)")
                result["direct_throughput"] = direct_through
            print(json.dumps(result))
            return 0
        finally:
            for child in reversed(children):
                child.stop()


if __name__ == "__main__":
    sys.exit(main())
