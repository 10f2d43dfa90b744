"""Running untrusted-input parsers in a confined child process (DESIGN.md section 8).

    value = run_sandboxed("services.files.conversion.parse:main", input_path=upload, scratch=folder,
                          params={...}, settings=settings)

The child (shared/sandbox/child.py) starts from an empty environment (no secret), confines itself
(limits, network, capabilities, Landlock: see shared/sandbox/confine.py) and runs the entry
function. This side watches it: wall time, the size of what it wrote to its scratch folder, and an
optional `on_tick` callback (say, to stop when the task was cancelled). Every way it can end
becomes either the entry's return value or a SandboxFailed with a reason a user can read.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping

from shared.config import DEV_MODE_FLAG, ConfigError
from shared.sandbox.child import RESULT_NAME
from shared.sandbox.confine import ChildLimits
from shared.sandbox.outputs import open_output

log = logging.getLogger(__name__)

STDERR_NAME = ".sandbox-stderr"
MAX_RESULT_BYTES = 16 * 1024**2
_TICK_SECONDS = 0.25
_SIZE_EVERY_SECONDS = 1.0
# Libraries read these; everything else of the parent's environment (secrets first) stays behind.
_THREADS_ONE = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from shared.sandbox.child import main; main()"
_SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/localtime", "/dev/null",
                "/dev/zero", "/dev/urandom")


class SandboxFailed(Exception):
    """The child did not produce a value: `kind` says why (timeout, cpu, memory, output, crashed,
    error, unconfined, cancelled), the message says it in words."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up safely here (a misconfiguration, not the input's fault)."""


@dataclass(frozen=True)
class SandboxSettings:
    cpu_seconds: int = 900
    wall_seconds: float = 1800.0
    memory_bytes: int = 4 * 1024**3
    output_bytes: int = 16 * 1024**3
    open_files: int = 256
    # "landlock" (refuse to run without it) or "none": no file-system confinement, for development
    # on kernels without Landlock only.
    filesystem: str = "landlock"
    forbidden: tuple[str, ...] = ()  # data folders that must stay out of reach (checked, not trusted)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, forbidden: Iterable[str] = (),
                    defaults: "SandboxSettings | None" = None) -> "SandboxSettings":
        """The settings named SANDBOX_* in `config`, the others from `defaults`. Lifting the file-system
        confinement (`SANDBOX_FILESYSTEM=none`) is refused unless the development flag is set."""
        base = defaults or cls()
        filesystem = str(config.get("SANDBOX_FILESYSTEM", base.filesystem)).strip().lower()
        if filesystem == "none" and config.get(DEV_MODE_FLAG) is not True:
            raise ConfigError(f"SANDBOX_FILESYSTEM=none lets uploaded files be read with every file the worker can "
                              f"read: allowed only with {DEV_MODE_FLAG}=true, on a development machine")
        return cls(cpu_seconds=int(config.get("SANDBOX_CPU_SECONDS", base.cpu_seconds)),
                   wall_seconds=float(config.get("SANDBOX_WALL_SECONDS", base.wall_seconds)),
                   memory_bytes=int(config.get("SANDBOX_MEMORY_BYTES", base.memory_bytes)),
                   output_bytes=int(config.get("SANDBOX_OUTPUT_BYTES", base.output_bytes)),
                   filesystem=filesystem,
                   forbidden=tuple(str(Path(p).resolve()) for p in forbidden if p))

    def child_limits(self) -> ChildLimits:
        return ChildLimits(cpu_seconds=self.cpu_seconds, memory_bytes=self.memory_bytes,
                           output_bytes=self.output_bytes, open_files=self.open_files)


