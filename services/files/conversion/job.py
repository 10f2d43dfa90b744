"""One attempt at converting one datafile, on the worker's side: what the plan's operations use to
create things as the uploader, report progress, and clean up after a failed or repeated attempt."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from services.files.clients import ServiceRefused
from services.files.context import FilesContext
from services.files.conversion.errors import ConversionError, TaskGone
from services.files.store import LIVE
from shared.identity import Identity

# Deleting leaves first: no object is deleted while it still has children.
LEAF_FIRST = ("event", "epoch", "spike", "spiketrain", "irsaanalogsignal", "analogsignal", "eventarray", "epocharray",
              "analogsignalarray", "unit", "recordingchannel", "recordingchannelgroup", "segment", "block")
MAX_LISTED_IDS = 10_000
PROGRESS_EVERY_SECONDS = 0.25
HEARTBEAT_EVERY_SECONDS = 1.0


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass
class Job:
    ctx: FilesContext
    identity: Identity
    doc: dict[str, Any]
    task_id: str
    path: Path
    attempt: int
    created_neo: list[str] = field(default_factory=list)
    created_sections: list[int] = field(default_factory=list)
    created_datafiles: list[int] = field(default_factory=list)
    _progress_at: float = 0.0
    _heartbeat_at: float = 0.0
    _done: int = 0
    total: int | None = None
    stage: str = "converting"

    @property
    def datafile_id(self) -> int:
        return self.doc["_id"]

    @property
    def title(self) -> str:
        return self.doc.get("title") or f"datafile_{self.datafile_id}"

    @property
    def tag(self) -> str:
        return f"(datafile_{self.datafile_id}, task {self.task_id})"

    def _filter(self) -> dict[str, Any]:
        return {"_id": self.datafile_id, "conversion.task_id": self.task_id, **LIVE}

    def _push(self, key: str, values: list) -> None:
        result = self.ctx.store.datafiles.update_one(self._filter(), {"$push": {f"conversion.{key}": {"$each": values}}})
        if result.matched_count == 0:
            raise TaskGone(f"datafile_{self.datafile_id} was deleted or its task replaced")

    # -- creating things ------------------------------------------------------------------------
    def create(self, type_name: str, body: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> str:
        body = {**body, "file_origin": f"{self.title} {self.tag}"[:10_000]}
        try:
            neo_id = self.ctx.neo.create(self.identity, type_name, body, arrays)
        except ServiceRefused as exc:
            raise ConversionError(f"the neo service refused a {type_name}: {exc}") from None
        self.created_neo.append(neo_id)
        self._push("neo", [neo_id])
        self.advance()
        return neo_id

    def create_many(self, type_name: str, bodies: list[dict[str, Any]]) -> list[str]:
        if not bodies:
            return []
        tagged = [{**body, "file_origin": f"{self.title} {self.tag}"[:10_000]} for body in bodies]
        try:
            ids = self.ctx.neo.create_many(self.identity, type_name, tagged)
        except ServiceRefused as exc:
            raise ConversionError(f"the neo service refused {type_name}s: {exc}") from None
        self.created_neo += ids
        self._push("neo", ids)
        self.advance(len(ids))
        return ids

    def record_sections(self, section_ids: list[int], *, undo_on_retry: bool = True) -> None:
        """Sections this attempt made; with `undo_on_retry` a repeated attempt deletes them first."""
        self.created_sections += [i for i in section_ids if i not in self.created_sections]
        if undo_on_retry:
            self._push("sections", section_ids)

    def record_datafile(self, datafile_id: int) -> None:
        self.created_datafiles.append(datafile_id)

    # -- progress -------------------------------------------------------------------------------
    def expect(self, total: int | None, stage: str) -> None:
        self.total, self.stage = total, stage
        self.report(force=True)

    def advance(self, count: int = 1) -> None:
        self._done += count
        self.report()

    def report(self, force: bool = False) -> None:
        moment = time.monotonic()
        if not force and moment - self._progress_at < PROGRESS_EVERY_SECONDS:
            return
        self._progress_at = moment
        percent = None
        if self.total:
            percent = round(min(100.0, 100.0 * self._done / self.total), 1)
        progress = {"stage": self.stage, "done": self._done, "total": self.total, "percent": percent,
                    "attempt": self.attempt, "updated": now()}
        result = self.ctx.store.datafiles.update_one(self._filter(), {"$set": {"progress": progress}})
        if result.matched_count == 0:
            raise TaskGone(f"datafile_{self.datafile_id} was deleted or its task replaced")

    def heartbeat(self) -> None:
        """While the sandbox parses: stop it (TaskGone) once the datafile is deleted or its task replaced."""
        moment = time.monotonic()
        if moment - self._heartbeat_at < HEARTBEAT_EVERY_SECONDS:
            return
        self._heartbeat_at = moment
        if self.ctx.store.datafiles.find_one(self._filter(), {"_id": 1}) is None:
            raise TaskGone(f"datafile_{self.datafile_id} was deleted or its task replaced")

    def extracted_info(self, **extra: Any) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for neo_id in self.created_neo:
            kind = neo_id.rsplit("_", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        info: dict[str, Any] = {
            "neo_ids": self.created_neo[:MAX_LISTED_IDS],
            "blocks": [n for n in self.created_neo if n.startswith("block_")],
            "objects": counts,
            "section_ids": [f"section_{i}" for i in self.created_sections],
            "datafile_ids": [f"datafile_{i}" for i in self.created_datafiles],
        }
        if len(self.created_neo) > MAX_LISTED_IDS:
            info["neo_ids_truncated"] = True
        info.update(extra)
        return info


def cleanup(ctx: FilesContext, identity: Identity, doc: dict[str, Any], task_id: str) -> int:
    """Remove what an earlier attempt of `task_id` created; returns how many things were removed."""
    created = (doc.get("conversion") or {})
    recorded = list(created.get("neo") or [])
    tag = f"(datafile_{doc['_id']}, task {task_id})"
    found = set(recorded)
    for type_name in LEAF_FIRST:
        found.update(ctx.neo.list_ids(identity, type_name, file_origin__endswith=tag))
    order = {name: i for i, name in enumerate(LEAF_FIRST)}
    doomed = sorted(found, key=lambda n: (order.get(n.rsplit("_", 1)[0], 99), n))
    for neo_id in doomed:
        ctx.neo.delete(identity, neo_id)
    sections = list(created.get("sections") or [])
    for section_id in sections:
        ctx.metadata.delete_section(identity, section_id)
    ctx.store.datafiles.update_one({"_id": doc["_id"], "conversion.task_id": task_id},
                                   {"$set": {"conversion.neo": [], "conversion.sections": []}})
    return len(doomed) + len(sections)


def discard(job: Job) -> None:
    """After a converter failed: remove what it created before the next one is tried."""
    doc = job.ctx.store.datafiles.find_one({"_id": job.datafile_id}, {"conversion": 1}) or {"_id": job.datafile_id}
    doc["_id"] = job.datafile_id
    cleanup(job.ctx, job.identity, doc, job.task_id)
    job.created_neo.clear()
    job.created_sections.clear()
