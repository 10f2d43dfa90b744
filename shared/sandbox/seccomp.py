"""A seccomp filter for the sandbox child: no new process, no program, no network socket.

Landlock confines the files a child can touch; this closes what Landlock leaves open on some
kernels or cannot express:

- no process of its own: `fork`, `vfork` and `clone` without CLONE_THREAD fail (threads still
  work; `clone3` answers ENOSYS so that the C library falls back to `clone`, whose flags can be
  checked), so nothing outlives the child or escapes its process group;
- no program: `execve`, `execveat`;
- no network: `socket` and `socketpair` only for AF_UNIX (Landlock blocks TCP only from ABI 4,
  and never UDP; a network namespace needs privileges the worker may not have);
- none of the kernel's bigger attack surfaces: io_uring (whose operations no filter sees),
  ptrace, namespaces, mounts, BPF, perf events, userfaultfd, keyrings, other processes' memory,
  kernel modules.

Written as classic BPF by hand (the program is short); x86_64 and aarch64.
"""
from __future__ import annotations

import ctypes
import errno
import platform
import struct

_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_CLONE_THREAD = 0x00010000
_AF_UNIX = 1
_X32_BIT = 0x40000000
_OFFSET_NR, _OFFSET_ARCH, _OFFSET_ARG0 = 0, 4, 16  # struct seccomp_data, little-endian

# name: (x86_64, aarch64); None where the call does not exist.
_SYSCALLS = {
    "clone": (56, 220), "fork": (57, None), "vfork": (58, None), "clone3": (435, 435),
    "execve": (59, 221), "execveat": (322, 281),
    "socket": (41, 198), "socketpair": (53, 199),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "ptrace": (101, 117), "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39),
    "pivot_root": (155, 41), "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "init_module": (175, 105),
    "finit_module": (313, 273), "kexec_load": (246, 104),
}
_ARCHES = {"x86_64": (0xC000003E, 0), "aarch64": (0xC00000B7, 1)}
_DENIED = ("fork", "vfork", "execve", "execveat", "io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace",
           "unshare", "setns", "mount", "umount2", "pivot_root", "bpf", "perf_event_open", "userfaultfd", "keyctl",
           "add_key", "request_key", "process_vm_readv", "process_vm_writev", "init_module", "finit_module",
           "kexec_load")


class SeccompUnavailable(OSError):
    pass


def _instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def _program(arch: str) -> list[bytes]:
    audit_arch, column = _ARCHES[arch]
    number = {name: numbers[column] for name, numbers in _SYSCALLS.items() if numbers[column] is not None}
    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    body: list[tuple] = []  # (kind, ...) resolved into jumps below
    for name in _DENIED:
        if name in number:
            body.append(("deny", number[name], eperm))
    body.append(("deny", number["clone3"], enosys))
    body.append(("flag", number["clone"], _CLONE_THREAD))  # threads only
    for name in ("socket", "socketpair"):
        body.append(("equal", number[name], _AF_UNIX))  # Unix sockets only
    program = [_instruction(_LD_W_ABS, 0, 0, _OFFSET_ARCH),
               _instruction(_JEQ_K, 1, 0, audit_arch),
               _instruction(_RET_K, 0, 0, _RET_KILL_PROCESS),
               _instruction(_LD_W_ABS, 0, 0, _OFFSET_NR)]
    if arch == "x86_64":  # the x32 ABI's numbers would dodge every rule below
        program += [_instruction(_JGE_K, 0, 1, _X32_BIT), _instruction(_RET_K, 0, 0, eperm)]
    for rule in body:
        kind, nr, value = rule
        if kind == "deny":
            program += [_instruction(_JEQ_K, 0, 1, nr), _instruction(_RET_K, 0, 0, value)]
        else:  # allowed only with the right first argument
            test = _JSET_K if kind == "flag" else _JEQ_K
            program += [_instruction(_JEQ_K, 0, 4, nr),  # another call: past this block, the number still loaded
                        _instruction(_LD_W_ABS, 0, 0, _OFFSET_ARG0),
                        _instruction(test, 0, 1, value),
                        _instruction(_RET_K, 0, 0, _RET_ALLOW),
                        _instruction(_RET_K, 0, 0, eperm)]
    program.append(_instruction(_RET_K, 0, 0, _RET_ALLOW))
    return program


def install() -> None:
    """Install the filter on this process (needs no_new_privs, which Landlock already set)."""
    arch = platform.machine()
    if arch not in _ARCHES:
        raise SeccompUnavailable(f"no seccomp filter for {arch}")
    code = b"".join(_program(arch))
    buffer = ctypes.create_string_buffer(code, len(code))

    class _Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    program = _Program(len(code) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        raise SeccompUnavailable(f"prctl(PR_SET_SECCOMP): {ctypes.get_errno()}")
