"""Creating, updating and deleting NEO objects: every check and write of those lives here."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

from services.neo import events, history
from services.neo.context import NeoContext
from services.neo.ids import InvalidId, neo_id, parse_id
from services.neo.quota import array_bytes
from services.neo.relations import descendants, has_children, parent_ids, resolve_parents
from services.neo.schema import NEO_TYPES, NeoType
from services.neo.store import LIVE
from services.neo.validate import Changes, parse_changes
from shared.access import acl_of, can_read, can_write, check_access, new_acl
from shared.errors import BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed
from shared.events import envelope_for, outbox_fields, record_event, tombstone_update, with_outbox
from shared.events.outbox import OUTBOX_FIELD
from shared.identity import Identity


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _event(event: Any) -> dict:
    return envelope_for(event, producer=events.PRODUCER)


def require_type(type_name: str) -> NeoType:
    name = type_name.lower()
    # The seed itself writes plural forms at times (GET /electrophysiology/analogsignals/).
    neo_type = NEO_TYPES.get(name) or (NEO_TYPES.get(name[:-1]) if name.endswith("s") else None)
    if neo_type is None:
        raise NotFound(
            f"There is no object type {type_name!r}; the types are {', '.join(NEO_TYPES)}.", message_type="unknown_type"
        )
    return neo_type


def parse_object_id(neo_type: NeoType, raw: str) -> int:
    try:
        return parse_id(raw, expected_type=neo_type.name)[1]
    except InvalidId as exc:
        raise NotFound(f"No such {neo_type.name}: {exc}.") from None


def load_object(
    ctx: NeoContext, identity: Identity, neo_type: NeoType, object_id: int, need: str = "read"
) -> dict[str, Any]:
    """The live object when `identity` may `need` ("read", "write", "owner") it (docs/permissions.md):
    404 when it does not exist, 401 for an anonymous caller, 403 for a signed-in one."""
    doc = ctx.store.collection(neo_type).find_one({"_id": object_id, **LIVE}, {"_outbox": 0})
    check_access(doc, identity, name=neo_id(neo_type.name, object_id), need=need)
    return doc


def load_readable(ctx: NeoContext, identity: Identity, neo_type: NeoType, object_id: int) -> dict[str, Any]:
    return load_object(ctx, identity, neo_type, object_id, "read")


def load_writable(ctx: NeoContext, identity: Identity, neo_type: NeoType, object_id: int) -> dict[str, Any]:
    return load_object(ctx, identity, neo_type, object_id, "write")


# --- consistency of the whole object, after merging a change into what is stored -------------

def _merged_scalars(neo_type: NeoType, doc: Mapping[str, Any], changes: Changes) -> dict[str, dict | None]:
    merged = {d.name: doc.get(d.name) for d in neo_type.data_fields if not d.is_array}
    merged.update(changes.scalars)
    return merged


def _merged_lengths(neo_type: NeoType, doc: Mapping[str, Any], changes: Changes) -> dict[str, tuple[int, ...]]:
    stored = (doc.get("arrays") or {}).get("fields", {})
    shapes = {name: tuple(info["shape"]) for name, info in stored.items()}
    shapes.update({name: array.shape for name, array in changes.arrays.items()})
    return shapes


def check_consistency(neo_type: NeoType, doc: Mapping[str, Any], changes: Changes) -> None:
    scalars = _merged_scalars(neo_type, doc, changes)
    shapes = _merged_lengths(neo_type, doc, changes)
    problems = {}
    rate = scalars.get("sampling_rate")
    if rate is not None and rate["base"] <= 0:
        problems["sampling_rate"] = "must be above 0"
    duration = scalars.get("duration")
    if duration is not None and duration["base"] < 0:
        problems["duration"] = "cannot be negative"
    t_start, t_stop = scalars.get("t_start"), scalars.get("t_stop")
    if t_start and t_stop and t_stop["base"] < t_start["base"]:
        problems["t_stop"] = "must not be before t_start"
    if neo_type.name == "irsaanalogsignal" and "signal" in shapes and "times" in shapes:
        if shapes["signal"][0] != shapes["times"][0]:
            problems["times"] = f"has {shapes['times'][0]} values but signal has {shapes['signal'][0]}"
    if neo_type.name == "spiketrain" and "waveforms" in shapes and "times" in shapes:
        if shapes["waveforms"][0] != shapes["times"][0]:
            problems["waveforms"] = f"has {shapes['waveforms'][0]} spikes but times has {shapes['times'][0]}"
    if problems:
        raise BadRequest("The object's fields do not fit together.", message_type="invalid_fields", details=problems)


# --- building documents -----------------------------------------------------------------------

def _field_values(neo_type: NeoType, changes: Changes) -> dict[str, Any]:
    values: dict[str, Any] = {}
    values.update(changes.attributes)
    values.update(changes.scalars)
    values.update({name: {"units": array.units} for name, array in changes.arrays.items()})
    values.update(changes.parents)
    values.update(changes.common)
    return values


def _inherited_acl(neo_type: NeoType, parents: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first linked parent (table 2.4 order), whose ACL fields a new object copies (never its
    `acl_version`: the acl service's changes of the parent are not changes of the child)."""
    for parent_type in neo_type.parents:
        if parent_type in parents:
            return parents[parent_type]
    return None


