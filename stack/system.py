"""The whole system as local processes: MongoDB stand-in, RabbitMQ check, services, gateway."""
from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import requests

from stack.mongo import start_secantus
from stack.procs import Child, free_port, port_open, venv_bin, wait_until
from stack.rabbit import DEFAULT_AMQP_URL, ensure_rabbitmq, wait_for_queues

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    default_port: int
    has_worker: bool = True

    @property
    def url_variable(self) -> str:
        return f"{self.name.upper()}_URL"

    @property
    def is_built(self) -> bool:
        try:
            return importlib.util.find_spec(f"services.{self.name}.app") is not None
        except ModuleNotFoundError:
            return False


# Services appear here as their issues land; a service whose package is missing is reported by the
# gateway as "not built yet" (503).
SERVICES = (
    ServiceSpec("auth", 8001),
    ServiceSpec("neo", 8002),
    ServiceSpec("metadata", 8003),
    ServiceSpec("files", 8004),
    ServiceSpec("acl", 8005),
)


def consumer_queues(exchange: str) -> list[str]:
    """The broker queues of every built service's worker (`QUEUES` in its worker module)."""
    from services.files.worker import conversion_queue
    from shared.events import queue_name

    names = [conversion_queue({"EVENT_EXCHANGE": exchange})]
    for spec in SERVICES:
        if spec.is_built and spec.has_worker:
            worker = importlib.import_module(f"services.{spec.name}.worker")
            names.extend(queue_name(exchange, purpose) for purpose in getattr(worker, "QUEUES", ()))
    return names


# The processes given each secret (DESIGN.md section 8: a process holds only the secrets it needs).
# Every process gets INTERNAL_SECRET, for the identity header and internal calls; the auth worker
# signs no session token, and only the acl worker sends mail.
SECRET_HOLDERS: dict[str, frozenset[str]] = {
    "JWT_SECRET": frozenset({"auth", "gateway"}),
    "SMTP_PASSWORD": frozenset({"acl-worker"}),
}


def process_env(process: str, env: Mapping[str, str]) -> dict[str, str]:
    """`env` without the secrets that `process` (`auth`, `auth-worker`, ..., `gateway`) does not need."""
    return {key: value for key, value in env.items() if key not in SECRET_HOLDERS or process in SECRET_HOLDERS[key]}


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """JWT and internal secrets: from the environment, else generated once and kept in var/.

    Real secrets on every run, so the system needs no GNODE_DEV_MODE (and a published secret given
    in the environment is refused by the processes like anywhere else)."""
    stored: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if value:
                stored[key.strip()] = value.strip()
    for key in ("JWT_SECRET", "INTERNAL_SECRET"):
        stored.setdefault(key, secrets.token_urlsafe(48))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in stored.items()))
    path.chmod(0o600)
    return {key: os.environ.get(key) or value for key, value in stored.items()}


