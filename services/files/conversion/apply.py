"""Carrying out a parse's plan in the worker, by the kind of what was parsed:

- `objects` (types 1, 2, 3, 5): the NEO objects, parents first, as the uploader;
- `archive` (types 6, 7): sections and datafiles (archive_members.py);
- `odml` (type 4): the document goes to the metadata service, which parses it in its own sandbox.
"""
from __future__ import annotations

from typing import Any, Callable

from services.files import history
from services.files.clients import ServiceRefused
from services.files.conversion.archive_members import apply_archive
from services.files.conversion.errors import ConversionError
from services.files.conversion.job import Job
from services.files.conversion.plan import load_array, read_plan
from services.files.conversion.sandboxed import Parsed
from shared.access import acl_of


def _linked(links: dict[str, int], ids: dict[int, str]) -> dict[str, str]:
    return {field: ids[ref] for field, ref in links.items()}


def apply_objects(job: Job, parsed: Parsed) -> dict[str, Any]:
    job.expect(parsed.objects, "creating NEO objects")
    ids: dict[int, str] = {}
    for op in read_plan(parsed.folder):
        if op["op"] == "create":
            arrays = {field: load_array(parsed.folder, name) for field, name in op["arrays"].items()}
            body = {**op["body"], **_linked(op["links"], ids)}
            ids[op["ref"]] = job.create(op["type"], body, arrays or None)
        elif op["op"] == "create_many":
            bodies = [{**body, **_linked(links, ids)} for body, links in zip(op["bodies"], op["links"])]
            ids.update(zip(op["refs"], job.create_many(op["type"], bodies)))
        else:
            raise ConversionError("the parser's answer is not valid (archive members in a plan of objects)")
    extra = {"reader": parsed.info["reader"]} if isinstance(parsed.info.get("reader"), str) else {}
    return job.extracted_info(**extra)


def apply_odml(job: Job, parsed: Parsed) -> dict[str, Any]:
    limit = job.ctx.limits.odml_max_bytes
    if job.path.stat().st_size > limit:
        raise ConversionError(f"odML documents are imported up to {limit} bytes")
    job.expect(1, "importing the odML document")
    # The metadata service records these sections as "created by the odML import of datafile <id>".
    metadata = job.ctx.metadata.for_source("odml_import", history.datafile(job.datafile_id))
    try:
        result = metadata.import_odml(job.identity, job.path.read_bytes(), filename=job.title,
                                      target_section=job.doc.get("section"), acl=acl_of(job.doc))
    except ServiceRefused as exc:
        raise ConversionError(str(exc)) from None
    job.record_sections([int(i) for i in result.get("section_ids") or []])
    job.advance()
    return job.extracted_info(properties_created=result.get("properties_created"),
                              values_created=result.get("values_created"))


APPLIERS: dict[str, Callable[[Job, Parsed], dict[str, Any]]] = {
    "objects": apply_objects,
    "archive": apply_archive,
    "odml": apply_odml,
}
