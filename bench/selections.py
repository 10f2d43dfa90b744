"""Selections and labels at scale, end to end through the gateway (issue 7).

    python -m bench selections [--runs 15]   (or python -m bench.selections [--signals 100000]
                                               [--segments 100] [--label-every 10] [--batch 10000] ...)

Starts the whole system (stack.system.System, as bench/acl.py: a temporary var dir, free ports, its
own MONGO_DB_PREFIX and EVENT_EXCHANGE), registers and logs in a user through the gateway, then:

  * creates one block, `--segments` segments under it (distinct names `seg-000`, ...) and
    `--signals` analogsignals in lists of `--batch` (the create limit is 10,000 per request), each
    the smallest valid body (`name`, a one-sample `signal`, `sampling_rate`, `t_start`); signal i goes to
    segment i * segments // signals, so every segment holds a contiguous run of signals;
  * makes a metadata section, property and value (`/metadata/...`);
  * labels every `--label-every`-th signal (10,000 by default, scattered ids: the worst case for
    the label writes) with that value in ONE `POST /labels/`: figure (b);
  * waits until the creation events have left the neo service's outbox (so the selection is not
    timed against that background work), then runs
        {"obj_type": "analogsignal",
         "querysets": [{"filter": {"label": <value>, "segment__name": "<a middle segment>"}}]}
    once to warm up and `--runs` times: median, min, max: figure (a), target < 200 ms; the answer
    must be exactly the expected signals (100 by default), so an empty answer cannot pass.
  * for reference, the two halves of that filter alone (label only, segment__name only), and the
    neo service's own request time for the selection (its access log).

Prints the figures with PASS/MISS, then one final JSON line. Stops everything it started and
removes its files, databases and exchange.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

TARGET_SELECTION_MS = 200.0


def _ok(response: requests.Response, what: str, status: tuple[int, ...] = (200, 201)) -> dict:
    if response.status_code not in status:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


def _fields(body: dict) -> dict:
    return body["selected"][0]["fields"]


def signal_body(segment: str, number: int) -> dict:
    """The smallest valid analogsignal: `name` and the three required data fields, a one-sample array."""
    return {"name": f"s{number}", "segment": segment, "sampling_rate": {"units": "hz", "data": 1000},
            "t_start": {"units": "s", "data": 0}, "signal": {"units": "mv", "data": [0.0]}}


def build(session: requests.Session, gateway: str, *, signals: int, segments: int, batch: int,
          say=print) -> dict:
    """The block, segments and signals; returns their ids and how long each part took."""
    neo = f"{gateway}/electrophysiology"
    t0 = time.perf_counter()
    block = _ok(session.post(f"{neo}/block/", json={"name": "selections bench"}), "create block")["neo_id"]
    names = [f"seg-{k:03d}" for k in range(segments)]
    segment_ids = _ok(session.post(f"{neo}/segment/", json=[{"name": n, "block": block} for n in names]),
                      "create segments")["selected"]
    if len(segment_ids) != segments:
        raise RuntimeError(f"asked for {segments} segments, got {len(segment_ids)}")
    signal_ids: list[str] = []
    batch_seconds: list[float] = []
    started = time.perf_counter()
    for first in range(0, signals, batch):
        bodies = [signal_body(segment_ids[i * segments // signals], i) for i in range(first, min(first + batch, signals))]
        tb = time.perf_counter()
        created = _ok(session.post(f"{neo}/analogsignal/", json=bodies), f"create signals {first}..")
        batch_seconds.append(time.perf_counter() - tb)
        if len(created["selected"]) != len(bodies):
            raise RuntimeError(f"asked for {len(bodies)} signals, got {len(created['selected'])}")
        signal_ids += created["selected"]
        done = len(signal_ids)
        rate = done / (time.perf_counter() - started)
        say(f"    {done:,}/{signals:,} signals created ({batch_seconds[-1]:.1f} s for this list of {len(bodies):,}; "
            f"{rate:,.0f} signals/s so far)")
    return {"block": block, "segment_names": names, "segment_ids": segment_ids, "signal_ids": signal_ids,
            "signals_seconds": time.perf_counter() - started, "batch_seconds": batch_seconds,
            "seconds": time.perf_counter() - t0}


def metadata_value(session: requests.Session, gateway: str) -> str:
    """A section, a property with one value, as a user would make them: the value's id."""
    section = _fields(_ok(session.post(f"{gateway}/metadata/sections/", json={"name": "Stimulus"}), "section"))
    prop = _fields(_ok(session.post(f"{gateway}/metadata/properties/", json={
        "section_id": section["id"], "name": "colour", "values": ["red"]}), "property"))
    return prop["values"][0]["id"]


