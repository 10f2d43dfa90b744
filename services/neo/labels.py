"""Labels (seed 001, "Labeling raw data objects with metadata"): a metadata value linked to NEO objects.

A label is a document of the `labels` collection (`label_<n>`: `value_id`, `owner`, `objects` as
neo ids) and, on every labelled object, the value id in its indexed `labels` array, so that a
selection's `label` lookup is one indexed query (services/neo/selections.py). An object holds a
value id while at least one label with that value names it.

Creating a label needs write access on every object and read access on the value (asked of the
metadata service, decided here with `shared.access.can_read`); removing a label, wholly or from
some objects, is for the label's owner. Everything is checked before anything is written; the
writes go in `$in` pieces of `IN_CHUNK` ids.

NEO create and update take a `metadata` list of value ids (services/neo/service.py): the same value
check (`check_metadata`), then labels of the caller for new objects (`label_new_objects`), or the
object's labels replaced by exactly those values (`link_metadata`). Deleted objects leave the label
documents (`forget_objects`).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Iterable

from services.neo import history, selections
from services.neo.context import NeoContext
from services.neo.ids import InvalidId, neo_id, parse_typed
from services.neo.schema import NEO_TYPES, NeoType
from services.neo.service import load_readable, parse_object_id, require_type
from services.neo.store import LIVE
from shared.access import IN_CHUNK, can_read, can_write
from shared.errors import BadRequest, Forbidden, NotFound
from shared.identity import Identity
from shared.mongo import next_sequence

SEQUENCE = "label"
MAX_OBJECTS = 100_000  # per request, from `apply_to` and the selection together


class InvalidLabel(BadRequest):
    message_type = "invalid_label"


def _chunks(items: list[Any], size: int = IN_CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def id_filters(ids: list[int]) -> Iterable[dict[str, Any]]:
    """Filters that together match exactly `ids`: a range per run of consecutive ids (objects made in
    one batch), the rest as `$in` pieces of `IN_CHUNK` (the stand-in is slow on big `$in`)."""
    ordered = sorted(set(ids))
    scattered: list[int] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end - start + 1 >= IN_CHUNK:
            yield {"_id": {"$gte": ordered[start], "$lte": ordered[end]}}
        else:
            scattered.extend(ordered[start:end + 1])
        start = end + 1
    for piece in _chunks(scattered):
        yield {"_id": {"$in": piece}}


def parse_value_id(raw: Any, field: str = "value_id") -> int:
    """`value_12`, `"12"` or 12 -> 12; a 400 naming `field` otherwise."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return raw
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text.startswith("value_"):
            text = text[len("value_"):]
        if text.isdigit() and len(text) <= 18 and int(text) >= 1:
            return int(text)
    raise InvalidLabel(f"`{field}` must be a value id like 'value_12' or 12, not {raw!r}.", details={"field": field})


def label_number(raw_id: str) -> int | None:
    text = raw_id.strip().lower()
    if text.startswith("label_"):
        text = text[len("label_"):]
    return int(text) if text.isdigit() and len(text) <= 18 else None


def _body(body: Any, *, allowed: set[str], required_targets: bool) -> dict[str, Any]:
    if body is None and not required_targets:
        return {}
    if not isinstance(body, dict):
        raise InvalidLabel("The body must be a JSON object.", details={"field": "body"})
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidLabel(f"Unknown field(s): {', '.join(unknown)}.", details={"field": unknown[0]})
    if required_targets and body.get("apply_to") is None and body.get("selection_id") is None:
        raise InvalidLabel("Give `apply_to` (a list of object ids) and/or `selection_id`.", details={"field": "apply_to"})
    return body


