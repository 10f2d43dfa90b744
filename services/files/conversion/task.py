"""The conversion task: what the worker does with one `files.conversion.requested` event.

1. The task is claimed on the datafile (`conversion.task_id` must match `last_task_id`; a finished,
   replaced or deleted task is acknowledged and dropped), `conversion.attempts` goes up by one and
   `current_state` becomes `converting`.
2. A repeated attempt (a redelivery after a worker died, or a retry after a transient failure)
   first removes what the earlier attempt created: the NEO objects it recorded, plus any carrying
   its `file_origin` tag (created just before the worker died), and the sections of an odML import.
   Archive members map to datafiles by (archive, path) and are reused, never duplicated.
3. The upload is parsed in the sandbox (sandboxed.py, parse.py): the converters its content
   matches (detect.py) are tried in turn there, each leaving a line in `operations` /
   `operations_log` ("neo-io: success", "zip: failure (reason)"); the first that parses writes a
   plan, which the worker carries out (apply.py). A plan the neo or metadata service refuses
   counts as that converter's failure: what it created is removed and the parse goes on from the
   next converter. The first success ends the task `converted`; when none applies the file is
   `non_convertible`; when all applicable ones failed, or the sandbox hit a limit (time, CPU,
   memory, output) or crashed, it is `failed` with the reason. Completion and failure are
   published (`files.conversion.completed|failed`) in the same write.
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
from typing import Any

from pymongo import ReturnDocument

from services.files import events, history
from services.files.clients import ServiceDown
from services.files.context import FilesContext
from services.files.conversion import sandboxed
from services.files.conversion.apply import APPLIERS
from services.files.conversion.archive_members import remaining_budget
from services.files.conversion.detect import Candidate
from services.files.conversion.errors import ConversionError, TaskGone
from services.files.conversion.job import Job, cleanup, discard, now
from services.files.store import HIDDEN, LIVE
from shared.events import envelope_for, with_outbox
from shared.identity import Identity
from shared.sandbox import SandboxUnavailable

log = logging.getLogger(__name__)


def _event(payload: Any) -> dict:
    return envelope_for(payload, producer=events.PRODUCER)


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


def _fail(job: Job, reason: str, *, entries: list[dict], detected: list[str], conversion_type: int | None = None,
          state: str = "failed") -> None:
    _finish(job.ctx, job.doc, job.task_id, state=state, entries=entries, conversion_type=conversion_type,
            detected=detected, info=None, reason=reason, actor=job.identity.username)


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
    job = Job(ctx=ctx, identity=identity, doc=doc, task_id=task_id, path=ctx.store.path_of(datafile_id), attempt=attempt)
    if attempt > limit:
        reason = f"gave up after {limit} attempts: {conversion.get('last_error') or 'the worker stopped during each'}"
        _fail(job, reason, entries=[_log_entry(None, "failure", reason, attempt)], detected=doc.get("detected_format") or [],
              conversion_type=doc.get("conversion_type"))
        return "gave_up"
    try:
        if attempt > 1:
            removed = cleanup(ctx, identity, doc, task_id)
            if removed:
                log.info("datafile_%s: removed %d objects of an earlier attempt of task %s", datafile_id, removed, task_id)
        return _convert(job)
    except TaskGone:
        return "gone"
    except ConversionError as exc:
        _fail(job, str(exc), entries=[_log_entry(None, "failure", str(exc), attempt)], detected=[])
        return "failed"
    except Exception as exc:  # transient (ServiceDown, OSError, ...): recorded, then retried or given up
        error = f"{type(exc).__name__}: {exc}"[:1000]
        ctx.store.datafiles.update_one({"_id": datafile_id, "conversion.task_id": task_id},
                                       {"$set": {"conversion.last_error": error}})
        if attempt >= limit:
            reason = f"gave up after {attempt} attempts: {error}"
            job.doc = ctx.store.datafiles.find_one({"_id": datafile_id}, HIDDEN) or doc
            _fail(job, reason, entries=[_log_entry(None, "failure", reason, attempt)],
                  detected=doc.get("detected_format") or [])
            return "gave_up"
        raise


def _parse_params(job: Job) -> dict[str, Any]:
    """What the parse needs to know of the upload beyond its bytes (nesting, the archive budget)."""
    return {"archive_depth": int(job.doc.get("archive_depth") or 0), "archive_remaining_bytes": remaining_budget(job)}


def _convert(job: Job) -> str:
    if not job.path.exists():
        raise ConversionError("the stored bytes are missing")
    entries: list[dict[str, Any]] = []
    start, labels = 0, None
    with sandboxed.scratch_folder(job) as scratch:
        while True:
            job.expect(None, "parsing in the sandbox")
            try:
                parsed = sandboxed.parse(job, scratch, start=start, params=_parse_params(job))
            except sandboxed.ParseStopped as stopped:
                return _stopped(job, stopped, entries, labels)
            except SandboxUnavailable as exc:
                reason = f"conversions cannot run safely on this server: {exc}"
                log.error("datafile_%s: %s", job.datafile_id, reason)
                _fail(job, reason, entries=entries + [_log_entry(None, "failure", reason, job.attempt)],
                      detected=labels or [])
                return "failed"
            if labels is None:
                labels = [c.label for c in parsed.candidates]
                job.ctx.store.datafiles.update_one({"_id": job.datafile_id}, {"$set": {"detected_format": labels}})
            entries += [_log_entry(parsed.candidates[i], "failure", reason, job.attempt) for i, reason in parsed.failures]
            if parsed.candidate is None:
                return _none_converted(job, parsed, entries, labels)
            try:
                info = APPLIERS[parsed.kind](job, parsed)
            except (ServiceDown, TaskGone):
                raise
            except Exception as exc:  # the neo or metadata service refused what the plan holds
                if not isinstance(exc, ConversionError):
                    log.warning("%s failed on datafile_%s", parsed.candidate.label, job.datafile_id, exc_info=True)
                entries.append(_log_entry(parsed.candidate, "failure", _reason(exc), job.attempt))
                discard(job)
                start = parsed.chosen + 1
                continue
            entries.append(_log_entry(parsed.candidate, "success", "", job.attempt))
            _finish(job.ctx, job.doc, job.task_id, state="converted", entries=entries,
                    conversion_type=parsed.candidate.conversion_type, detected=labels, info=info,
                    actor=job.identity.username)
            return "converted"


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ConversionError) else f"{type(exc).__name__}: {str(exc)[:300]}"


def _none_converted(job: Job, parsed: sandboxed.Parsed, entries: list[dict], labels: list[str]) -> str:
    if not parsed.candidates:
        reason = "no converter recognises this file (by content or by name)"
        entries.append(_log_entry(None, "not convertible", reason, job.attempt))
        _fail(job, reason, entries=entries, detected=labels, state="non_convertible")
        return "non_convertible"
    reasons = [f"{e['converter']}{'(' + e['reader'] + ')' if e.get('reader') else ''}: {e['detail']}"
               for e in entries if e["outcome"] == "failure"]
    _fail(job, "; ".join(reasons), entries=entries, detected=labels, conversion_type=parsed.candidates[0].conversion_type)
    return "failed"


def _stopped(job: Job, stopped: sandboxed.ParseStopped, entries: list[dict], labels: list[str] | None) -> str:
    """The sandbox hit a limit or crashed: the converter it was running fails, and the conversion with it."""
    candidate = stopped.candidate
    entries.append(_log_entry(candidate, "failure", stopped.reason, job.attempt))
    detected = labels or [c.label for c in stopped.candidates]
    log.warning("datafile_%s: the parse sandbox stopped (%s): %s", job.datafile_id, stopped.kind, stopped.reason)
    _fail(job, f"{candidate.label if candidate else 'detection'}: {stopped.reason}", entries=entries, detected=detected,
          conversion_type=candidate.conversion_type if candidate else None)
    return "failed"