def wait_for_outbox(mongo_url: str, db_prefix: str, timeout: float) -> tuple[float, int]:
    """Seconds until no neo analogsignal document has an unpublished event (read only), and how
    many were still pending when the wait gave up (0 when it did not)."""
    import pymongo

    from services.neo.schema import NEO_TYPES
    from shared.events.outbox import PENDING_FIELD

    client = pymongo.MongoClient(mongo_url)
    try:
        collection = client[f"{db_prefix}neo"][NEO_TYPES["analogsignal"].collection]
        started = time.perf_counter()
        pending = collection.count_documents({PENDING_FIELD: True})
        while pending and time.perf_counter() - started < timeout:
            time.sleep(1.0)
            pending = collection.count_documents({PENDING_FIELD: True})
        return time.perf_counter() - started, pending
    finally:
        client.close()


def time_selection(session: requests.Session, gateway: str, body: dict, runs: int, expected: set[str] | None,
                   expected_total: int) -> dict:
    """One warm-up and `runs` timed `POST /selections/`; every answer checked."""
    times = []
    for run in range(runs + 1):
        t0 = time.perf_counter()
        response = session.post(f"{gateway}/selections/", params={"max_results": 10000}, json=body)
        elapsed = time.perf_counter() - t0
        answer = _ok(response, "selection", (200,))
        if answer["object_total"] != expected_total or (expected is not None and set(answer["selected"]) != expected):
            raise RuntimeError(f"selection {body}: {answer['object_total']} objects, expected {expected_total}"
                               f" (first ids {answer['selected'][:5]})")
        if run:
            times.append(elapsed)
    return {"median_ms": round(statistics.median(times) * 1e3, 2), "min_ms": round(min(times) * 1e3, 2),
            "max_ms": round(max(times) * 1e3, 2), "runs": runs, "object_total": expected_total}


