"""The parse, as it runs in the sandbox: detect what the upload is, try the converters in turn,
write the plan of the first that succeeds (shared/sandbox/child.py calls `main`).

Before any reader opens an HDF5 file (HDF5, NIX, NWB, MATLAB 7.3), the HDF5 rules are checked
(hdf5_rules.py); a file that breaks one is refused as a whole. `start` skips the candidates the
worker already tried (a plan it could not apply). Two markers tell the worker, should the sandbox
be stopped (a limit), what was detected and which converter was running: `.detected.json` and
`.candidate`.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from services.files.conversion.converters import PARSERS
from services.files.conversion.detect import HDF5, Candidate, detect
from services.files.conversion.errors import ConversionError
from services.files.conversion.hdf5_rules import check_hdf5, is_hdf5
from services.files.conversion.plan import PlanWriter
from services.files.conversion.source import ParseLimits, Source

ENTRY = "services.files.conversion.parse:main"
PLAN_FOLDER = "out"
DETECTED_MARK = ".detected.json"
CANDIDATE_MARK = ".candidate"


def _fresh_plan(scratch: Path, title: str) -> PlanWriter:
    folder = scratch / PLAN_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return PlanWriter(folder, title=title)


def _candidates(source: Source) -> tuple[list[Candidate], str | None]:
    """What to try, or the reason an HDF5 file is refused before anything reads it."""
    if is_hdf5(source.path):
        try:
            check_hdf5(source.path, max_dataset_bytes=source.limits.hdf5_max_dataset_bytes)
        except ConversionError as exc:
            return [Candidate(HDF5)], str(exc)
    return detect(source.path, source.title), None


def _try(source: Source, scratch: Path, candidate: Candidate) -> tuple[dict[str, Any], PlanWriter]:
    plan = _fresh_plan(scratch, source.title)
    try:
        return PARSERS[candidate.conversion_type](source, plan, candidate), plan
    finally:
        plan.close()


def main(*, input_path: Path, scratch: Path, params: dict[str, Any]) -> dict[str, Any]:
    source = Source(path=input_path, title=str(params.get("title") or "upload"),
                    limits=ParseLimits.from_params(params.get("limits") or {}),
                    options=params.get("options") or {}, params=params)
    candidates, refusal = _candidates(source)
    (scratch / DETECTED_MARK).write_text(json.dumps([asdict(c) for c in candidates]))
    answer: dict[str, Any] = {"candidates": [asdict(c) for c in candidates], "failures": [], "chosen": None}
    if refusal is not None:
        answer["failures"].append({"index": 0, "reason": refusal})
        return answer
    for index in range(int(params.get("start") or 0), len(candidates)):
        (scratch / CANDIDATE_MARK).write_text(str(index))
        try:
            info, plan = _try(source, scratch, candidates[index])
        except ConversionError as exc:
            answer["failures"].append({"index": index, "reason": str(exc)})
            continue
        except MemoryError:
            raise
        except Exception as exc:  # the converter choked on this content
            answer["failures"].append({"index": index, "reason": f"{type(exc).__name__}: {str(exc)[:300]}"})
            continue
        answer.update(chosen=index, info=info, objects=plan.objects, members=plan.members)
        return answer
    return answer