def _targets(ctx: NeoContext, identity: Identity, body: dict[str, Any]) -> dict[str, list[int]]:
    """The objects named by `apply_to` and `selection_id`, as {type: sorted ids}; 400 on bad ids."""
    grouped: dict[str, set[int]] = defaultdict(set)
    apply_to = body.get("apply_to")
    if apply_to is not None:
        if not isinstance(apply_to, list):
            raise InvalidLabel("`apply_to` must be a list of object ids like 'analogsignal_12'.", details={"field": "apply_to"})
        if len(apply_to) > MAX_OBJECTS:
            raise InvalidLabel(f"`apply_to` has more than {MAX_OBJECTS} objects.", details={"field": "apply_to"})
        for index, raw in enumerate(apply_to):
            try:
                type_name, object_id = parse_typed(raw)
            except InvalidId as exc:
                raise InvalidLabel(f"apply_to[{index}]: {exc}.", details={"field": f"apply_to[{index}]"}) from None
            grouped[type_name].add(object_id)
    raw_selection = body.get("selection_id")
    if raw_selection is not None:
        if not isinstance(raw_selection, (str, int)) or isinstance(raw_selection, bool):
            raise InvalidLabel("`selection_id` must be a saved selection id like 'selection_3'.", details={"field": "selection_id"})
        saved = selections.load_own(ctx, identity, str(raw_selection))
        neo_type = NEO_TYPES[saved["obj_type"]]
        ids = grouped[neo_type.name]
        found, total = selections.matching_ids(ctx, identity, neo_type, saved["querysets"], limit=MAX_OBJECTS + 1)
        ids.update(found)
        if total > MAX_OBJECTS or len(ids) > MAX_OBJECTS:
            raise InvalidLabel(f"The selection has more than {MAX_OBJECTS} objects.", details={"field": "selection_id"})
    total = sum(len(ids) for ids in grouped.values())
    if total > MAX_OBJECTS:
        raise InvalidLabel(f"More than {MAX_OBJECTS} objects in one request.", details={"field": "apply_to"})
    return {name: sorted(ids) for name, ids in grouped.items() if ids}


def _check_writable(ctx: NeoContext, identity: Identity, targets: dict[str, list[int]]) -> None:
    """404 naming unknown objects, 403 naming objects the caller may not change."""
    projection = {"owner": 1, "readers": 1, "writers": 1, "safety_level": 1}
    for type_name, ids in targets.items():
        collection = ctx.store.collection(type_name)
        for piece in _chunks(ids):
            docs = {doc["_id"]: doc for doc in collection.find({"_id": {"$in": piece}, **LIVE}, projection)}
            missing = [i for i in piece if i not in docs]
            if missing:
                names = [neo_id(type_name, i) for i in missing[:10]]
                raise NotFound(f"There is no {', '.join(names)}.", details={"field": "apply_to", "objects": names})
            refused = [i for i in piece if not (can_read(docs[i], identity) and can_write(docs[i], identity))]
            if refused:
                names = [neo_id(type_name, i) for i in refused[:10]]
                raise Forbidden(f"You may not change {', '.join(names)}.", details={"field": "apply_to", "objects": names})


def readable_values(metadata, identity: Identity, value_ids: list[int], field: str = "value_id") -> list[dict[str, Any]]:
    """The values, asked of the metadata service in one call: 404 for an unknown one, 403 for one the
    caller may not read (`details.field` is `field`, `details.values` names them)."""
    if not value_ids:
        return []
    found, _missing = metadata.values(identity, value_ids)
    by_id = {int(v.get("value_id", 0)): v for v in found}
    unknown = [f"value_{i}" for i in value_ids if i not in by_id]
    if unknown:
        raise NotFound(f"There is no {', '.join(unknown[:10])}.", details={"field": field, "values": unknown[:100]})
    refused = [f"value_{i}" for i in value_ids if not can_read(by_id[i], identity)]
    if refused:
        raise Forbidden(f"You may not read {', '.join(refused[:10])}.", details={"field": field, "values": refused[:100]})
    return [by_id[i] for i in value_ids]


def _readable_value(metadata, identity: Identity, value_id: int) -> dict[str, Any]:
    return readable_values(metadata, identity, [value_id])[0]


def describe(doc: dict[str, Any]) -> dict[str, Any]:
    return {"label_id": f"label_{doc['_id']}", "value_id": f"value_{doc['value_id']}", "owner": doc["owner"],
            "objects": list(doc.get("objects") or []), "object_total": len(doc.get("objects") or []),
            "date_created": doc.get("date_created")}


