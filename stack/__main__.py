"""`python -m stack run|up|down|status`: the commands behind `make run`, `make up`, `make down`."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from stack.procs import wait_until
from stack.system import REPO_ROOT, System

VAR_DIR = Path(os.environ.get("GNODE_VAR_DIR", REPO_ROOT / "var"))
PID_FILE = VAR_DIR / "stack.pid"


def _system() -> System:
    return System(
        var_dir=VAR_DIR,
        gateway_port=int(os.environ.get("GATEWAY_PORT", "8000")),
        mongo_url=os.environ.get("MONGO_URL") or None,
        amqp_url=os.environ.get("AMQP_URL") or None,
        mongo_port=int(os.environ.get("MONGO_PORT", "27217")),
    )


def _banner(system: System) -> str:
    return f"""
  G-Node Data API is up: {system.gateway_url}/
    health:      {system.gateway_url}/healthz
    log in page: {system.gateway_url}/account/login/
    logs:        {VAR_DIR / 'log'}/

  Create the first user:
    make user U=alice E=alice@example.org        (asks for a password)
  then:
    curl -i -d username=alice -d password=... {system.gateway_url}/account/authenticate/
"""


def run() -> int:
    system = _system()
    stopping = threading.Event()

    def _stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    started = time.monotonic()
    try:
        system.start(say=lambda text: print(text, flush=True))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    print(_banner(system) + f"  (started in {time.monotonic() - started:.1f} s; Ctrl-C stops everything)\n", flush=True)
    while not stopping.wait(1.0):
        for child in system.dead_children():
            print(f"warning: {child.name} exited; see {child.log_path}\n{child.log_tail(10)}", file=sys.stderr, flush=True)
            system.children.remove(child)
    print("stopping ...", flush=True)
    system.stop()
    print("stopped.", flush=True)
    return 0


def up() -> int:
    if _running_pid():
        print(f"already running (pid {_running_pid()}); `make down` stops it.")
        return 0
    VAR_DIR.joinpath("log").mkdir(parents=True, exist_ok=True)
    log_path = VAR_DIR / "log" / "stack.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stack", "run"], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO_ROOT,
        )
    PID_FILE.write_text(str(process.pid))
    url = f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8000')}"

    def healthy() -> bool:
        if process.poll() is not None:
            return True
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(healthy, timeout=120, interval=0.5)
    if process.poll() is not None or not healthy():
        print(f"the system did not come up; see {log_path}:\n" + log_path.read_text()[-3000:], file=sys.stderr)
        down()
        return 1
    print(f"up: {url}/ (logs in {VAR_DIR / 'log'}; `make down` stops it)")
    return 0


def _running_pid() -> int | None:
    try:
        pid = int(PID_FILE.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def down() -> int:
    pid = _running_pid()
    if not pid:
        print("not running.")
        PID_FILE.unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
            return False
        except OSError:
            return True

    if not wait_until(gone, timeout=30, interval=0.2):
        os.killpg(pid, signal.SIGKILL)
    PID_FILE.unlink(missing_ok=True)
    print("stopped.")
    return 0


def status() -> int:
    pid = _running_pid()
    print(f"running (pid {pid})" if pid else "not running")
    return 0 if pid else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stack")
    parser.add_argument("command", choices=["run", "up", "down", "status"])
    command = parser.parse_args().command
    return {"run": run, "up": up, "down": down, "status": status}[command]()


if __name__ == "__main__":
    sys.exit(main())
