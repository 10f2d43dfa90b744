"""The conversion task: what the worker does with one `files.conversion.requested` event.

1. The task is claimed on the datafile (`conversion.task_id` must match `last_task_id`; a finished,
   replaced or deleted task is acknowledged and dropped), `conversion.attempts` goes up by one and
   `current_state` becomes `converting`.
2. A repeated attempt (a redelivery after a worker died, or a retry after a transient failure)
   first removes what the earlier attempt created: the NEO objects it recorded, plus any carrying
   its `file_origin` tag (created just before the worker died), and the sections of an odML import.
   Archive members map to datafiles by (archive, path) and are reused, never duplicated.
3. The converters the content matches (services/files/detect.py) are tried in turn; each leaves a
   line in `operations` / `operations_log` ("neo-io: success", "zip: failure (reason)"). The first
   success ends the task `converted`; when none applies the file is `non_convertible`, when all
   applicable ones failed it is `failed`. Completion and failure are published
   (`files.conversion.completed|failed`) in the same write.
4. A transient failure (the neo or metadata service down) raises, so the consumer retries the task
   later; after `CONVERSION_MAX_ATTEMPTS` attempts (worker deaths included) the file ends `failed`
   with the reason.
5. Every call to the neo and metadata services made for the task carries
   `X-Gnode-Source: conversion:datafile_<id>` (`odml_import:datafile_<id>` for the odML import), so
   those services record what they created as "created by the conversion of datafile <id>". The
   converted / conversion_failed history entry is written with the write that ends the task.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
from pymongo import ReturnDocument

from services.files import detect as detection
from services.files import events, history, neo_objects
from services.files.clients import ServiceDown, ServiceRefused
from services.files.context import FilesContext
from services.files.detect import Candidate
from services.files.store import HIDDEN, LIVE
from shared.events import envelope_for, with_outbox
from shared.identity import Identity

log = logging.getLogger(__name__)

# Deleting leaves first: no object is deleted while it still has children.
LEAF_FIRST = ("event", "epoch", "spike", "spiketrain", "irsaanalogsignal", "analogsignal", "eventarray", "epocharray",
              "analogsignalarray", "unit", "recordingchannel", "recordingchannelgroup", "segment", "block")
MAX_LISTED_IDS = 10_000


class ConversionError(Exception):
    """The file's content cannot be converted by this converter (not retried)."""


class TaskGone(Exception):
    """The datafile was deleted, or its task replaced, while converting."""


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _event(payload: Any) -> dict:
    return envelope_for(payload, producer=events.PRODUCER)


@dataclass
class Job:
    """One attempt at converting one datafile: what converters use to create things and report progress."""

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
        if not force and moment - self._progress_at < 0.25:
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


# --- cleaning up an earlier attempt -------------------------------------------------------------------

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


def _discard(job: Job) -> None:
    """After a converter failed: remove what it created before the next one is tried."""
    doc = job.ctx.store.datafiles.find_one({"_id": job.datafile_id}, {"conversion": 1}) or {"_id": job.datafile_id}
    doc["_id"] = job.datafile_id
    cleanup(job.ctx, job.identity, doc, job.task_id)
    job.created_neo.clear()
    job.created_sections.clear()


# --- converters -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    extracted_info: dict[str, Any]
    note: str = ""


def convert_csv(job: Job, candidate: Candidate) -> Outcome:
    """ascii-csv: every line is one signal (comma-separated floats) -> one AnalogSignal per line."""
    size = job.path.stat().st_size
    if size > job.ctx.limits.csv_max_bytes:
        raise ConversionError(f"CSV files are converted up to {job.ctx.limits.csv_max_bytes} bytes")
    rows = []
    with open(job.path, "r", encoding="utf-8", errors="strict") as f:
        try:
            for number, line in enumerate(f, start=1):
                text = line.strip().rstrip(",")
                if not text or text.startswith("#"):
                    continue
                try:
                    rows.append(np.array([float(cell) for cell in text.split(",")], dtype=np.float64))
                except ValueError:
                    raise ConversionError(f"line {number} is not comma-separated numbers") from None
        except UnicodeDecodeError:
            raise ConversionError("the file is not text") from None
    if not rows:
        raise ConversionError("no signal in the file")
    job.expect(len(rows) + 2, "creating analog signals")
    block_id, segment_id = neo_objects.container(job, job.title, source="ascii-csv")
    rate = job.doc.get("options", {}).get("sampling_rate", 1000.0)
    for index, row in enumerate(rows):
        job.create("analogsignal", {
            "name": f"signal {index}", "segment": segment_id,
            "sampling_rate": {"units": "hz", "data": rate}, "t_start": {"units": "s", "data": 0.0},
            "signal": {"units": "mv"}, "annotations": {"line": index + 1},
        }, {"signal": row})
    return Outcome(job.extracted_info())