def create(*, ctx: NeoContext, metadata, identity: Identity, body: Any) -> dict[str, Any]:
    body = _body(body, allowed={"value_id", "apply_to", "selection_id"}, required_targets=True)
    if "value_id" not in body:
        raise InvalidLabel("`value_id` is required.", details={"field": "value_id"})
    value_id = parse_value_id(body["value_id"])
    targets = _targets(ctx, identity, body)
    if not targets:
        raise InvalidLabel("There are no objects to label.", details={"field": "apply_to" if body.get("apply_to") is not None else "selection_id"})
    _check_writable(ctx, identity, targets)
    _readable_value(metadata, identity, value_id)
    # Everything checked: now write.
    number = next_sequence(ctx.store.db, SEQUENCE)
    objects = [neo_id(type_name, i) for type_name, ids in targets.items() for i in ids]
    doc = {"_id": number, "value_id": value_id, "owner": identity.user_id, "owner_name": identity.username,
           "objects": objects, "date_created": datetime.now(timezone.utc)}
    ctx.store.labels.insert_one(doc)
    for type_name, ids in targets.items():
        collection = ctx.store.collection(type_name)
        for where in id_filters(ids):
            collection.update_many(where, {"$addToSet": {"labels": value_id}})
    # One entry however many objects: labelling 10,000 objects stays one insert.
    history.record_labelled(ctx.store.history, identity=identity, neo_ids=objects, value_id=value_id,
                            label_id=f"label_{number}")
    return describe(doc)


# --- the `metadata` field of NEO create and update (services/neo/service.py) ------------------

def check_metadata(metadata, identity: Identity, value_ids: list[int]) -> None:
    """Read access on every value of a `metadata` list, as for `POST /labels/`; 400 when there is no
    metadata client (a caller other than the HTTP routes)."""
    if not value_ids:
        return
    if metadata is None:
        raise InvalidLabel("`metadata` is not accepted here.", details={"field": "metadata"})
    readable_values(metadata, identity, value_ids, field="metadata")


def _new_label(ctx: NeoContext, identity: Identity, value_id: int, objects: list[str]) -> None:
    ctx.store.labels.insert_one({"_id": next_sequence(ctx.store.db, SEQUENCE), "value_id": value_id,
                                 "owner": identity.user_id, "owner_name": identity.username,
                                 "objects": objects, "date_created": datetime.now(timezone.utc)})


def label_new_objects(ctx: NeoContext, identity: Identity, by_value: dict[int, list[str]]) -> None:
    """New objects created with `metadata`: one label of the caller per value, naming them."""
    for value_id, objects in by_value.items():
        if objects:
            _new_label(ctx, identity, value_id, objects)


def link_metadata(ctx: NeoContext, identity: Identity, objects: list[str], value_ids: list[int]) -> None:
    """Make `value_ids` exactly the values that label documents give `objects` (neo ids, whose
    `labels` arrays the caller sets to `value_ids`): the objects leave every label of another value,
    and a new label of the caller names those not yet named by a label of each given value. Values
    already checked (`check_metadata`)."""
    for piece in _chunks(objects):
        ctx.store.labels.update_many({"value_id": {"$nin": value_ids}, "objects": {"$in": piece}},
                                     {"$pull": {"objects": {"$in": piece}}})
    for value_id in value_ids:
        uncovered: list[str] = []
        for piece in _chunks(objects):
            covered: set[str] = set()
            for other in ctx.store.labels.find({"value_id": value_id, "objects": {"$in": piece}}, {"objects": 1}):
                covered.update(other["objects"])
            uncovered.extend(o for o in piece if o not in covered)
        if uncovered:
            _new_label(ctx, identity, value_id, uncovered)


def forget_objects(ctx: NeoContext, objects: list[str]) -> None:
    """Deleted objects leave every label document that names them (the labels themselves stay)."""
    for piece in _chunks(objects):
        ctx.store.labels.update_many({"objects": {"$in": piece}}, {"$pull": {"objects": {"$in": piece}}})


