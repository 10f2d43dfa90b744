"""The running system, as `make run` starts it: each process holds only the secrets it needs, and
none runs with the published development secrets (issue 11, item 6)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.config import DEV_MODE_FLAG, PUBLISHED_DEV_SECRETS


def _environment(pid: int) -> dict[str, str] | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None  # ended meanwhile (a conversion sandbox, say)
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw.split(b"\0") if item)


def _descendants(pid: int) -> list[int]:
    found = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        children = [int(c) for task in tasks for c in (task / "children").read_text().split()]
    except OSError:
        return found
    for child in children:
        found.append(child)
        found.extend(_descendants(child))
    return found


def test_each_process_holds_only_the_secrets_it_needs(system):
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc")
    checked = set()
    for child in system.children:
        if child.name == "mongodb":
            continue
        assert (_environment(child.process.pid) or {}).get("INTERNAL_SECRET"), child.name
        # gunicorn's workers too, and whatever a worker started (conversion sandboxes get nothing)
        for pid in [child.process.pid, *_descendants(child.process.pid)]:
            env = _environment(pid)
            if env is None:
                continue
            if child.name in {"auth", "gateway"}:
                assert "JWT_SECRET" in env, (child.name, pid)
            else:
                assert "JWT_SECRET" not in env, (child.name, pid)
            assert env.get(DEV_MODE_FLAG) == os.environ.get(DEV_MODE_FLAG), child.name  # the stack adds no flag
            for key, published in PUBLISHED_DEV_SECRETS.items():
                assert env.get(key) != published, (child.name, key)
            checked.add(child.name)
    assert {"auth", "auth-worker", "gateway"} <= checked
