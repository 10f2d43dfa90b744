"""A worker killed in the middle of a conversion does not lose it: the task is delivered again,
the partial objects are removed and it completes once, with no duplicates. A file that keeps
failing for a transient reason ends `failed` with the reason after bounded retries."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pika
import pytest

from services.files.app import create_app
from stack.procs import free_port, wait_until
from tests.integration.files.conftest import Api, number, worker_queues

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", autouse=True)
def _remove_queues(files_config):
    yield
    from shared.events import delete_topology

    delete_topology(files_config["AMQP_URL"], files_config["EVENT_EXCHANGE"], worker_queues(files_config))


def start_worker(config, log_path) -> subprocess.Popen:
    env = {**os.environ, **{k: str(v) for k, v in config.items()}, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "services.files.worker"], env=env, cwd=str(REPO),
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)


def probe_queue(config, binding: str) -> tuple[pika.BlockingConnection, str]:
    connection = pika.BlockingConnection(pika.URLParameters(config["AMQP_URL"]))
    channel = connection.channel()
    channel.exchange_declare(exchange=config["EVENT_EXCHANGE"], exchange_type="topic", durable=True)
    name = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=name, exchange=config["EVENT_EXCHANGE"], routing_key=binding)
    return connection, name


def drain(connection, queue) -> list[dict]:
    channel = connection.channel()
    got = []
    while True:
        method, _, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            return got
        got.append(json.loads(body))


def test_a_worker_killed_mid_conversion_loses_nothing_and_duplicates_nothing(files_config, client, neighbours, tmp_path):
    config = {**files_config, "LOG_LEVEL": "INFO"}
    api = Api(client, 8_800_001, f"killed{os.getpid()}", neighbours)
    connection, completed = probe_queue(config, "files.conversion.completed")
    lines = 240
    data = "".join(",".join(str(i * 0.5 + j) for j in range(50)) + "\n" for i in range(lines)).encode()
    first = start_worker(config, tmp_path / "worker1.log")
    second = None
    try:
        uploaded = api.upload("long.csv", data)
        # Kill the worker once it has created a part of the objects.
        assert wait_until(lambda: (api.fields(uploaded["id"])["progress"] or {}).get("done", 0) >= 40, timeout=60,
                          interval=0.02), (tmp_path / "worker1.log").read_text()[-3000:]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        partial = api.neo_total("analogsignal")
        assert 0 < partial < lines
        fields = api.fields(uploaded["id"])
        assert fields["current_state"] == "converting"
        second = start_worker(config, tmp_path / "worker2.log")
        done = api.wait_state(uploaded["id"], timeout=90)
        assert done["current_state"] == "converted", done["operations_log"]
        # completed once, with exactly the objects of one conversion
        assert done["extracted_info"]["objects"] == {"block": 1, "segment": 1, "analogsignal": lines}
        assert api.neo_total("analogsignal") == lines and api.neo_total("block") == 1 and api.neo_total("segment") == 1
        assert done["operations_log"] == "ascii-csv: success " and done["operations"][-1]["attempt"] == 2
        assert done["last_task_id"] == uploaded["last_task_id"]
        events: list[dict] = []
        assert wait_until(lambda: bool(events.extend(drain(connection, completed)) or events), timeout=10)
        time.sleep(0.5)  # a second completion would have been published by now
        events += drain(connection, completed)
        assert [e["payload"]["task_id"] for e in events] == [uploaded["last_task_id"]]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        connection.close()


@pytest.fixture
def dead_neo(stack_config, neighbours):
    """A files app and worker whose neo service is down (a closed port): every attempt fails."""
    import uuid

    from services.files.worker import run
    from shared.events import delete_topology

    tag = uuid.uuid4().hex[:8]
    config = {**stack_config, **neighbours, "NEO_URL": f"http://127.0.0.1:{free_port()}",
              "EVENT_EXCHANGE": f"{stack_config['EVENT_EXCHANGE']}.dead{tag}", "CONVERSION_RETRY_DELAY_MS": 100}
    app = create_app(config)
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(config,), kwargs={"stop": stop, "configure_logs": False,
                                                                   "max_backoff": 0.5, "poll_interval": 0.05}, daemon=True)
    thread.start()
    yield app
    stop.set()
    thread.join(20)
    delete_topology(config["AMQP_URL"], config["EVENT_EXCHANGE"], worker_queues(config))


def test_a_task_that_keeps_failing_ends_failed_after_bounded_retries(dead_neo, neighbours):
    api = Api(dead_neo.test_client(), 8_800_002, "unlucky", neighbours)
    uploaded = api.upload("signal.csv", b"1,2,3\n")
    fields = api.wait_state(uploaded["id"], timeout=30)
    assert fields["current_state"] == "failed"
    limit = dead_neo.extensions["files_context"].limits.conversion_max_attempts
    assert f"gave up after {limit} attempts" in fields["operations_log"]
    assert "neo service does not answer" in fields["operations_log"]
    doc = dead_neo.extensions["mongo_db"]["datafiles"].find_one({"_id": number(uploaded["id"])})
    assert doc["conversion"]["attempts"] == limit