def load_own(ctx: NeoContext, identity: Identity, raw_id: str) -> dict[str, Any]:
    number = label_number(raw_id)
    doc = ctx.store.labels.find_one({"_id": number}) if number is not None else None
    if doc is None:
        raise NotFound(f"There is no label {raw_id!r}.")
    if doc.get("owner") != identity.user_id:
        raise Forbidden(f"Only the owner of label {raw_id!r} may change it.")
    return doc


def _unlink(ctx: NeoContext, label: dict[str, Any], objects: list[str]) -> None:
    """Pull the label's value from `objects`, except where another label with that value names them."""
    value_id = label["value_id"]
    for piece in _chunks(objects):
        covered: set[str] = set()
        others = ctx.store.labels.find({"value_id": value_id, "_id": {"$ne": label["_id"]}, "objects": {"$in": piece}},
                                       {"objects": 1})
        wanted = set(piece)
        for other in others:
            covered.update(o for o in other["objects"] if o in wanted)
        grouped: dict[str, list[int]] = defaultdict(list)
        for name in piece:
            if name not in covered:
                type_name, object_id = parse_typed(name)
                grouped[type_name].append(object_id)
        for type_name, ids in grouped.items():
            ctx.store.collection(type_name).update_many({"_id": {"$in": ids}, "labels": value_id},
                                                        {"$pull": {"labels": value_id}})


def _record_unlabelled(ctx: NeoContext, identity: Identity, label: dict[str, Any], objects: list[str], *,
                       label_deleted: bool) -> None:
    history.record_unlabelled(ctx.store.history, identity=identity, neo_ids=objects, value_id=label["value_id"],
                              label_id=f"label_{label['_id']}", label_deleted=label_deleted)


def remove(*, ctx: NeoContext, identity: Identity, raw_id: str, body: Any) -> dict[str, Any]:
    """The whole label without a body; with `apply_to` and/or `selection_id`, from those objects only."""
    label = load_own(ctx, identity, raw_id)
    body = _body(body, allowed={"apply_to", "selection_id"}, required_targets=False)
    if not body or (body.get("apply_to") is None and body.get("selection_id") is None):
        _unlink(ctx, label, list(label.get("objects") or []))
        ctx.store.labels.delete_one({"_id": label["_id"]})
        _record_unlabelled(ctx, identity, label, list(label.get("objects") or []), label_deleted=True)
        return {"label_id": f"label_{label['_id']}", "deleted": True, "removed_from": list(label.get("objects") or [])}
    targets = _targets(ctx, identity, body)
    chosen = {neo_id(type_name, i) for type_name, ids in targets.items() for i in ids}
    current = list(label.get("objects") or [])
    removed = [o for o in current if o in chosen]
    remaining = [o for o in current if o not in chosen]
    if removed:
        ctx.store.labels.update_one({"_id": label["_id"]}, {"$set": {"objects": remaining}})
        _unlink(ctx, label, removed)
        _record_unlabelled(ctx, identity, label, removed, label_deleted=False)
    return {"label_id": f"label_{label['_id']}", "deleted": False, "removed_from": removed,
            "object_total": len(remaining)}


def get(*, ctx: NeoContext, identity: Identity, raw_id: str) -> dict[str, Any]:
    return describe(load_own(ctx, identity, raw_id))


def object_metadata(*, ctx: NeoContext, metadata, identity: Identity, type_name: str, raw_id: str) -> dict[str, Any]:
    """The object's `[property, value]` pairs, of the values the caller may read."""
    neo_type: NeoType = require_type(type_name)
    doc = load_readable(ctx, identity, neo_type, parse_object_id(neo_type, raw_id))
    value_ids = [int(v) for v in doc.get("labels") or []]
    found, _missing = metadata.values(identity, value_ids)
    readable = [v for v in found if can_read(v, identity)]
    return {
        "neo_id": neo_id(neo_type.name, doc["_id"]),
        "metadata": [[v.get("property_name"), v.get("value")] for v in readable],
        "values": [{"value_id": f"value_{v['value_id']}", "property_id": v.get("property_id"),
                    "property_name": v.get("property_name"), "value": v.get("value"), "unit": v.get("unit")}
                   for v in readable],
    }