# The settings every service that runs a sandbox reads from its environment (shared/config.py style).
SANDBOX_DEFAULTS: dict[str, Any] = {
    "SANDBOX_CPU_SECONDS": SandboxSettings.cpu_seconds,
    "SANDBOX_WALL_SECONDS": SandboxSettings.wall_seconds,
    "SANDBOX_MEMORY_BYTES": SandboxSettings.memory_bytes,
    "SANDBOX_OUTPUT_BYTES": SandboxSettings.output_bytes,
    "SANDBOX_FILESYSTEM": SandboxSettings.filesystem,
}


def _package_dir(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(list(spec.submodule_search_locations)[0]).resolve())


def code_root() -> str:
    """The folder holding our `shared` package (the checkout, or site-packages when installed)."""
    return str(Path(__file__).resolve().parents[2])


def readable_paths() -> list[str]:
    """What the child may read: the interpreter, its libraries, system libraries and our code."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *_SYSTEM_READ}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    prefixes = [str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix)]
    for entry in sys.path:  # installed packages only: never the working folder or a PYTHONPATH checkout
        if not entry or not os.path.exists(entry):
            continue
        resolved = str(Path(entry).resolve())
        if "site-packages" in resolved or "dist-packages" in resolved or any(_beneath(resolved, p) for p in prefixes):
            paths.add(resolved)
    for package in ("shared", "services"):
        found = _package_dir(package)
        if found:
            paths.add(found)
    return sorted(str(Path(p).resolve()) for p in paths if p and os.path.exists(p))


def _beneath(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def check_policy(read: list[str], settings: SandboxSettings, scratch: Path) -> None:
    for forbidden in settings.forbidden:
        for allowed in read:
            if _beneath(forbidden, allowed):
                raise SandboxUnavailable(f"the data folder {forbidden} lies inside {allowed}, which the sandbox must "
                                         "be able to read (libraries or code): move the data folder elsewhere")
    if settings.filesystem not in ("landlock", "none"):
        raise SandboxUnavailable(f"SANDBOX_FILESYSTEM must be 'landlock' or 'none', not {settings.filesystem!r}")
    if any(_beneath(str(scratch.resolve()), allowed) for allowed in read):
        raise SandboxUnavailable(f"the scratch folder {scratch} lies inside a folder every sandbox may read")


def child_environment(scratch: Path) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(scratch),
           "TMPDIR": str(scratch / "tmp"), "XDG_CACHE_HOME": str(scratch / ".cache"),
           "MPLCONFIGDIR": str(scratch / ".cache"), "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1",
           "HDF5_PLUGIN_PATH": str(scratch / ".no-plugins")}
    env.update({name: "1" for name in _THREADS_ONE})
    return env


def _folder_size(folder: Path) -> int:
    total = 0
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
        except OSError:
            continue
    return total


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _mebibytes(n: int) -> str:
    return f"{n / 1024**2:.0f} MiB" if n >= 1024**2 else f"{n} bytes"


def _ended_by_signal(number: int, settings: SandboxSettings) -> SandboxFailed:
    if number == signal.SIGXCPU:
        return SandboxFailed("cpu", f"stopped: it used more than {settings.cpu_seconds} CPU seconds (the CPU-time limit)")
    if number == signal.SIGXFSZ:
        return SandboxFailed("output", f"stopped: it wrote more than {_mebibytes(settings.output_bytes)} "
                                       "(the output-size limit)")
    if number == signal.SIGKILL:
        return SandboxFailed("memory", "stopped by the system, most likely for lack of memory")
    name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
    return SandboxFailed("crashed", f"the reader crashed ({name}); a file that needs more than the memory limit of "
                                    f"{_mebibytes(settings.memory_bytes)} can end this way")


def _read_result(scratch: Path) -> dict[str, Any] | None:
    try:
        with open_output(scratch, RESULT_NAME, max_bytes=MAX_RESULT_BYTES) as f:
            outcome = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return outcome if isinstance(outcome, dict) else None


def _stderr_tail(stderr: BinaryIO, size: int = 2000) -> str:
    """The end of what the child wrote to stderr, through the worker's own descriptor of it."""
    try:
        stderr.seek(max(0, os.fstat(stderr.fileno()).st_size - size))
        return stderr.read(size).decode("utf-8", "replace")
    except OSError:
        return ""