def service_durations(log_path: Path, method: str, path_prefix: str) -> list[float]:
    """duration_ms of every access-log line of that method and path in a JSON service log."""
    out = []
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("method") == method and str(entry.get("path", "")).startswith(path_prefix) \
                and "duration_ms" in entry:
            out.append(float(entry["duration_ms"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--label-every", type=int, default=10, help="label every n-th signal")
    parser.add_argument("--batch", type=int, default=10_000, help="signals per create request (at most 10,000)")
    parser.add_argument("--runs", type=int, default=15, help="timed selections (after one warm-up)")
    parser.add_argument("--reference-runs", type=int, default=5, help="timed runs of each half of the filter")
    parser.add_argument("--outbox-timeout", type=float, default=120.0,
                        help="seconds to wait for the creation events to be published before timing")
    parser.add_argument("--dir", default=None, help="where to put the temporary files (default: system temp)")
    args, _ignored = parser.parse_known_args(argv)  # `python -m bench selections` passes the runner's args

    from bench.neo import register_and_login, stop_system, verdict
    from stack.procs import free_port
    from stack.system import System

    if args.signals % args.segments:
        parser.error("--signals must be a multiple of --segments")
    tag = uuid.uuid4().hex[:10]
    exchange, db_prefix = f"gnode.bench.{tag}", f"gnode_bench_{tag}_"
    external_mongo = os.environ.get("MONGO_URL") or None
    results: dict = {"bench": "selections", "cpus": os.cpu_count(), "signals": args.signals,
                     "segments": args.segments, "label_every": args.label_every}
    began = time.perf_counter()
    system = None
    with tempfile.TemporaryDirectory(prefix="bench-selections-", dir=args.dir) as tmp:
        try:
            load = os.getloadavg()[0]
            results["loadavg_1min_at_start"] = round(load, 2)
            system = System(
                var_dir=Path(tmp) / "var", gateway_port=free_port(), random_ports=True, mongo_port=free_port(),
                mongo_url=external_mongo, amqp_url=os.environ.get("AMQP_URL") or None,
                extra_env={"EVENT_EXCHANGE": exchange, "MONGO_DB_PREFIX": db_prefix,
                           "PASSWORD_HASH_MEMORY_KIB": "8192", "PASSWORD_HASH_TIME_COST": "1"},
            )
            t0 = time.perf_counter()
            system.start(say=lambda text: None)
            gateway = system.gateway_url
            print(f"selections bench: {os.cpu_count()} CPUs (1-min load average before the bench: {load:.2f}); "
                  f"system started in {time.perf_counter() - t0:.1f} s (MongoDB: "
                  f"{'MONGO_URL' if external_mongo else 'SecantusDB started here'})", flush=True)
            session = register_and_login(gateway)

            # --- setup
            print(f"  setup: 1 block, {args.segments} segments, {args.signals:,} analogsignals in lists of "
                  f"{args.batch:,} (one-sample signal each), through the gateway:", flush=True)
            tree = build(session, gateway, signals=args.signals, segments=args.segments, batch=args.batch,
                         say=lambda text: print(text, flush=True))
            per_signal_ms = tree["signals_seconds"] / args.signals * 1e3
            print(f"    setup took {tree['seconds']:.1f} s: signals {tree['signals_seconds']:.1f} s = "
                  f"{per_signal_ms:.2f} ms per signal ({args.signals / tree['signals_seconds']:,.0f} /s; "
                  f"per list of {args.batch:,}: median {statistics.median(tree['batch_seconds']):.1f} s)", flush=True)
            results["setup"] = {"seconds": round(tree["seconds"], 1), "signals_seconds": round(tree["signals_seconds"], 1),
                                "ms_per_signal": round(per_signal_ms, 3),
                                "batch_seconds": [round(s, 2) for s in tree["batch_seconds"]]}

            value = metadata_value(session, gateway)
            signal_ids, names = tree["signal_ids"], tree["segment_names"]
            labelled = signal_ids[::args.label_every]

            # --- (b) one POST /labels/ with every n-th signal
            t0 = time.perf_counter()
            answer = _ok(session.post(f"{gateway}/labels/", json={"value_id": value, "apply_to": labelled}),
                         "label", (201,))
            label_s = time.perf_counter() - t0
            if answer["object_total"] != len(labelled):
                raise RuntimeError(f"labelled {answer['object_total']} objects, expected {len(labelled)}")
            label_service = service_durations(system.var_dir / "log" / "neo.log", "POST", "/labels")
            label_service_s = label_service[-1] / 1e3 if label_service else None
            print(f"  (b) label {len(labelled):,} signals (every {args.label_every}th, scattered ids) with {value} in "
                  f"one POST /labels/: {label_s:.2f} s = {label_s / len(labelled) * 1e3:.3f} ms per object "
                  f"(neo service's own request time: "
                  f"{'n/a' if label_service_s is None else f'{label_service_s:.2f} s'})", flush=True)
            results["label"] = {"objects": len(labelled), "seconds": round(label_s, 3),
                                "service_seconds": None if label_service_s is None else round(label_service_s, 3)}

            # --- let the creation events go out first (the acl service and the publisher are busy otherwise)
            waited, pending = wait_for_outbox(system.mongo_url, db_prefix, args.outbox_timeout)
            print(f"  creation events published {waited:.1f} s after the label"
                  + (f" (gave up with {pending:,} still pending: the selection is timed against that work)"
                     if pending else ""), flush=True)
            results["outbox_wait_seconds"] = round(waited, 1)
            results["outbox_pending_when_timed"] = pending

            # --- (a) label AND segment__name
            middle = args.segments // 2
            per_segment = args.signals // args.segments
            in_segment = signal_ids[middle * per_segment:(middle + 1) * per_segment]
            expected = set(in_segment) & set(labelled)
            body = {"obj_type": "analogsignal",
                    "querysets": [{"filter": {"label": value, "segment__name": names[middle]}}]}
            log = system.var_dir / "log" / "neo.log"
            before = len(service_durations(log, "POST", "/selections"))
            sel = time_selection(session, gateway, body, args.runs, expected, len(expected))
            own = service_durations(log, "POST", "/selections")[before + 1:]  # without the warm-up
            if own:
                sel["service_median_ms"] = round(statistics.median(own), 2)
            print(f"  (a) selection label={value} AND segment__name={names[middle]!r} over {args.signals:,} signals "
                  f"({len(expected)} match; {args.runs} runs after a warm-up):", flush=True)
            print(f"    median {sel['median_ms']:.1f} ms  (min {sel['min_ms']:.1f}, max {sel['max_ms']:.1f})   target < "
                  f"{TARGET_SELECTION_MS:.0f} ms  {verdict(sel['median_ms'] < TARGET_SELECTION_MS)}   (neo service's "
                  f"own time: median {sel.get('service_median_ms', 'n/a')} ms)", flush=True)
            results["selection"] = sel

            # --- for reference: each half alone
            reference = {}
            for what, lookups, want in (
                ("label only", {"label": value}, len(labelled)),
                ("segment__name only", {"segment__name": names[middle]}, len(in_segment)),
            ):
                ref = time_selection(session, gateway, {"obj_type": "analogsignal", "querysets": [{"filter": lookups}]},
                                     args.reference_runs, None, want)
                reference[what] = ref
                print(f"    for reference, {what} ({want:,} match, first page of up to 10,000 ids returned): median "
                      f"{ref['median_ms']:.1f} ms (min {ref['min_ms']:.1f}, max {ref['max_ms']:.1f})", flush=True)
            results["selection_reference"] = reference
            results["targets"] = {"selection_ms": TARGET_SELECTION_MS}
            results["pass"] = {"selection_ms": sel["median_ms"] < TARGET_SELECTION_MS}
        finally:
            if system is not None:
                stop_system(system, external_mongo=external_mongo, db_prefix=db_prefix, exchange=exchange)
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    print(f"  total bench time {results['total_seconds']:.0f} s", flush=True)
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
