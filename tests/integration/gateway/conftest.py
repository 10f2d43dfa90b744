"""Fake upstream services and the gateway, for real HTTP through it.

The gateway runs under gunicorn as a subprocess (the production command), configured by
environment variables to reach the fakes: auth and files in-process (so tests can steer them),
neo under gunicorn (keep-alive, to see upstream connections reused). Tests needing another
gateway configuration run one in-process under werkzeug's threaded server. Either way requests
and bodies really stream over sockets.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
import requests

from gateway.app import create_app
from shared.tokens import issue_token
from stack.procs import Child, free_port, port_open, venv_bin, wait_until

from .fakes import INTERNAL_SECRET, JWT_SECRET, FakeService, ServerThread

REPO = Path(__file__).resolve().parents[3]


def _gunicorn_child(name: str, app: str, port: int, env: dict[str, str], log_path: Path, *options: str) -> Child:
    argv = [venv_bin("gunicorn"), *options, "--no-control-socket", "--chdir", str(REPO),
            "-b", f"127.0.0.1:{port}", app]
    child = Child(name=name, argv=argv, env=env, log_path=log_path).start()
    if not wait_until(lambda: port_open("127.0.0.1", port) or not child.alive, timeout=30) or not child.alive:
        child.stop()
        pytest.fail(f"{name} did not start:\n{child.log_tail()}")
    wait_until(lambda: _worker_up(child), timeout=10)
    return child


@pytest.fixture(scope="session")
def fakes(tmp_path_factory):
    """({name: in-process FakeService}, {name: url}) for auth, files (in-process) and neo (gunicorn)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request of the fakes
    services = {name: FakeService(name) for name in ("auth", "files")}
    servers = {name: ServerThread(app) for name, app in services.items()}
    for name, server in servers.items():
        services[name].base_url = server.url
    urls = {name: server.url for name, server in servers.items()}
    neo_port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    neo = _gunicorn_child("fake neo", "tests.integration.gateway.fakes:FakeService('neo')", neo_port, env,
                          tmp_path_factory.mktemp("fake-neo") / "neo.log",
                          "-k", "gthread", "-w", "1", "--threads", "4", "--keep-alive", "10")
    urls["neo"] = f"http://127.0.0.1:{neo_port}"
    yield services, urls
    neo.stop()
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def dead_url():
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def gateway_env(urls: dict[str, str], dead_url: str) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PROMETHEUS_MULTIPROC_DIR",):
        env.pop(key, None)
    env.update(
        AUTH_URL=urls["auth"],
        NEO_URL=urls["neo"],
        FILES_URL=urls["files"],
        METADATA_URL=dead_url,
        ACL_URL="",
        JWT_SECRET=JWT_SECRET,
        INTERNAL_SECRET=INTERNAL_SECRET,
        REVOCATION_POLL_SECONDS="0.2",
        UPSTREAM_READ_TIMEOUT="30",
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="4",
        LOG_LEVEL="INFO",
        PYTHONPATH=str(REPO),
    )
    return env


class Gateway:
    def __init__(self, child: Child, url: str):
        self.child = child
        self.url = url

    def worker_pids(self) -> list[int]:
        assert self.child.process is not None
        pid = self.child.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(p) for p in children]

    def log_tail(self, lines: int = 60) -> str:
        return self.child.log_tail(lines)


@pytest.fixture(scope="session")
def gateway(fakes, dead_url, tmp_path_factory):
    """The gateway under gunicorn (one worker, four threads), as in production."""
    _, urls = fakes
    port = free_port()
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    child = _gunicorn_child("gateway", "gateway.app:create_app()", port, gateway_env(urls, dead_url), log_path,
                            "-c", str(REPO / "shared" / "gunicorn_conf.py"))
    yield Gateway(child, f"http://127.0.0.1:{port}")
    child.stop()
    text = log_path.read_text(errors="replace")
    # a body cut by the upstream is cut for the client too: gunicorn logs those aborts itself
    unexpected = text.count("Error handling request") > text.count("upstream body broken") or (
        "Traceback" in text and "upstream body broken" not in text)
    if unexpected or os.environ.get("GATEWAY_TEST_SHOW_LOG"):
        sys.stderr.write(f"\n--- gateway log ---\n{child.log_tail(200)}\n")


def _worker_up(child: Child) -> bool:
    pid = child.process.pid if child.process else 0
    try:
        return bool(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        return False


@pytest.fixture
def make_gateway(fakes, dead_url):
    """An in-process gateway (threaded werkzeug server) with config overrides."""
    _, urls = fakes
    started = []

    def make(**overrides) -> str:
        config = {
            "AUTH_URL": urls["auth"],
            "NEO_URL": urls["neo"],
            "FILES_URL": urls["files"],
            "METADATA_URL": "",
            "ACL_URL": "",
            "JWT_SECRET": JWT_SECRET,
            "INTERNAL_SECRET": INTERNAL_SECRET,
            "REVOCATION_POLL_SECONDS": 0.2,
            "LOG_FORMAT": "text",
            **overrides,
        }
        app = create_app(config)
        server = ServerThread(app)
        started.append((app, server))
        return server.url

    yield make
    for app, server in started:
        app.extensions["gateway"].stop()
        server.stop()


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False
        yield session


def token_for(user_id: int = 7, username: str = "bob", *, ttl: int = 3600, now: float | None = None,
              secret: str = JWT_SECRET):
    return issue_token(user_id=user_id, username=username, secret=secret, ttl_seconds=ttl, now=now)