def run_sandboxed(entry: str, *, input_path: Path | None, scratch: Path, params: Mapping[str, Any],
                  settings: SandboxSettings, on_tick: Callable[[], None] | None = None,
                  code_paths: Iterable[Path] = (), env: Mapping[str, str] | None = None) -> Any:
    """The value `entry` returned in a confined child; SandboxFailed when it did not return one.

    `scratch` must be an empty folder of this run's own; the caller removes it. An exception raised
    by `on_tick` stops the child and is raised here. `code_paths`: more folders of code the child
    may read (the entry's own package when it lies outside `shared` and `services`, as in tests).
    `env`: more environment variables for the child (settings of its libraries, never secrets)."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "tmp").mkdir(exist_ok=True)
    read = sorted({*readable_paths(), *(str(Path(p).resolve()) for p in code_paths)})
    check_policy(read, settings, scratch)
    orders = {"entry": entry, "input": str(Path(input_path).resolve()) if input_path else None,
              "scratch": str(scratch.resolve()), "params": dict(params), "limits": asdict(settings.child_limits()),
              "read": read, "require_filesystem": settings.filesystem == "landlock"}
    started = time.monotonic()
    with open(scratch / STDERR_NAME, "w+b") as stderr:
        process = subprocess.Popen([sys.executable, "-I", "-B", "-c", _BOOT, code_root()], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=stderr, cwd=str(scratch),
                                   env={**child_environment(scratch), **(env or {})}, close_fds=True,
                                   start_new_session=True)
        try:
            process.stdin.write(json.dumps({**orders, "parent": os.getpid()}).encode())
            process.stdin.close()
        except BrokenPipeError:
            pass
        failure = _watch(process, scratch, settings, started, on_tick)
        if failure is not None:
            raise failure
        return _outcome(process, scratch, settings, entry, stderr)


def _watch(process: subprocess.Popen, scratch: Path, settings: SandboxSettings, started: float,
           on_tick: Callable[[], None] | None) -> SandboxFailed | None:
    sized_at = started
    while True:
        try:
            process.wait(_TICK_SECONDS)
            return None
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if now - started > settings.wall_seconds:
            _kill(process)
            return SandboxFailed("timeout", f"stopped after {settings.wall_seconds:g} s: it took longer than the "
                                            "wall-time limit")
        if now - sized_at >= _SIZE_EVERY_SECONDS:
            sized_at = now
            if _folder_size(scratch) > settings.output_bytes:
                _kill(process)
                return SandboxFailed("output", f"stopped: it wrote more than {_mebibytes(settings.output_bytes)} "
                                               "(the output-size limit)")
        if on_tick is not None:
            try:
                on_tick()
            except BaseException:
                _kill(process)
                raise


def _outcome(process: subprocess.Popen, scratch: Path, settings: SandboxSettings, entry: str,
             stderr: BinaryIO) -> Any:
    code = process.returncode
    if code < 0:
        raise _ended_by_signal(-code, settings)
    outcome = _read_result(scratch)
    if outcome is None:
        log.warning("sandbox %s ended with code %s and no result; stderr: %s", entry, code, _stderr_tail(stderr))
        raise SandboxFailed("crashed", f"the reader ended without a result (exit code {code})")
    if not outcome.get("ok"):
        kind = str(outcome.get("kind") or "error")
        message = str(outcome.get("message") or "failed")
        if kind == "memory":
            message = f"stopped: it needed more than the memory limit of {_mebibytes(settings.memory_bytes)}"
        elif kind == "output":
            message = f"stopped: it wrote more than {_mebibytes(settings.output_bytes)} (the output-size limit)"
        if kind == "unconfined":
            log.error("sandbox %s: %s", entry, message)
        raise SandboxFailed(kind, message[:1000])
    return outcome.get("value")
