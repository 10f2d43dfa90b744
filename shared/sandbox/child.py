"""The sandbox child: confines itself, then runs one entry function on one input file.

Started by shared/sandbox/runner.py as `python -I -B -c <boot>` with an empty environment (no
secret ever reaches it). It reads its orders as JSON on stdin:

    {"entry": "package.module:function", "input": path or null, "scratch": path,
     "params": {...}, "limits": {...}, "read": [paths], "require_filesystem": true}

and, once confined, calls `function(input_path=Path|None, scratch=Path, params=dict)`, which
returns a JSON-serialisable value. The outcome is written to `<scratch>/.sandbox-result.json`:
`{"ok": true, "value": ..., "confinement": {...}}` or `{"ok": false, "kind": "memory"|"error",
"message": ...}`. Only the entry's top-level package is imported before confinement, and only
our own code is read then; the input file is opened only after.
"""
from __future__ import annotations

import errno
import importlib
import json
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

RESULT_NAME = ".sandbox-result.json"


def _write_result(scratch: Path, outcome: dict[str, Any]) -> None:
    with open(scratch / RESULT_NAME, "w", encoding="utf-8") as f:
        json.dump(outcome, f, default=str)


def _entry(spec: str):
    module_name, _, function_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def main() -> None:
    orders = json.loads(sys.stdin.read())
    scratch = Path(orders["scratch"])
    from shared.sandbox.confine import ChildLimits, confine

    # Our own top-level package, before the file system closes (its parent folder cannot be listed after).
    importlib.import_module(orders["entry"].split(".", 1)[0])
    read = list(orders["read"]) + ([orders["input"]] if orders.get("input") else [])
    try:
        report = confine(limits=ChildLimits(**orders["limits"]), read=read, read_write=[str(scratch)],
                         require_filesystem=bool(orders.get("require_filesystem", True)), parent=orders.get("parent"))
    except OSError as exc:
        _write_result(scratch, {"ok": False, "kind": "unconfined", "message": f"cannot confine the sandbox: {exc}"})
        return
    try:
        function = _entry(orders["entry"])
        value = function(input_path=Path(orders["input"]) if orders.get("input") else None, scratch=scratch,
                         params=orders.get("params") or {})
    except MemoryError:
        _write_result(scratch, {"ok": False, "kind": "memory", "message": "ran out of memory"})
        return
    except OSError as exc:
        if exc.errno != errno.EFBIG:  # past RLIMIT_FSIZE (Python ignores SIGXFSZ, so writes fail instead)
            traceback.print_exc()
        kind = "output" if exc.errno == errno.EFBIG else "error"
        _write_result(scratch, {"ok": False, "kind": kind, "message": f"{type(exc).__name__}: {str(exc)[:500]}"})
        return
    except RecursionError:
        _write_result(scratch, {"ok": False, "kind": "error", "message": "the content is nested too deeply"})
        return
    except Exception as exc:  # the entry's word on the content, or a reader's failure
        traceback.print_exc()
        _write_result(scratch, {"ok": False, "kind": "error", "message": f"{type(exc).__name__}: {str(exc)[:500]}"})
        return
    _write_result(scratch, {"ok": True, "value": value, "confinement": asdict(report)})


if __name__ == "__main__":
    main()
