"""What a sandbox child does to itself before it touches untrusted bytes.

In this order, each step a one-way door:
1. it dies with the worker (a parent-death signal), and resource limits: CPU seconds, address
   space, largest file written, open files, no core dumps;
2. its own network namespace when the kernel lets it (root, or where user namespaces are allowed);
3. no capabilities left, in every set and the bounding set (a root child keeps uid 0 but loses
   what makes root special: no device nodes, no modules, no raw I/O);
4. Landlock: read-only access to the interpreter, the libraries and the code, read access to its
   one input file, read-write access to its scratch folder, nothing else; no TCP; nothing
   executable;
5. seccomp (seccomp.py): no new process, no program, no socket but a Unix one, none of the
   kernel's riskier interfaces.
"""
from __future__ import annotations

import ctypes
import os
import resource
import signal
from dataclasses import dataclass, field

from shared.sandbox import landlock, seccomp

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_LAST_CAP_FILE = "/proc/sys/kernel/cap_last_cap"
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38


@dataclass(frozen=True)
class ChildLimits:
    cpu_seconds: int
    memory_bytes: int
    output_bytes: int
    open_files: int = 256


@dataclass
class Report:
    """How far the confinement went; returned with the child's result."""

    filesystem: str = "none"  # "landlock-<abi>" or "none"
    network: list[str] = field(default_factory=list)  # "namespace", "landlock-tcp", "seccomp-unix-only"
    capabilities_dropped: bool = False
    seccomp: bool = False


def set_limits(limits: ChildLimits) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def isolate_network() -> bool:
    """A network namespace of its own (only a loopback that is down); False when not permitted."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) == 0:
        return True
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        return False
    try:  # keep the same ids inside the new user namespace, so file ownership means the same
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError:
        pass
    return True


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> bool:
    """Empty the bounding, effective, permitted and inheritable capability sets."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        with open(_CAP_LAST_CAP_FILE) as f:
            last = int(f.read().strip())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails without CAP_SETPCAP: nothing to drop then
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    return libc.capset(ctypes.byref(header), data) == 0


def die_with(parent: int) -> None:
    """SIGKILL when the worker that started this child goes away (nothing outlives its watcher)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it went away before the signal was armed
        os._exit(1)


def confine(*, limits: ChildLimits, read: list[str], read_write: list[str], require_filesystem: bool,
            parent: int | None = None) -> Report:
    """All five steps; raises OSError (Landlock or seccomp unavailable) when `require_filesystem`."""
    report = Report()
    if parent is not None:
        die_with(parent)
    set_limits(limits)
    if isolate_network():
        report.network.append("namespace")
    report.capabilities_dropped = drop_capabilities()
    try:
        achieved = landlock.restrict_self(read=read, read_write=read_write)
        report.filesystem = f"landlock-{achieved.abi}"
        if achieved.network:
            report.network.append("landlock-tcp")
    except landlock.LandlockUnavailable:
        if require_filesystem:
            raise
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # seccomp needs it
    try:
        seccomp.install()
        report.seccomp = True
        report.network.append("seccomp-unix-only")
    except seccomp.SeccompUnavailable:
        if require_filesystem:
            raise
    return report
