"""The MongoDB side: `MONGO_URL` when given, otherwise a SecantusDB server started as a process.

SecantusDB is GPL-licensed, so it is only ever run as its own program, never imported.
"""
from __future__ import annotations

import os
from pathlib import Path

from stack.procs import Child, free_port, port_open, venv_bin, wait_until


def start_secantus(*, storage: Path, log_path: Path, port: int | None = None) -> tuple[Child, str]:
    port = port or free_port()
    storage.mkdir(parents=True, exist_ok=True)
    child = Child(
        name="mongodb (SecantusDB)",
        argv=[venv_bin("secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
              "--storage-path", str(storage), "--log-level", "WARNING"],
        env=dict(os.environ),
        log_path=log_path,
    ).start()
    if not wait_until(lambda: port_open("127.0.0.1", port) or not child.alive, timeout=60):
        child.stop()
        raise RuntimeError(f"SecantusDB did not start on port {port}:\n{child.log_tail()}")
    if not child.alive:
        raise RuntimeError(f"SecantusDB exited at start (is port {port} taken?):\n{child.log_tail()}")
    return child, f"mongodb://127.0.0.1:{port}"