def convert_hdf5(job: Job, candidate: Candidate) -> Outcome:
    """HDF5: each numeric dataset at the root becomes the data of a NEO object.

    The dataset's attributes choose the object: `neo_type` (analogsignal, the default;
    irsaanalogsignal with a `times` dataset; spiketrain), `units`, `sampling_rate` (Hz),
    `t_start`, `t_stop` (s), `name`. A 2-D dataset gives one signal per column.
    """
    import h5py

    try:
        f = h5py.File(job.path, "r")
    except OSError as exc:
        raise ConversionError(f"not a readable HDF5 file: {exc}") from None
    with f:
        datasets = [(name, obj) for name, obj in f.items()
                    if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "iuf" and obj.ndim in (1, 2) and obj.size]
        if not datasets:
            raise ConversionError("no numeric array at the root ('/') of the file")
        job.expect(len(datasets) + 2, "creating objects from root arrays")
        block_id, segment_id = neo_objects.container(job, job.title, source="hdf5",
                                                     datasets=[name for name, _ in datasets])
        for name, dataset in datasets:
            attrs = {k: _attr(v) for k, v in dataset.attrs.items()}
            kind = str(attrs.get("neo_type", "analogsignal")).lower()
            data = dataset[()]
            label = str(attrs.get("name", name))
            annotations = {"dataset": f"/{name}", **{k: v for k, v in attrs.items() if k not in ("neo_type",)}}
            annotations = neo_objects.plain(annotations)
            if kind == "spiketrain":
                times = np.asarray(data, dtype=np.float64).ravel()
                units = str(attrs.get("units", "s")).lower()
                scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "mcs": 1e-6}.get(units)
                if scale is None:
                    raise ConversionError(f"/{name}: spike times in {units!r}; use s, ms or us")
                times = times * scale
                t_stop = float(attrs.get("t_stop", float(times.max()) if len(times) else 0.0))
                job.create("spiketrain", {
                    "segment": segment_id, "t_start": {"units": "s", "data": float(attrs.get("t_start", 0.0))},
                    "t_stop": {"units": "s", "data": t_stop}, "times": {"units": "s"},
                    "annotations": {**annotations, "name": label}}, {"times": times})
                continue
            if kind not in ("analogsignal", "irsaanalogsignal"):
                raise ConversionError(f"/{name}: neo_type {kind!r} is not one of analogsignal, irsaanalogsignal, spiketrain")
            matrix = np.asarray(data).reshape(data.shape[0], -1)
            units = _signal_units(attrs.get("units", "mv"))
            rate = float(attrs.get("sampling_rate", 1000.0))
            times = None
            if kind == "irsaanalogsignal":
                times_ds = f.get(str(attrs.get("times", "times")))
                if not isinstance(times_ds, h5py.Dataset) or times_ds.shape[0] != matrix.shape[0]:
                    raise ConversionError(f"/{name}: an irregular signal needs a `times` dataset of the same length")
                times = np.asarray(times_ds[()], dtype=np.float64)
            for column in range(matrix.shape[1]):
                body = {"name": label if matrix.shape[1] == 1 else f"{label} #{column}", "segment": segment_id,
                        "t_start": {"units": "s", "data": float(attrs.get("t_start", 0.0))},
                        "signal": {"units": units}, "annotations": {**annotations, "column": column}}
                arrays = {"signal": np.ascontiguousarray(matrix[:, column])}
                if times is None:
                    body["sampling_rate"] = {"units": "hz", "data": rate}
                    job.create("analogsignal", body, arrays)
                else:
                    body["times"] = {"units": "s"}
                    job.create("irsaanalogsignal", body, {**arrays, "times": times})
    return Outcome(job.extracted_info())


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _signal_units(raw: Any) -> str:
    units = str(raw).strip().lower().replace("µ", "mc").replace("uv", "mcv")
    if units not in ("v", "mv", "mcv"):
        raise ConversionError(f"signal units {raw!r}; use V, mV or uV")
    return units


