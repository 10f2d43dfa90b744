"""Entry functions the sandbox tests run inside a confined child (they try what a hostile reader would)."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path


def echo(*, input_path, scratch, params):
    data = input_path.read_bytes() if input_path else b""
    (scratch / "out.txt").write_bytes(data)
    return {"read": len(data), "params": params}


def snoop(*, input_path, scratch, params):
    """What a compromised reader would try: the environment, other files, the network, programs."""
    found = {"environ": dict(os.environ)}
    for path in params.get("paths", []):
        try:
            with open(path, "rb") as f:
                found[path] = f.read(200).decode("latin-1")
        except OSError as exc:
            found[path] = f"denied: {exc.errno}"
    try:
        socket.create_connection(("127.0.0.1", int(params.get("port", 5672))), timeout=1).close()
        found["tcp"] = "connected"
    except OSError as exc:
        found["tcp"] = f"denied: {exc}"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"leak", ("127.0.0.1", int(params.get("port", 5672))))
        found["udp"] = "sent"
    except OSError as exc:
        found["udp"] = f"denied: {exc}"
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        found["fork"] = "forked"
    except OSError as exc:
        found["fork"] = f"denied: {exc}"
    try:
        import threading

        done = []
        worker = threading.Thread(target=lambda: done.append(1))
        worker.start()
        worker.join()
        found["thread"] = "ran" if done else "did not run"
    except RuntimeError as exc:
        found["thread"] = f"denied: {exc}"
    try:
        import subprocess

        subprocess.run(["/bin/true"], check=True)
        found["exec"] = "ran"
    except (OSError, Exception) as exc:
        found["exec"] = f"denied: {exc}"
    try:
        (Path(params["write_to"]) / "planted").write_text("x")
        found["write"] = "written"
    except (OSError, KeyError) as exc:
        found["write"] = f"denied: {exc}"
    return found


def spin(*, input_path, scratch, params):
    while True:
        pass


def sleep(*, input_path, scratch, params):
    time.sleep(3600)


def hog(*, input_path, scratch, params):
    blocks = []
    while True:
        blocks.append(bytearray(64 * 1024**2))


def flood(*, input_path, scratch, params):
    with open(scratch / "flood.bin", "wb") as f:
        while True:
            f.write(b"\0" * 1024**2)


def fail(*, input_path, scratch, params):
    raise ValueError("this content is wrong")


def crash(*, input_path, scratch, params):
    import ctypes

    ctypes.string_at(0)


def hdf5_without_rules(*, input_path, scratch, params):
    """The HDF5 converter run on a file WITHOUT the HDF5 rules first: what the sandbox alone stops."""
    from services.files.conversion.converters.hdf5 import parse_hdf5
    from services.files.conversion.detect import HDF5, Candidate
    from services.files.conversion.plan import PlanWriter
    from services.files.conversion.source import ParseLimits, Source

    plan = PlanWriter(scratch / "out", title="probe")
    try:
        parse_hdf5(Source(path=input_path, title="probe", limits=ParseLimits()), plan, Candidate(HDF5))
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        plan.close()
    return {"read": sorted(p.name for p in (scratch / "out" / "arrays").iterdir())}
