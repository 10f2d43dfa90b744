"""run_worker: the relay and the consumers of a service in one process, stopped by a signal."""
from __future__ import annotations

import os
import queue as queues
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from shared.config import load_config
from shared.events import ConsumerSpec, make_envelope, outbox_fields, run_worker, queue_name
from stack.procs import wait_until

REPO = Path(__file__).resolve().parents[3]


def test_worker_relays_the_outbox_and_runs_consumers(events_db, bus, mongo_url, unique):
    queue = f"worker{unique}"
    broker_queue = queue_name(bus.exchange, queue)  # run_worker scopes queues by exchange
    bus.queues.append(broker_queue)
    seen = []
    crashed = []

    def handler(envelope):
        seen.append(envelope["event_id"])

    def consumers(db):  # a factory: handlers get the service's database
        assert db.name == events_db.name
        return [ConsumerSpec(queue=queue, handlers={"svc.thing.*": handler}, options={"poll_interval": 0.05})]

    config = load_config(
        {}, {"MONGO_URL": mongo_url, "MONGO_DB": events_db.name, "AMQP_URL": bus.amqp_url, "EVENT_EXCHANGE": bus.exchange,
             "GNODE_DEV_MODE": True}
    )
    stop = threading.Event()

    def work():
        try:
            run_worker(
                service=f"evtest{unique}",
                config=config,
                relay_collections=["things"],
                consumers=consumers,
                stop=stop,
                relay_options={"poll_interval": 0.05},
                max_backoff=0.5,
                configure_logs=False,
            )
        except BaseException as exc:  # surfaced below
            crashed.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: bus.exists(broker_queue), timeout=10)
        event = make_envelope("svc.thing.created", {}, producer="svc")
        events_db["things"].insert_one({"_id": 1, **outbox_fields(event)})
        assert wait_until(lambda: seen == [event["event_id"]], timeout=10)
        assert "_outbox_pending_1" in events_db["things"].index_information()
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive() and crashed == []


def test_a_crashing_loop_is_restarted():
    from shared.events.worker import _supervise

    runs = []
    stop = threading.Event()

    def loop(stop_event):
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("bug")
        stop_event.set()

    _supervise("test loop", loop, stop, max_backoff=0.05)
    assert len(runs) == 3


WORKER = textwrap.dedent(
    """
    import sys
    from shared.config import load_config
    from shared.events import run_worker

    mongo_url, db_name, amqp_url, exchange = sys.argv[1:5]
    config = load_config({}, {"MONGO_URL": mongo_url, "MONGO_DB": db_name, "AMQP_URL": amqp_url,
                              "EVENT_EXCHANGE": exchange, "LOG_FORMAT": "text", "GNODE_DEV_MODE": True})
    run_worker(service="evtest", config=config, relay_collections=["things"], consumers=[])
    print("clean exit", flush=True)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_worker_stops_cleanly_on_a_signal(events_db, bus, mongo_url, signum):
    child = subprocess.Popen(
        [sys.executable, "-c", WORKER, mongo_url, events_db.name, bus.amqp_url, bus.exchange],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queues.Queue[str] = queues.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stderr], daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=15)
            if "running" in line:
                break
        child.send_signal(signum)
        child.wait(timeout=15)
        out = child.stdout.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
    assert child.returncode == 0
    assert "clean exit" in out