class _NamedCopy:
    """The stored file under a name the neo reader expects (a symlink in a private temp dir)."""

    def __init__(self, job: Job, extension: str | None):
        self.job, self.extension = job, extension

    def __enter__(self) -> Path:
        self.dir = Path(tempfile.mkdtemp(prefix="convert-", dir=self.job.ctx.store.tmp_dir()))
        stem = f"datafile_{self.job.datafile_id}"
        name = f"{stem}.{self.extension}" if self.extension else stem
        link = self.dir / name
        os.symlink(os.path.abspath(self.job.path), link)
        return link

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def read_neo_blocks(path: Path, io_name: str) -> list[Any]:
    """Every block a neo reader finds in the file (never through a reader that unpickles)."""
    import warnings

    import neo.io

    if io_name in detection.UNSAFE_IOS:
        raise ConversionError(f"{io_name} is never used on uploaded files")
    cls = getattr(neo.io, io_name, None)
    if cls is None:
        raise ConversionError(f"no neo reader {io_name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = cls(str(path), mode="ro") if io_name == "NixIO" else (
                cls(str(path), mode="r") if io_name == "NWBIO" else cls(str(path)))
            try:
                if hasattr(reader, "read_all_blocks"):
                    blocks = reader.read_all_blocks(lazy=False)
                else:
                    blocks = [reader.read_block(lazy=False)]
            finally:
                close = getattr(reader, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception:
                        pass
        except ConversionError:
            raise
        except MemoryError:
            raise ConversionError("the file is too large to read") from None
        except Exception as exc:  # the reader's word on the content
            raise ConversionError(f"{io_name} cannot read it: {type(exc).__name__}: {str(exc)[:300]}") from None
    blocks = [b for b in (blocks or []) if b is not None]
    if not blocks:
        raise ConversionError(f"{io_name} found no data")
    return blocks


def convert_neo(job: Job, candidate: Candidate) -> Outcome:
    """NEO I/O (and the Neuroshare family through neo's readers): Block, Segments, signals, spike trains, events, epochs."""
    job.expect(None, f"reading with {candidate.io_name}")
    with _NamedCopy(job, candidate.extension) as path:
        blocks = read_neo_blocks(path, candidate.io_name)
    total = 0
    for block in blocks:
        total += 1
        for segment in block.segments:
            total += 1 + len(segment.spiketrains) + sum(1 + len(e) for e in segment.events) + \
                sum(1 + len(e) for e in segment.epochs)
            total += sum(s.shape[1] if getattr(s, "ndim", 1) > 1 else 1 for s in segment.analogsignals)
            total += sum(s.shape[1] if getattr(s, "ndim", 1) > 1 else 1 for s in getattr(segment, "irregularlysampledsignals", []))
    job.expect(total, "creating NEO objects")
    for position, block in enumerate(blocks):
        neo_objects.write_block(job, block, position)
    return Outcome(job.extracted_info(reader=candidate.io_name))


def convert_odml(job: Job, candidate: Candidate) -> Outcome:
    """odML: imported into the metadata tree (into the datafile's section, or at the root)."""
    size = job.path.stat().st_size
    if size > job.ctx.limits.odml_max_bytes:
        raise ConversionError(f"odML documents are imported up to {job.ctx.limits.odml_max_bytes} bytes")
    job.expect(1, "importing the odML document")
    data = job.path.read_bytes()
    # The metadata service records these sections as "created by the odML import of datafile <id>".
    metadata = job.ctx.metadata.for_source("odml_import", history.datafile(job.datafile_id))
    try:
        result = metadata.import_odml(job.identity, data, filename=job.title, target_section=job.doc.get("section"))
    except ServiceRefused as exc:
        raise ConversionError(str(exc)) from None
    ids = [int(i) for i in result.get("section_ids") or []]
    job.record_sections(ids)
    job.advance()
    return Outcome(job.extracted_info(properties_created=result.get("properties_created"),
                                      values_created=result.get("values_created")))


def _archive(job: Job, candidate: Candidate) -> Outcome:
    from services.files import archives

    return archives.convert_archive(job, candidate)


CONVERTERS: dict[int, Callable[[Job, Candidate], Outcome]] = {
    detection.NEUROSHARE: convert_neo,
    detection.NEO_IO: convert_neo,
    detection.ASCII_CSV: convert_csv,
    detection.ODML: convert_odml,
    detection.HDF5: convert_hdf5,
    detection.ZIP: _archive,
    detection.TAR: _archive,
}


# --- the task -----------------------------------------------------------------------------------------

def _log_entry(candidate: Candidate | None, outcome: str, detail: str, attempt: int) -> dict[str, Any]:
    return {"converter": candidate.converter if candidate else "detection", "reader": candidate.io_name if candidate else None,
            "outcome": outcome, "detail": detail[:1000], "attempt": attempt, "at": now()}


def operations_log(entries: list[dict[str, Any]]) -> str:
    """Seed 000's form: "python-neuroshare: failure ascii-csv: success "."""
    parts = []
    for entry in entries:
        text = f"{entry['converter']}: {entry['outcome']}"
        if entry["outcome"] == "failure" and entry.get("detail"):
            text += f" ({entry['detail']})"
        parts.append(text)
    return " ".join(parts) + (" " if parts else "")


def _claim(ctx: FilesContext, datafile_id: int, task_id: str) -> dict[str, Any] | None:
    return ctx.store.datafiles.find_one_and_update(
        {"_id": datafile_id, "conversion.task_id": task_id, "current_state": {"$in": ["queued", "converting"]}, **LIVE},
        {"$set": {"current_state": "converting", "conversion.started_at": now(), "last_modified": now()},
         "$inc": {"conversion.attempts": 1}},
        projection=HIDDEN, return_document=ReturnDocument.AFTER,
    )


def job_context(ctx: FilesContext, datafile_id: int) -> FilesContext:
    """`ctx` whose neo and metadata clients say, on every call, that it is made for this conversion."""
    resource = history.datafile(datafile_id)
    return dataclasses.replace(ctx, neo=ctx.neo.for_source("conversion", resource),
                               metadata=ctx.metadata.for_source("conversion", resource))


def _finish(ctx: FilesContext, doc: dict[str, Any], task_id: str, *, state: str, entries: list[dict],
            conversion_type: int | None, detected: list[str], info: dict[str, Any] | None, reason: str = "",
            actor: str | None) -> bool:
    operations = list(doc.get("operations") or []) + entries
    values = {
        "current_state": state, "operations": operations, "operations_log": operations_log(operations),
        "conversion_type": conversion_type, "detected_format": detected, "extracted_info": info,
        "last_modified": now(), "conversion.finished_at": now(),
        "progress": {**(doc.get("progress") or {}), "stage": state, "percent": 100.0 if state == "converted" else
                     (doc.get("progress") or {}).get("percent"), "updated": now()},
    }
    if state == "converted":
        envelope = _event(events.ConversionCompleted(task_id=task_id, datafile_id=doc["_id"], owner=doc["owner"],
                                                     conversion_type=conversion_type, extracted_info=info or {}))
    else:
        envelope = _event(events.ConversionFailed(task_id=task_id, datafile_id=doc["_id"], owner=doc["owner"],
                                                  state=state, reason=reason[:1000]))
    result = ctx.store.datafiles.update_one(
        {"_id": doc["_id"], "conversion.task_id": task_id, "current_state": "converting", **LIVE},
        with_outbox({"$set": values, "$inc": {"version": 1}}, envelope))
    if result.modified_count != 1:
        return False  # deleted, replaced or ended by another attempt: that one records it
    if state == "converted":
        history.record_converted(ctx.store.history, datafile_id=doc["_id"], actor=actor, task_id=task_id,
                                 conversion_type=conversion_type, info=info, entry_id=envelope["event_id"])
    else:
        history.record_conversion_failed(ctx.store.history, datafile_id=doc["_id"], actor=actor, task_id=task_id,
                                         state=state, reason=reason, entry_id=envelope["event_id"])
    return True


def handle_task(ctx: FilesContext, payload: dict[str, Any]) -> str:
    """Run one conversion task; returns what happened (for logs and tests). Raises to be retried."""
    task_id, datafile_id = str(payload["task_id"]), int(payload["datafile_id"])
    identity = Identity(user_id=payload.get("user_id"), username=payload.get("username"))
    doc = _claim(ctx, datafile_id, task_id)
    if doc is None:
        return "stale"  # deleted, replaced by a newer task, or finished already (a repeated delivery)
    ctx = job_context(ctx, datafile_id)  # from here on, every neo/metadata call is made for this conversion
    conversion = doc.get("conversion") or {}
    attempt = int(conversion.get("attempts", 1))
    limit = ctx.limits.conversion_max_attempts
    if attempt > limit:
        reason = f"gave up after {limit} attempts: {conversion.get('last_error') or 'the worker stopped during each'}"
        _finish(ctx, doc, task_id, state="failed", entries=[_log_entry(None, "failure", reason, attempt)],
                conversion_type=doc.get("conversion_type"), detected=doc.get("detected_format") or [], info=None,
                reason=reason, actor=identity.username)
        return "gave_up"
    job = Job(ctx=ctx, identity=identity, doc=doc, task_id=task_id, path=ctx.store.path_of(datafile_id), attempt=attempt)
    try:
        if attempt > 1:
            removed = cleanup(ctx, identity, doc, task_id)
            if removed:
                log.info("datafile_%s: removed %d objects of an earlier attempt of task %s", datafile_id, removed, task_id)
        return _run_converters(job)
    except TaskGone:
        return "gone"
    except ConversionError as exc:
        reason = str(exc)
        _finish(ctx, doc, task_id, state="failed", entries=[_log_entry(None, "failure", reason, attempt)],
                conversion_type=None, detected=[], info=None, reason=reason, actor=identity.username)
        return "failed"
    except (ServiceDown, OSError, Exception) as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        ctx.store.datafiles.update_one({"_id": datafile_id, "conversion.task_id": task_id},
                                       {"$set": {"conversion.last_error": error}})
        if attempt >= limit:
            reason = f"gave up after {attempt} attempts: {error}"
            _finish(ctx, ctx.store.datafiles.find_one({"_id": datafile_id}, HIDDEN) or doc, task_id, state="failed",
                    entries=[_log_entry(None, "failure", reason, attempt)], conversion_type=None,
                    detected=doc.get("detected_format") or [], info=None, reason=reason, actor=identity.username)
            return "gave_up"
        raise


def _run_converters(job: Job) -> str:
    ctx, doc = job.ctx, job.doc
    if not job.path.exists():
        raise ConversionError("the stored bytes are missing")
    candidates = detection.detect(job.path, job.title)
    labels = [c.label for c in candidates]
    ctx.store.datafiles.update_one({"_id": job.datafile_id}, {"$set": {"detected_format": labels}})
    entries: list[dict[str, Any]] = []
    if not candidates:
        reason = "no converter recognises this file (by content or by name)"
        entries.append(_log_entry(None, "not convertible", reason, job.attempt))
        _finish(ctx, doc, job.task_id, state="non_convertible", entries=entries, conversion_type=None, detected=labels,
                info=None, reason=reason, actor=job.identity.username)
        return "non_convertible"
    failures = []
    for candidate in candidates:
        try:
            outcome = CONVERTERS[candidate.conversion_type](job, candidate)
        except (ServiceDown, TaskGone):
            raise
        except Exception as exc:  # the converter choked on this content: not worth retrying
            if not isinstance(exc, ConversionError):
                log.warning("%s failed on datafile_%s", candidate.label, job.datafile_id, exc_info=True)
                exc = ConversionError(f"{type(exc).__name__}: {str(exc)[:300]}")
            failures.append(f"{candidate.label}: {exc}")
            entries.append(_log_entry(candidate, "failure", str(exc), job.attempt))
            _discard(job)
            continue
        entries.append(_log_entry(candidate, "success", outcome.note, job.attempt))
        _finish(ctx, doc, job.task_id, state="converted", entries=entries, conversion_type=candidate.conversion_type,
                detected=labels, info=outcome.extracted_info, actor=job.identity.username)
        return "converted"
    reason = "; ".join(failures)
    _finish(ctx, doc, job.task_id, state="failed", entries=entries, conversion_type=candidates[0].conversion_type,
            detected=labels, info=None, reason=reason, actor=job.identity.username)
    return "failed"
