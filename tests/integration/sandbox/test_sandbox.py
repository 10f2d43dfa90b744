"""The sandbox that parses untrusted bytes (shared/sandbox): a real confined child process, each
test trying what a compromised reader would. Probes: tests/integration/sandbox/probes.py."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import h5py
import pytest

from shared.sandbox import SandboxFailed, SandboxSettings, SandboxUnavailable, run_sandboxed
from shared.sandbox.landlock import abi_version

TESTS = Path(__file__).resolve().parents[2]
SECRETS = {"JWT_SECRET": "jwt-secret-the-child-must-not-see", "INTERNAL_SECRET": "internal-secret-the-child-must-not-see"}

pytestmark = pytest.mark.skipif(abi_version() < 1, reason="this kernel has no Landlock")


@pytest.fixture
def area(tmp_path):
    """A service's data folder with two users' uploads, and a scratch folder inside it."""
    data = tmp_path / "files"
    (data / "objects").mkdir(parents=True)
    mine, theirs = data / "objects" / "1", data / "objects" / "2"
    mine.write_bytes(b"my upload")
    theirs.write_bytes(b"another user's upload")
    return {"data": data, "mine": mine, "theirs": theirs, "scratch": data / "tmp" / "run"}


@pytest.fixture
def secrets_in_environment(monkeypatch):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)


def settings(area, **overrides):
    values = dict(cpu_seconds=5, wall_seconds=20.0, memory_bytes=2 * 1024**3, output_bytes=32 * 1024**2,
                  forbidden=(str(area["data"]),))
    values.update(overrides)
    return SandboxSettings(**values)


def run(probe, area, params=None, **overrides):
    return run_sandboxed(f"tests.integration.sandbox.probes:{probe}", input_path=area["mine"], scratch=area["scratch"],
                         params=params or {}, settings=settings(area, **overrides), code_paths=[TESTS])


def test_the_child_reads_its_input_and_writes_its_scratch(area):
    assert run("echo", area, {"x": 1}) == {"read": 9, "params": {"x": 1}}
    assert (area["scratch"] / "out.txt").read_bytes() == b"my upload"


def test_the_child_sees_no_secret_no_other_upload_no_network_and_runs_nothing(area, secrets_in_environment):
    with socket.socket() as listener:  # a TCP service on this machine, like MongoDB or RabbitMQ
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        found = run("snoop", area, {"paths": [str(area["theirs"]), str(area["mine"]), "/proc/self/environ",
                                               f"/proc/{os.getpid()}/environ", "/etc/shadow", str(TESTS / "conftest.py")],
                                    "port": port, "write_to": str(area["data"])})
    text = repr(found)
    assert not any(secret in text for secret in SECRETS.values())
    assert not set(found["environ"]) & set(SECRETS)
    assert found[str(area["mine"])] == "my upload"
    for path in (str(area["theirs"]), "/proc/self/environ", f"/proc/{os.getpid()}/environ", "/etc/shadow"):
        assert found[path].startswith("denied"), (path, found[path])
    assert found["tcp"].startswith("denied") and found["udp"].startswith("denied")
    assert found["exec"].startswith("denied") and found["fork"].startswith("denied")
    assert found["thread"] == "ran"  # threads are not processes: readers may use them
    assert found["write"].startswith("denied") and not (area["data"] / "planted").exists()


def test_a_reader_that_loops_forever_is_stopped_at_the_cpu_limit(area):
    with pytest.raises(SandboxFailed) as failed:
        run("spin", area, cpu_seconds=2)
    assert failed.value.kind == "cpu" and "2 CPU seconds" in failed.value.message


def test_a_reader_that_waits_forever_is_stopped_at_the_wall_time_limit(area):
    with pytest.raises(SandboxFailed) as failed:
        run("sleep", area, wall_seconds=2.0)
    assert failed.value.kind == "timeout" and "wall-time limit" in failed.value.message


def test_a_reader_that_eats_memory_is_stopped_at_the_memory_limit(area):
    with pytest.raises(SandboxFailed) as failed:
        run("hog", area, memory_bytes=1024**3)
    assert failed.value.kind == "memory" and "1024 MiB" in failed.value.message


def test_a_reader_that_writes_without_end_is_stopped_at_the_output_limit(area):
    with pytest.raises(SandboxFailed) as failed:
        run("flood", area, output_bytes=8 * 1024**2)
    assert failed.value.kind == "output" and "8 MiB" in failed.value.message


def test_a_crash_and_an_error_are_reported_in_words(area):
    with pytest.raises(SandboxFailed) as crashed:
        run("crash", area)
    assert crashed.value.kind == "crashed" and "SIGSEGV" in crashed.value.message
    with pytest.raises(SandboxFailed) as failed:
        run("fail", area)
    assert failed.value.kind == "error" and failed.value.message == "ValueError: this content is wrong"


def test_a_data_folder_inside_what_the_sandbox_may_read_is_a_configuration_error(area):
    with pytest.raises(SandboxUnavailable, match="inside"):
        run("echo", area, forbidden=(str(Path(h5py.__file__).parent),))


def test_without_the_rules_hdf5_external_storage_still_reads_nothing_outside(area, tmp_path):
    """Defence in depth: even a reader that follows HDF5 external storage gets no byte of another
    upload or of the environment."""
    upload = area["mine"]
    upload.unlink()
    with h5py.File(upload, "w") as f:
        f.create_dataset("theirs", shape=(21,), dtype="u1", external=[(str(area["theirs"]), 0, 21)])
        f.create_dataset("environ", shape=(64,), dtype="u1", external=[("/proc/self/environ", 0, 64)])
    from tests.integration.sandbox import probes

    outside = tmp_path / "outside"
    outside.mkdir()
    assert "read" in probes.hdf5_without_rules(input_path=upload, scratch=outside, params={})  # unconfined, it reads
    found = run("hdf5_without_rules", area)
    assert "error" in found and "unable to open external raw data file" in found["error"], found


def test_lifting_the_file_system_confinement_needs_the_development_flag():
    from shared.config import ConfigError

    with pytest.raises(ConfigError, match="GNODE_DEV_MODE"):
        SandboxSettings.from_config({"SANDBOX_FILESYSTEM": "none"})
    assert SandboxSettings.from_config({"SANDBOX_FILESYSTEM": "none", "GNODE_DEV_MODE": True}).filesystem == "none"
    assert SandboxSettings.from_config({}).filesystem == "landlock"