@dataclass
class System:
    var_dir: Path
    gateway_port: int = 8000
    service_ports: dict[str, int] = field(default_factory=dict)
    mongo_url: str | None = None
    amqp_url: str | None = None
    mongo_port: int = 27217
    random_ports: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.service_ports[name]}"

    def start(self, *, say=print, timeout: float = 90.0) -> None:
        try:
            self._start(say, timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, say, timeout: float) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if port_open("127.0.0.1", self.gateway_port):
            raise RuntimeError(f"port {self.gateway_port} is taken: is the system already running? (make down)")
        env = self._base_env(say)
        built = [spec for spec in SERVICES if spec.is_built]
        for spec in built:
            self.service_ports.setdefault(spec.name, free_port() if self.random_ports else spec.default_port)
        # Every service gets the URLs of all built services (NEO_URL, METADATA_URL, ...) for its
        # internal calls; the gateway gets them to route.
        urls = {spec.url_variable: self.service_url(spec.name) for spec in built}
        for spec in built:
            self._start_service(spec, {**env, **urls})
        gateway_env = {**env, **urls}
        self._start_gunicorn("gateway", "gateway.app:create_app()", self.gateway_port, gateway_env)
        for spec in built:
            self._wait_ready(spec.name, f"{self.service_url(spec.name)}/readyz", timeout)
        self._wait_ready("gateway", f"{self.gateway_url}/readyz", timeout)
        # An event published before its consumer's queue exists would reach nobody.
        exchange = env.get("EVENT_EXCHANGE") or "gnode"
        undeclared = wait_for_queues(self.amqp_url, consumer_queues(exchange), timeout=timeout)
        if undeclared:
            raise RuntimeError(f"the workers did not declare their queues within {timeout:.0f} s: {', '.join(undeclared)}")
        missing = [spec.name for spec in SERVICES if not spec.is_built]
        if missing:
            say(f"not built yet (the gateway answers 503 for their routes): {', '.join(missing)}")

    def _base_env(self, say) -> dict[str, str]:
        env = dict(os.environ)
        env.update(load_or_create_secrets(self.var_dir / "secrets.env"))
        if not self.mongo_url:
            say(f"starting SecantusDB (MongoDB stand-in) on 127.0.0.1:{self.mongo_port}, data in {self.var_dir / 'mongo'}")
            child, self.mongo_url = start_secantus(
                storage=self.var_dir / "mongo", log_path=self.var_dir / "log" / "mongodb.log", port=self.mongo_port
            )
            self.children.append(child)
        self.amqp_url = ensure_rabbitmq(self.amqp_url or DEFAULT_AMQP_URL)
        env.update(
            MONGO_URL=self.mongo_url,
            AMQP_URL=self.amqp_url,
            DATA_DIR=str(self.var_dir / "data"),
            FILES_DIR=str(self.var_dir / "files"),
            PYTHONPATH=str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        )
        env.update(self.extra_env)
        return env

    def _start_service(self, spec: ServiceSpec, env: dict[str, str]) -> None:
        port = self.service_ports[spec.name]
        self._start_gunicorn(spec.name, f"services.{spec.name}.app:create_app()", port, env)
        if spec.has_worker:
            name = f"{spec.name}-worker"
            worker = Child(
                name=name,
                argv=[sys.executable, "-m", f"services.{spec.name}.worker"],
                env=process_env(name, env),
                log_path=self.var_dir / "log" / f"{spec.name}-worker.log",
            )
            self.children.append(worker.start())

    def _start_gunicorn(self, name: str, app_spec: str, port: int, env: dict[str, str]) -> None:
        metrics_dir = self.var_dir / "prometheus" / name
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        child = Child(
            name=name,
            argv=[venv_bin("gunicorn"), "-c", "python:shared.gunicorn_conf", "-b", f"127.0.0.1:{port}",
                  "--name", f"gnode-{name}", app_spec],
            env={**process_env(name, env), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
            log_path=self.var_dir / "log" / f"{name}.log",
        )
        self.children.append(child.start())

    def _wait_ready(self, name: str, url: str, timeout: float) -> None:
        child = next(c for c in self.children if c.name == name)

        def ready() -> bool:
            if not child.alive:
                raise RuntimeError(f"{name} exited during start-up:\n{child.log_tail()}")
            try:
                return requests.get(url, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        if not wait_until(ready, timeout=timeout, interval=0.2):
            raise RuntimeError(f"{name} did not become ready at {url} within {timeout:.0f} s:\n{child.log_tail()}")

    def delete_broker_topology(self, exchange: str) -> None:
        """Delete `exchange`, its dead-letter exchange and the queues the workers declared on it
        (test and bench runs use an exchange of their own on a shared broker)."""
        from shared.events import delete_topology

        delete_topology(self.amqp_url or DEFAULT_AMQP_URL, exchange, consumer_queues(exchange))

    def dead_children(self) -> list[Child]:
        return [child for child in self.children if not child.alive]

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
