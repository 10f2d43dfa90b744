"""Selections (seed 001, "QUERY DATA USING G-NODE API"): NEO objects chosen by Django-style querysets.

`{"obj_type": ..., "querysets": [{"filter": {...}, "exclude": {...}}, ...], "save_as": ...}`:
within a queryset the filter lookups AND, the exclude lookups (together, as in Django's
`exclude(a=1, b=2)`) subtract; several querysets OR. Lookups are those of the list endpoint
(services/neo/query.py). A path through parents (`segment__name__contains`, `segment__block__name`)
is resolved parent first: the readable parents matching the rest of the path become an indexed
`$in` on the link field. Everything runs in MongoDB; only matching parent ids come into Python.

Saved selections (collection `selections`) are private to their owner and re-run on every read.
"""
from __future__ import annotations

from datetime import datetime, timezone
from itertools import islice
from typing import Any, Mapping

from services.neo import history
from services.neo.context import NeoContext
from services.neo.ids import neo_id
from services.neo.query import LOOKUPS, InvalidFilter, filter_clause
from services.neo.schema import NEO_TYPES, NeoType
from services.neo.store import LIVE
from shared.access import read_filter
from shared.errors import BadRequest, Forbidden, NotFound
from shared.identity import Identity
from shared.mongo import next_sequence
from shared.params import PAGING_PARAMETERS, parse_paging

MAX_QUERYSETS = 100
MAX_LOOKUPS = 100  # per filter or exclude object
MAX_NAME_LENGTH = 255
# Parent ids resolved into one `$in`; beyond this the query is refused rather than shipped.
MAX_PARENT_IDS = 1_000_000
SEQUENCE = "selection"


class InvalidSelection(BadRequest):
    message_type = "invalid_selection"


# --- the request body -----------------------------------------------------------------------------


