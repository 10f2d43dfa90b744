"""Resource ids the acl service keeps records for, and which service owns each kind.

A record's id is the resource's typed id: `section_5`, `datafile_9`, `segment_3`. The public URL
names a resource by its collection (`sections`, `datafiles`) or NEO type and an id that may be
typed or untyped (`/electrophysiology/segment/segment_3/acl/`, `/metadata/sections/5/acl/`).
"""
from __future__ import annotations

import re

from shared.errors import BadRequest, NotFound

# The 14 NEO types (services/neo/schema.py owns their definitions; only the names matter here).
NEO_TYPES = frozenset({
    "block", "segment", "event", "eventarray", "epoch", "epocharray", "unit", "spiketrain",
    "analogsignal", "analogsignalarray", "irsaanalogsignal", "spike", "recordingchannelgroup",
    "recordingchannel",
})
COLLECTION_KINDS = {"sections": "section", "datafiles": "datafile"}
OWNING_SERVICE = {"section": "metadata", "datafile": "files", **{t: "neo" for t in NEO_TYPES}}
_TYPED_ID = re.compile(r"^([a-z]+)_(\d+)$")


def kind_of(resource: str) -> str:
    return resource.rsplit("_", 1)[0]


def service_of(resource: str) -> str:
    return OWNING_SERVICE[kind_of(resource)]


def parse_resource(raw: object, *, field: str = "resources") -> str:
    """A typed id from a request body (`"section_5"`), checked; 400 when it is not one."""
    match = _TYPED_ID.match(raw.strip().lower()) if isinstance(raw, str) else None
    if not match or match.group(1) not in OWNING_SERVICE:
        raise BadRequest(
            f"`{field}`: {raw!r} is not a resource id (section_<n>, datafile_<n> or <neo type>_<n>).",
            message_type="invalid_id", details={"field": field, "value": raw},
        )
    return f"{match.group(1)}_{int(match.group(2))}"


def resource_from_url(collection: str, raw_id: str) -> str:
    """The typed id named by `/<collection or NEO type>/<id>/acl/`; 404 when there is none."""
    kind = COLLECTION_KINDS.get(collection, collection if collection in NEO_TYPES else None)
    if kind is None:
        raise NotFound(f"There is no resource type {collection!r}.", message_type="unknown_type")
    raw = raw_id.strip().lower()
    if raw.isdigit():
        return f"{kind}_{int(raw)}"
    match = _TYPED_ID.match(raw)
    if not match or match.group(1) != kind:
        raise NotFound(f"{raw_id!r} is not an id of a {kind}.", message_type="not_found")
    return f"{kind}_{int(match.group(2))}"


def parent_ids(raw: object) -> list[str]:
    """Parent typed ids from an event field: a NEO `parents` dict, a list, or one id."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        values: list = []
        for value in raw.values():
            values.extend(value if isinstance(value, list) else [value])
        raw = values
    if not isinstance(raw, list):
        raw = [raw]
    return [str(v) for v in raw if v not in (None, "")]