class _Draft:
    """One object being created: its validated changes, linked parents, id and stored arrays."""

    def __init__(self, neo_type: NeoType, changes: Changes, parents: dict[str, dict]):
        self.neo_type, self.changes, self.parents = neo_type, changes, parents
        self.object_id = 0
        self.descriptor: dict | None = None

    def document(self, identity: Identity, source: Mapping[str, Any] | None) -> dict[str, Any]:
        object_neo_id = neo_id(self.neo_type.name, self.object_id)
        now = _now()
        doc = {
            "_id": self.object_id,
            "neo_id": object_neo_id,
            "author": identity.username,
            "date_created": now,
            "last_modified": now,
            "version": 1,
            **{p: None for p in self.neo_type.parents},
            **_field_values(self.neo_type, self.changes),
            "arrays": self.descriptor,
            "size": array_bytes(self.descriptor),
            "metadata": [],
            **({"labels": list(self.changes.metadata)} if self.changes.metadata else {}),
            **new_acl(owner=identity.user_id, owner_name=identity.username,
                      inherited=_inherited_acl(self.neo_type, self.parents)),
        }
        return doc

    def announced(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The object as one entry of `neo.objects.created`."""
        return {"neo_id": doc["neo_id"], "parents": parent_ids(self.neo_type, doc), "acl": acl_of(doc)}


def _announce(neo_type: NeoType, identity: Identity, drafts: list[_Draft], documents: list[dict],
              source: Mapping[str, Any] | None) -> None:
    """Queue one `neo.objects.created` per `CREATED_PER_EVENT` objects, in the outbox of the first
    document of each run: a create of 10,000 objects publishes 20 events, not 10,000 (each event
    costs the relay and every consumer several writes)."""
    for start in range(0, len(documents), events.CREATED_PER_EVENT):
        run = range(start, min(start + events.CREATED_PER_EVENT, len(documents)))
        created = events.ObjectsCreated(
            type=neo_type.name, owner=identity.user_id, source=event_source(source),
            objects=[drafts[i].announced(documents[i]) for i in run],
        )
        documents[start].update(outbox_fields(_event(created)))


def event_source(source: Mapping[str, Any] | None) -> str | None:
    """The `source` of neo.objects.created: the resource whose job made the object (`datafile_9`),
    or None for a plain request (services/neo/events.py)."""
    return str(source["resource"]) if source and source.get("resource") else None


def create_objects(
    *,
    ctx: NeoContext,
    identity: Identity,
    type_name: str,
    bodies: list[Any],
    uploads: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    metadata=None,
) -> list[dict[str, Any]]:
    """Create one or many objects of one type; all are validated before any is written. A body's
    `metadata` (value ids) labels its object, after the same read check on the values as
    `POST /labels/` (`metadata` is the metadata service's client, services/neo/labels.py).
    `source` is the history source of the request (`shared.history.source_from_header`); one
    history entry names every object made."""
    from services.neo import labels  # labels imports this module
    neo_type = require_type(type_name)
    if not bodies:
        raise BadRequest("Give an object, or a list of objects, to create.", message_type="empty_body")
    if len(bodies) > ctx.limits.max_create_batch:
        raise BadRequest(f"At most {ctx.limits.max_create_batch} objects per request.", message_type="too_many_objects")
    drafts = []
    for position, body in enumerate(bodies):
        try:
            changes = parse_changes(neo_type, body, uploads if len(bodies) == 1 else None, creating=True)
            check_consistency(neo_type, {}, changes)
            drafts.append(_Draft(neo_type, changes, resolve_parents(ctx, identity, changes.parents)))
        except BadRequest as exc:
            if len(bodies) > 1:
                exc.details = {"index": position, "problems": exc.details}
                exc.message = f"Object {position} of the list: {exc.message} Nothing was created."
            raise
    value_ids = list(dict.fromkeys(v for draft in drafts for v in draft.changes.metadata or []))
    labels.check_metadata(metadata, identity, value_ids)
    documents, event_id = _write_drafts(ctx, identity, drafts, source)
    if value_ids:
        by_value: dict[int, list[str]] = {v: [] for v in value_ids}
        for draft, doc in zip(drafts, documents):
            for value_id in draft.changes.metadata or []:
                by_value[value_id].append(doc["neo_id"])
        labels.label_new_objects(ctx, identity, by_value)
    history.record_created(ctx.store.history, identity=identity, type_name=neo_type.name,
                           neo_ids=[d["neo_id"] for d in documents], source=source, value_ids=value_ids,
                           entry_id=event_id)
    return documents


def _write_arrays(ctx: NeoContext, neo_type: NeoType, changes: Changes, key: str, old: dict | None = None) -> dict:
    """Store the changed arrays as a new file version; a broken upload is a 400."""
    new_fields = {name: array.source for name, array in changes.arrays.items()}
    try:
        if old:
            keep = [name for name in old.get("fields", {}) if name not in new_fields]
            return ctx.arrays.copy_fields(key, old, keep, new_fields)
        return ctx.arrays.write(key, new_fields)
    except ValueError as exc:
        raise BadRequest(f"An array could not be stored: {exc}.", message_type="invalid_array") from None


def _write_drafts(
    ctx: NeoContext, identity: Identity, drafts: list[_Draft], source: Mapping[str, Any] | None
) -> tuple[list[dict], str]:
    """The stored documents (without their outbox) and the id of their first `neo.objects.created`
    event, the history entry's id."""
    neo_type = drafts[0].neo_type
    reserved = sum(draft.changes.array_bytes for draft in drafts)
    ctx.quota.reserve(owner=identity.user_id, nbytes=reserved)  # refused: nothing written yet
    try:
        # Arrays first: an upload that turns out broken must not use up ids or leave documents.
        for draft in drafts:
            if draft.changes.arrays:
                draft.descriptor = _write_arrays(ctx, neo_type, draft.changes, f"{neo_type.name}_{uuid.uuid4().hex[:8]}")
        for draft, object_id in zip(drafts, ctx.store.next_ids(neo_type.name, len(drafts))):
            draft.object_id = object_id
        documents = [draft.document(identity, source) for draft in drafts]
        _announce(neo_type, identity, drafts, documents, source)
        ctx.store.collection(neo_type).insert_many(documents, ordered=True)
    except BaseException:
        ctx.store.collection(neo_type).delete_many({"_id": {"$in": [d.object_id for d in drafts if d.object_id]}})
        for draft in drafts:
            if draft.descriptor:
                ctx.arrays.delete(draft.descriptor)
        ctx.quota.release(owner=identity.user_id, nbytes=reserved)
        raise
    event_id = documents[0][OUTBOX_FIELD][0]["event_id"]
    return [{k: v for k, v in doc.items() if not k.startswith("_outbox")} for doc in documents], event_id


# --- updates ----------------------------------------------------------------------------------

def update_object(
    *,
    ctx: NeoContext,
    identity: Identity,
    type_name: str,
    raw_id: str,
    body: Any,
    uploads: Mapping[str, Any] | None = None,
    if_match: str | None = None,
    current_etag=None,
    metadata=None,
) -> dict[str, Any]:
    """Change an object; a `metadata` list makes the object's labels exactly those values."""
    from services.neo import labels  # labels imports this module

    neo_type = require_type(type_name)
    doc = load_writable(ctx, identity, neo_type, parse_object_id(neo_type, raw_id))
    if if_match and current_etag is not None and if_match.strip() not in ("*", current_etag(doc)):
        raise PreconditionFailed(f"{doc['neo_id']} has changed since you read it (If-Match does not match).")
    changes = parse_changes(neo_type, body, uploads, creating=False)
    if changes.is_empty:
        raise BadRequest("Nothing to update: give the fields to change.", message_type="empty_update")
    check_consistency(neo_type, doc, changes)
    resolve_parents(ctx, identity, changes.parents)
    labels.check_metadata(metadata, identity, changes.metadata or [])
    descriptor = doc.get("arrays")
    growth = _reserve_array_growth(ctx, identity, doc, changes)
    if changes.arrays:
        try:
            descriptor = _write_arrays(ctx, neo_type, changes, doc["neo_id"], old=doc.get("arrays"))
        except BaseException:
            ctx.quota.release(owner=doc["owner"], nbytes=growth)
            raise
    values = _field_values(neo_type, changes)
    unset = {name: "" for name, value in values.items() if value is None and name in changes.scalars}
    values = {name: value for name, value in values.items() if name not in unset}
    values.update(arrays=descriptor, size=array_bytes(descriptor), last_modified=_now())
    if changes.metadata is not None:
        values["labels"] = changes.metadata
    merged_parents = parent_ids(neo_type, {**doc, **changes.parents})
    updated = events.ObjectUpdated(
        neo_id=doc["neo_id"], type=neo_type.name, fields=sorted(_field_values(neo_type, changes)), parents=merged_parents
    )
    update: dict[str, Any] = {"$set": values, "$inc": {"version": 1}}
    if unset:
        update["$unset"] = unset
    envelope = _event(updated)
    result = ctx.store.collection(neo_type).update_one(
        {"_id": doc["_id"], "version": doc["version"], **LIVE}, with_outbox(update, envelope)
    )
    if result.modified_count != 1:
        if descriptor is not doc.get("arrays"):
            ctx.arrays.delete(descriptor)
        ctx.quota.release(owner=doc["owner"], nbytes=growth)
        raise PreconditionFailed(f"{doc['neo_id']} was changed by another request at the same time; try again.")
    if changes.arrays and doc.get("arrays"):
        ctx.arrays.delete(doc["arrays"])
    if growth < 0:  # the replaced arrays were larger
        ctx.quota.release(owner=doc["owner"], nbytes=-growth)
    if changes.metadata is not None:
        labels.link_metadata(ctx, identity, [doc["neo_id"]], changes.metadata)
    history.record_updated(ctx.store.history, identity=identity, neo_ids=[doc["neo_id"]], fields=updated.fields,
                           value_ids=changes.metadata, entry_id=envelope["event_id"])
    return load_readable(ctx, identity, neo_type, doc["_id"])


def _reserve_array_growth(ctx: NeoContext, identity: Identity, doc: Mapping[str, Any], changes: Changes) -> int:
    """The bytes an array replacement adds to the object's owner's storage (negative when it
    shrinks it), reserved before the new arrays are written; the owner pays, whoever writes."""
    if not changes.arrays:
        return 0
    stored = (doc.get("arrays") or {}).get("fields", {})
    growth = changes.array_bytes - sum(int(stored[name]["nbytes"]) for name in changes.arrays if name in stored)
    caller_owns = doc["owner"] == identity.user_id
    ctx.quota.reserve(owner=doc["owner"], nbytes=growth, owner_name=None if caller_owns else doc.get("author"))
    return growth


def bulk_update(*, ctx: NeoContext, identity: Identity, type_name: str, body: Any, metadata=None) -> list[str]:
    """Change the same attributes, scalar data fields, parents or `metadata` (labels) of many objects at once."""
    from services.neo import labels  # labels imports this module

    neo_type = require_type(type_name)
    if not isinstance(body, Mapping) or set(body) - {"apply_to", "update"}:
        raise BadRequest('Give {"apply_to": [neo_ids], "update": {fields}}.', message_type="invalid_bulk_update")
    targets = body.get("apply_to")
    if not isinstance(targets, list) or not targets:
        raise BadRequest("`apply_to` must be a non-empty list of ids.", message_type="invalid_bulk_update")
    if len(targets) > ctx.limits.max_create_batch:
        raise BadRequest(f"At most {ctx.limits.max_create_batch} objects per request.", message_type="too_many_objects")
    try:
        ids = sorted({parse_id(raw, expected_type=neo_type.name)[1] for raw in targets})
    except InvalidId as exc:
        raise BadRequest(f"`apply_to`: {exc}.", message_type="invalid_id") from None
    changes = parse_changes(neo_type, body.get("update"), None, creating=False)
    if changes.arrays or changes.is_empty:
        raise BadRequest("A bulk update changes attributes, scalar data fields, parents or metadata (not arrays).",
                         message_type="invalid_bulk_update")
    resolve_parents(ctx, identity, changes.parents)
    collection = ctx.store.collection(neo_type)
    acl_projection = {"owner": 1, "safety_level": 1, "readers": 1, "writers": 1}
    found = {d["_id"]: d for d in collection.find({"_id": {"$in": ids}, **LIVE}, acl_projection)}
    # What the caller may not read is as good as missing (no hint that it exists): a 400 like any
    # bad id in the body. Objects they may read but not change: 403 (docs/permissions.md).
    missing = [neo_id(neo_type.name, i) for i in ids if i not in found or not can_read(found[i], identity)]
    if missing:
        raise BadRequest("Some objects do not exist; nothing was changed.",
                         message_type="invalid_id", details={"not_found": missing[:100]})
    read_only = [neo_id(neo_type.name, i) for i in ids if not can_write(found[i], identity)]
    if read_only:
        raise Forbidden("You may read but not change some of these objects; nothing was changed.",
                        details={"not_writable": read_only[:100]})
    moved: dict[str, dict[str, str]] = {}
    for doc in collection.find({"_id": {"$in": ids}}, {"_outbox": 0}):
        check_consistency(neo_type, doc, changes)
        if changes.parents:  # the acl service's tree follows parent links
            moved[doc["neo_id"]] = parent_ids(neo_type, {**doc, **changes.parents})
    labels.check_metadata(metadata, identity, changes.metadata or [])
    neo_ids = [neo_id(neo_type.name, i) for i in ids]
    values = _field_values(neo_type, changes)
    event_id = record_event(ctx.store.db, _event(
        events.ObjectsUpdated(type=neo_type.name, neo_ids=neo_ids, fields=sorted(values), parents=moved)
    ))
    label_set = {} if changes.metadata is None else {"labels": changes.metadata}
    collection.update_many({"_id": {"$in": ids}},
                           {"$set": {**values, **label_set, "last_modified": _now()}, "$inc": {"version": 1}})
    if changes.metadata is not None:
        labels.link_metadata(ctx, identity, neo_ids, changes.metadata)
    history.record_updated(ctx.store.history, identity=identity, neo_ids=neo_ids, fields=sorted(values),
                           value_ids=changes.metadata, entry_id=event_id)
    return neo_ids


# --- deletes ----------------------------------------------------------------------------------

def delete_object(*, ctx: NeoContext, identity: Identity, type_name: str, raw_id: str, cascade: bool) -> list[str]:
    """Delete an object; one with children only with cascade, which deletes every descendant."""
    neo_type = require_type(type_name)
    doc = load_object(ctx, identity, neo_type, parse_object_id(neo_type, raw_id), "owner")
    children = has_children(ctx, neo_type, doc["_id"])
    if children and not cascade:
        raise Conflict(
            f"{doc['neo_id']} has children; delete them first or ask for cascade=true.",
            message_type="has_children", details={"children": children},
        )
    doomed = [(neo_type, doc)]
    if cascade:
        doomed += list(descendants(ctx, None, neo_type, doc["_id"], projection={"owner": 1, "neo_id": 1, "arrays": 1, "safety_level": 1, "readers": 1}))
        foreign = [d for _, d in doomed if d["owner"] != identity.user_id]
        if foreign:
            # Name only the descendants the caller may read; count them all.
            shown = [d["neo_id"] for d in foreign if can_read(d, identity)]
            raise Forbidden("Some descendants belong to other users; nothing was deleted.",
                            details={"not_yours": shown[:100], "count": len(foreign)})
    from services.neo import labels  # labels imports this module

    # Descendants first, the object last: its deletion event's id is the history entry's.
    event_id = ""
    for doomed_type, doomed_doc in reversed(doomed):
        event_id = _delete_one(ctx, doomed_type, doomed_doc)
    deleted = [d["neo_id"] for _, d in doomed]
    labels.forget_objects(ctx, deleted)
    history.record_deleted(ctx.store.history, identity=identity, neo_ids=deleted, entry_id=event_id)
    return deleted


def _delete_one(ctx: NeoContext, neo_type: NeoType, doc: Mapping[str, Any]) -> str:
    """Tombstone one object with its deletion event; returns the event's id."""
    envelope = _event(events.ObjectDeleted(neo_id=doc["neo_id"], type=neo_type.name, owner=doc["owner"]))
    result = ctx.store.collection(neo_type).update_one({"_id": doc["_id"], **LIVE}, tombstone_update(envelope))
    if doc.get("arrays"):
        ctx.arrays.delete(doc["arrays"])
        if result.modified_count == 1:  # two concurrent deletes give the bytes back once
            ctx.quota.release(owner=doc["owner"], nbytes=array_bytes(doc["arrays"]))
    return envelope["event_id"]