def _lookups(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSelection(f"`{where}` must be an object of lookups.", details={"field": where})
    if len(value) > MAX_LOOKUPS:
        raise InvalidSelection(f"`{where}` has more than {MAX_LOOKUPS} lookups.", details={"field": where})
    for key, raw in value.items():
        if isinstance(raw, dict) or (raw is None and not key.endswith("__isnull")):
            raise InvalidFilter(f"{key}: expected a value (text, number or list), not {raw!r}.", details={"field": key})
        if isinstance(raw, list) and not key.endswith(("__in", "__range")):
            raise InvalidFilter(f"{key}: a list is only accepted by the `in` and `range` lookups.", details={"field": key})
        if isinstance(raw, list) and any(isinstance(item, (dict, list)) or item is None for item in raw):
            raise InvalidFilter(f"{key}: expected a list of values.", details={"field": key})
    return value


def parse_request(body: Any) -> tuple[NeoType, list[dict[str, dict[str, Any]]], str | None]:
    """(type, querysets as `{"filter", "exclude"}`, save_as) from a POST body; a 400 names what is wrong."""
    if not isinstance(body, dict):
        raise InvalidSelection("The body must be a JSON object with `obj_type` and `querysets`.", details={"field": "body"})
    unknown = sorted(set(body) - {"obj_type", "querysets", "save_as"})
    if unknown:
        raise InvalidSelection(f"Unknown field(s): {', '.join(unknown)}.", details={"field": unknown[0]})
    obj_type = body.get("obj_type")
    if not isinstance(obj_type, str) or obj_type.lower() not in NEO_TYPES:
        raise InvalidSelection(f"`obj_type` must be one of {', '.join(NEO_TYPES)}, not {obj_type!r}.",
                               details={"field": "obj_type"})
    neo_type = NEO_TYPES[obj_type.lower()]
    raw_sets = body.get("querysets")
    if not isinstance(raw_sets, list) or not raw_sets or not all(isinstance(q, dict) for q in raw_sets):
        raise InvalidSelection("`querysets` must be a non-empty list of objects with `filter` and/or `exclude`.",
                               details={"field": "querysets"})
    if len(raw_sets) > MAX_QUERYSETS:
        raise InvalidSelection(f"At most {MAX_QUERYSETS} querysets.", details={"field": "querysets"})
    querysets = []
    for index, raw in enumerate(raw_sets):
        extra = sorted(set(raw) - {"filter", "exclude"})
        if extra:
            raise InvalidSelection(f"querysets[{index}] has unknown key(s) {', '.join(extra)}; use filter and exclude.",
                                   details={"field": f"querysets[{index}].{extra[0]}"})
        querysets.append({
            "filter": _lookups(raw.get("filter"), f"querysets[{index}].filter"),
            "exclude": _lookups(raw.get("exclude"), f"querysets[{index}].exclude"),
        })
    save_as = body.get("save_as")
    if save_as is not None:
        if not isinstance(save_as, str) or not save_as.strip():
            raise InvalidSelection("`save_as` must be a non-empty string.", details={"field": "save_as"})
        if len(save_as) > MAX_NAME_LENGTH:
            raise InvalidSelection(f"`save_as` is longer than {MAX_NAME_LENGTH} characters.", details={"field": "save_as"})
    return neo_type, querysets, save_as


# --- lookups to MongoDB ---------------------------------------------------------------------------


def _value_id(raw: Any, full_key: str) -> int:
    """`value_12`, "12" or 12 -> 12 (labels hold metadata value ids, services/neo/labels.py)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return raw
    if isinstance(raw, str):
        text = raw.strip().lower()
        text = text[len("value_"):] if text.startswith("value_") else text
        if text.isdigit() and len(text) <= 18 and int(text) >= 1:
            return int(text)
    raise InvalidFilter(f"{full_key}: expected a value id like 'value_12' or 12, not {raw!r}.", details={"field": full_key})


def _label_clause(lookup: str, raw: Any, full_key: str) -> dict[str, Any]:
    """`label` (exact) and `label__in`: objects whose indexed `labels` array holds the value id(s)."""
    if lookup in ("", "exact"):
        return {"labels": _value_id(raw, full_key)}
    if lookup == "in":
        items = raw if isinstance(raw, list) else [part for part in str(raw).split(",") if part.strip()]
        if not items:
            raise InvalidFilter(f"{full_key}: expected a non-empty list of value ids.", details={"field": full_key})
        return {"labels": {"$in": sorted({_value_id(item, full_key) for item in items})}}
    raise InvalidFilter(f"{full_key}: a label supports the `exact` and `in` lookups only.",
                        message_type="unsupported_filter", details={"field": full_key, "lookup": lookup})


def _clause(ctx: NeoContext, identity: Identity, neo_type: NeoType, key: str, raw: Any, full_key: str) -> dict[str, Any]:
    name, _, rest = key.partition("__")
    if name == "labels" or (name == "label" and not any(a.name == "label" for a in neo_type.attributes)):
        # Metadata labels; events and epochs have a `label` attribute of their own, so use `labels` there.
        return _label_clause(rest, raw, full_key)
    if name in neo_type.parents and rest and rest.split("__", 1)[0] not in LOOKUPS:
        # A path through a parent: the readable parents that match, then `$in` on the link field.
        parent_type = NEO_TYPES[name]
        inner = _clause(ctx, identity, parent_type, rest, raw, full_key)
        query = {"$and": [LIVE, read_filter(identity), inner]}
        cursor = ctx.store.collection(parent_type).find(query, {"_id": 1})
        ids = [doc["_id"] for doc in islice(cursor, MAX_PARENT_IDS + 1)]
        cursor.close()
        if len(ids) > MAX_PARENT_IDS:
            raise InvalidFilter(f"{full_key} matches more than {MAX_PARENT_IDS} {name}s; narrow it.",
                                details={"field": full_key})
        return {name: {"$in": ids}}
    try:
        return filter_clause(neo_type, key, raw)
    except InvalidFilter as exc:
        # Name the whole path the caller wrote, not only its last step.
        details = dict(exc.details or {})
        details.setdefault("field", full_key)
        if full_key != key:
            details["path"] = full_key
            raise InvalidFilter(f"{full_key}: {exc.message}", details=details) from None
        raise


QuerysetClauses = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def _queryset_clauses(ctx: NeoContext, identity: Identity, neo_type: NeoType,
                      querysets: list[Mapping[str, Mapping[str, Any]]]) -> list[QuerysetClauses]:
    """(filter clauses, exclude clauses) of each queryset; parent paths resolved once, here."""
    return [([_clause(ctx, identity, neo_type, k, v, k) for k, v in queryset["filter"].items()],
             [_clause(ctx, identity, neo_type, k, v, k) for k, v in queryset["exclude"].items()])
            for queryset in querysets]


def build_query(identity: Identity, clauses: list[QuerysetClauses]) -> dict[str, Any]:
    """One MongoDB filter: live, readable, and (filters AND NOT excludes) of any queryset."""
    alternatives = []
    for filters, excludes in clauses:
        both = list(filters)
        if excludes:
            both.append({"$nor": [{"$and": excludes}]})
        alternatives.append({"$and": both} if both else {})
    chosen = alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}
    return {"$and": [LIVE, read_filter(identity), chosen]}


def _index_rank(neo_type: NeoType, field: str) -> int:
    if field in neo_type.parents:
        return 0  # a parent link narrows most: a few parents' children
    if field == "labels":
        return 1
    return 2 if any(a.name == field for a in neo_type.attributes) else 3


def flat_query(neo_type: NeoType, clauses: list[QuerysetClauses]) -> dict[str, Any] | None:
    """The selection as one flat filter led by its most selective indexed field, or None when it
    is not one queryset of plain field conditions on at least one indexed field.

    Why: the MongoDB stand-in (SecantusDB) uses an index only for a filter whose top level has no
    operator, and only for the first indexed field; `$and` / `$or` make it scan the collection.
    The permission filter follows it in the same aggregation (`readable_pipeline`)."""
    if len(clauses) != 1 or clauses[0][1]:
        return None
    merged: dict[str, Any] = {}
    for clause in clauses[0][0]:
        for field, condition in clause.items():
            if field.startswith("$") or field in merged or field in LIVE:
                return None
            merged[field] = condition
    ordered = sorted(merged, key=lambda field: _index_rank(neo_type, field))
    if not ordered or _index_rank(neo_type, ordered[0]) > 2:
        return None
    return {**{field: merged[field] for field in ordered}, **LIVE}


def readable_pipeline(identity: Identity, query: dict[str, Any]) -> list[dict[str, Any]]:
    """A flat filter, then the caller's read permission, as one aggregation that sends back only the
    ids of objects the caller may read, in order. The flat filter is a `$match` of its own because
    the stand-in plans an index for a leading `$match` without top-level operators only (MongoDB
    merges the two `$match` stages itself)."""
    return [{"$match": query}, {"$match": read_filter(identity)}, {"$project": {"_id": 1}}, {"$sort": {"_id": 1}}]


def run_flat(collection, identity: Identity, query: dict[str, Any], *, limit: int, offset: int
             ) -> tuple[list[int], int]:
    """(ids of the page, total) of the readable matches of a flat filter, counted as the cursor
    streams: only the page is held, never all the matches."""
    page, total = [], 0
    with collection.aggregate(readable_pipeline(identity, query)) as cursor:
        for doc in cursor:
            if offset <= total < offset + limit:
                page.append(doc["_id"])
            total += 1
    return page, total


def matching_ids(ctx: NeoContext, identity: Identity, neo_type: NeoType, querysets, *, limit: int, offset: int = 0
                 ) -> tuple[list[int], int]:
    """(object ids of the page, total) of the readable objects the querysets select, by id."""
    clauses = _queryset_clauses(ctx, identity, neo_type, querysets)
    collection = ctx.store.collection(neo_type)
    flat = flat_query(neo_type, clauses)
    if flat is not None:
        return run_flat(collection, identity, flat, limit=limit, offset=offset)
    query = build_query(identity, clauses)
    page = collection.find(query, {"_id": 1}).sort("_id", 1).skip(offset).limit(limit)
    return [doc["_id"] for doc in page], collection.count_documents(query)


def run(ctx: NeoContext, identity: Identity, neo_type: NeoType, querysets, args: Mapping[str, str]
        ) -> tuple[list[str], int, int]:
    """(neo_ids of the page, total, offset), paged like NEO lists."""
    paging = {k: v for k, v in args.items() if k in PAGING_PARAMETERS}
    limit, offset = parse_paging(paging, default_page=ctx.limits.default_page, max_page=ctx.limits.max_page)
    ids, total = matching_ids(ctx, identity, neo_type, querysets, limit=limit, offset=offset)
    return [neo_id(neo_type.name, number) for number in ids], total, offset


# --- saved selections -----------------------------------------------------------------------------


def select(*, ctx: NeoContext, identity: Identity, body: Any, args: Mapping[str, str]) -> dict[str, Any]:
    """Runs a selection; saves it first when `save_as` is given (only once the query is valid)."""
    neo_type, querysets, save_as = parse_request(body)
    ids, total, offset = run(ctx, identity, neo_type, querysets, args)
    result: dict[str, Any] = {"neo_ids": ids, "total": total, "offset": offset}
    if save_as is not None:
        number = next_sequence(ctx.store.db, SEQUENCE)
        ctx.store.selections.insert_one({
            "_id": number, "owner": identity.user_id, "owner_name": identity.username, "name": save_as,
            "obj_type": neo_type.name, "querysets": querysets, "date_created": datetime.now(timezone.utc),
        })
        result.update(selection_id=f"selection_{number}", selection_name=save_as)
        history.record_selection(ctx.store.history, identity=identity, selection_id=f"selection_{number}",
                                 name=save_as, saved=True)
    return result


def _number(raw_id: str) -> int | None:
    text = raw_id.strip().lower()
    if text.startswith("selection_"):
        text = text[len("selection_"):]
    return int(text) if text.isdigit() and len(text) <= 18 else None


def load_own(ctx: NeoContext, identity: Identity, raw_id: str) -> dict[str, Any]:
    number = _number(raw_id)
    doc = ctx.store.selections.find_one({"_id": number}) if number is not None else None
    if doc is None:
        raise NotFound(f"There is no selection {raw_id!r}.")
    if doc.get("owner") != identity.user_id:
        raise Forbidden(f"Selection {raw_id!r} is private to its owner.")
    return doc


def describe(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"selection_id": f"selection_{doc['_id']}", "name": doc["name"], "obj_type": doc["obj_type"],
            "querysets": doc["querysets"], "date_created": doc["date_created"]}


def list_saved(*, ctx: NeoContext, identity: Identity) -> list[dict[str, Any]]:
    docs = ctx.store.selections.find({"owner": identity.user_id}).sort("_id", 1)
    return [describe(doc) for doc in docs]


def rerun(*, ctx: NeoContext, identity: Identity, raw_id: str, args: Mapping[str, str]) -> dict[str, Any]:
    doc = load_own(ctx, identity, raw_id)
    ids, total, offset = run(ctx, identity, NEO_TYPES[doc["obj_type"]], doc["querysets"], args)
    return {"neo_ids": ids, "total": total, "offset": offset, "selection": describe(doc)}


def delete(*, ctx: NeoContext, identity: Identity, raw_id: str) -> str:
    doc = load_own(ctx, identity, raw_id)
    ctx.store.selections.delete_one({"_id": doc["_id"], "owner": identity.user_id})
    history.record_selection(ctx.store.history, identity=identity, selection_id=f"selection_{doc['_id']}",
                             name=doc["name"], saved=False)
    return f"selection_{doc['_id']}"
