"""Which datafiles appear in which section, kept from the files service's events.

The files service owns datafiles and their home section; this service keeps a link per
(section, datafile) so that a section shows its files, copies with `with_datafiles` show the same
files (links, `kind: "copy"`), and a deleted section reports the files it showed.

Consumed (queue `metadata.datafile-links`, binding `files.datafile.*`); the handlers read the
payload fields they need and tolerate the rest:

| routing key                                   | fields read                                     |
|-----------------------------------------------|-------------------------------------------------|
| files.datafile.created / .moved / .updated    | `datafile_id` (or `id`), `section_id` (or `section`; null = no section); an event without a section field changes nothing |
| files.datafile.deleted                        | `datafile_id` (or `id`): every link goes         |

Ids may be integers or typed (`datafile_9`, `section_3`). Handlers are idempotent (deletes and
upserts keyed by `<section>:<datafile>`).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Mapping

from services.metadata.ids import InvalidId, parse_id, parse_optional_section
from services.metadata.store import MetadataStore

log = logging.getLogger(__name__)
QUEUE = "metadata.datafile-links"
_MISSING = object()


class BadPayload(ValueError):
    pass


def _datafile_id(payload: Mapping[str, Any]) -> int:
    raw = payload.get("datafile_id", payload.get("id"))
    try:
        return parse_id(raw, "datafile")
    except InvalidId as exc:
        raise BadPayload(f"no datafile id in the payload: {exc}") from None


def _section(payload: Mapping[str, Any]) -> Any:
    for key in ("section_id", "section"):
        if key in payload:
            try:
                return parse_optional_section(payload[key])
            except InvalidId as exc:
                raise BadPayload(f"bad section in the payload: {exc}") from None
    return _MISSING


def set_home(store: MetadataStore, datafile_id: int, section_id: int | None) -> None:
    """The datafile now lives in `section_id` (or in no section): its old home link goes."""
    store.links.delete_many({"datafile": datafile_id, "kind": "home", "section": {"$ne": section_id}})
    if section_id is not None:
        store.links.update_one(
            {"_id": f"{section_id}:{datafile_id}"},
            {"$set": {"section": section_id, "datafile": datafile_id, "kind": "home"},
             "$setOnInsert": {"date_created": datetime.now(timezone.utc), "linked_by": None}},
            upsert=True,
        )


def handlers(store: MetadataStore) -> dict[str, Any]:
    def placed(envelope: dict) -> None:
        payload = envelope.get("payload") or {}
        section = _section(payload)
        if section is _MISSING:
            return
        set_home(store, _datafile_id(payload), section)

    def deleted(envelope: dict) -> None:
        store.links.delete_many({"datafile": _datafile_id(envelope.get("payload") or {})})

    return {
        "files.datafile.created": placed,
        "files.datafile.moved": placed,
        "files.datafile.updated": placed,
        "files.datafile.deleted": deleted,
    }
