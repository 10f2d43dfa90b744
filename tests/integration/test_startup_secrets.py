"""No service, worker nor the gateway starts with the published development secrets unless
GNODE_DEV_MODE=true (issue 11, item 6): as app factories, and as the real processes."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import DEV_INTERNAL_SECRET, DEV_MODE_FLAG, ConfigError
from shared.tokens import DEV_JWT_SECRET
from stack.procs import Child, free_port, port_open, venv_bin, wait_until

REPO = Path(__file__).resolve().parents[2]
REAL_INTERNAL = "startup-internal-secret-0123456789abcdef"
REAL_JWT = "startup-jwt-secret-0123456789abcdef-xyz"
APPS = ["services.auth.app", "services.neo.app", "services.metadata.app", "services.files.app", "services.acl.app",
        "gateway.app"]
NEEDS_JWT = {"services.auth.app", "gateway.app"}


@pytest.fixture
def clean_environment(monkeypatch):
    for key in ("INTERNAL_SECRET", "JWT_SECRET", DEV_MODE_FLAG):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def base_config(mongo_url, db_prefix, tmp_path):
    return {"MONGO_URL": mongo_url, "MONGO_DB_PREFIX": db_prefix, "DATA_DIR": str(tmp_path / "data"),
            "FILES_DIR": str(tmp_path / "files"), "LOG_FORMAT": "text", "LOG_LEVEL": "WARNING"}


@pytest.mark.parametrize("module", APPS)
def test_every_app_refuses_the_published_secrets_without_the_flag(module, base_config, clean_environment):
    create_app = importlib.import_module(module).create_app
    with pytest.raises(ConfigError, match="^INTERNAL_SECRET is the published development secret"):
        create_app(base_config)
    with pytest.raises(ConfigError, match="^INTERNAL_SECRET is the published development secret"):
        create_app({**base_config, "INTERNAL_SECRET": DEV_INTERNAL_SECRET, "JWT_SECRET": REAL_JWT})
    if module in NEEDS_JWT:
        with pytest.raises(ConfigError, match="^JWT_SECRET is the published development secret"):
            create_app({**base_config, "INTERNAL_SECRET": REAL_INTERNAL})
        with pytest.raises(ConfigError, match="^JWT_SECRET is the published development secret"):
            create_app({**base_config, "INTERNAL_SECRET": REAL_INTERNAL, "JWT_SECRET": DEV_JWT_SECRET})


@pytest.mark.parametrize("module", APPS)
def test_every_app_starts_with_real_secrets_or_with_the_flag(module, base_config, clean_environment):
    create_app = importlib.import_module(module).create_app
    app = create_app({**base_config, "INTERNAL_SECRET": REAL_INTERNAL, "JWT_SECRET": REAL_JWT})
    assert app.config["INTERNAL_SECRET"] == REAL_INTERNAL
    if module in NEEDS_JWT:
        assert app.config["JWT_SECRET"] == REAL_JWT
    dev = create_app({**base_config, DEV_MODE_FLAG: True})
    assert dev.config["INTERNAL_SECRET"] == DEV_INTERNAL_SECRET
    for built in (app, dev):
        state = built.extensions.get("gateway")
        if state is not None:
            state.stop()


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("INTERNAL_SECRET", "JWT_SECRET", DEV_MODE_FLAG)}
    env.update(PYTHONPATH=str(REPO), LOG_FORMAT="text", **extra)
    return env


def _gunicorn(app_spec: str, env: dict[str, str], log_path: Path) -> tuple[Child, int]:
    port = free_port()
    child = Child(name=app_spec, argv=[venv_bin("gunicorn"), "--no-control-socket", "-w", "1", "--chdir", str(REPO),
                                       "-b", f"127.0.0.1:{port}", app_spec], env=env, log_path=log_path)
    return child.start(), port


@pytest.mark.parametrize("app_spec", ["services.auth.app:create_app()", "gateway.app:create_app()"])
def test_the_server_process_refuses_to_start_and_names_the_variable(app_spec, tmp_path):
    child, _ = _gunicorn(app_spec, _environment(INTERNAL_SECRET=REAL_INTERNAL), tmp_path / "refused.log")
    try:
        assert wait_until(lambda: not child.alive, timeout=30), "it started with the published JWT secret"
        assert child.process.returncode != 0
        assert "JWT_SECRET is the published development secret" in child.log_tail(200)
    finally:
        child.stop()


def test_the_server_process_starts_with_the_flag(tmp_path):
    child, port = _gunicorn("gateway.app:create_app()", _environment(**{DEV_MODE_FLAG: "true"}), tmp_path / "dev.log")
    try:
        assert wait_until(lambda: port_open("127.0.0.1", port) or not child.alive, timeout=30)
        assert child.alive, child.log_tail()
    finally:
        child.stop()


@pytest.mark.parametrize("service", ["auth", "neo", "metadata", "files", "acl"])
def test_the_workers_refuse_the_published_internal_secret(service, mongo_url):
    # refused before connecting to anything, so the worker exits at once
    result = subprocess.run([sys.executable, "-m", f"services.{service}.worker"], cwd=REPO, capture_output=True,
                            text=True, timeout=60, env=_environment(MONGO_URL=mongo_url))
    assert result.returncode != 0
    assert "INTERNAL_SECRET is the published development secret" in result.stderr
