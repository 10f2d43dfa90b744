"""A RabbitMQ node of a test's own (own port, own data directory), that it may stop and restart.

The machine's broker is shared by every session and CI run, so a test that restarts a broker
starts this one instead: `rabbitmq-server` with its own node name, ports and mnesia directory.
Stopping it is SIGTERM (a clean shutdown: durable queues and persistent messages survive).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

from stack.procs import free_port, port_open, wait_until

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def available() -> bool:
    return os.path.exists(SERVER) or shutil.which("rabbitmq-server") is not None


class PrivateRabbit:
    def __init__(self, base: Path):
        self.base = base
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"gnodetest{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def start(self, timeout: float = 60.0) -> "PrivateRabbit":
        (self.base / "log").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
               "RABBITMQ_DIST_PORT": str(self.dist_port), "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
               "RABBITMQ_LOG_BASE": str(self.base / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
               "RABBITMQ_CONFIG_FILE": str(self.base / "no-config")}
        server = SERVER if os.path.exists(SERVER) else shutil.which("rabbitmq-server")
        with open(self.base / "log" / "server.out", "ab") as out:
            self.process = subprocess.Popen([server], env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        if not wait_until(lambda: port_open("127.0.0.1", self.port), timeout=timeout, interval=0.2):
            self.stop()
            raise RuntimeError(f"the private RabbitMQ did not start; see {self.base / 'log'}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        wait_until(lambda: not port_open("127.0.0.1", self.port), timeout=timeout, interval=0.2)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
