"""Listing sections, properties and values: each list is one MongoDB query on indexed fields.

Anonymous callers may list too: the permission filter (shared/access.py `read_filter`) keeps what
the caller may read (public only for them), and totals count only that (docs/permissions.md).

Every filter (permissions, tree scope via `parent_section` / `ancestors`, owner, dates, visibility,
`q` over the denormalised `search_text`) becomes part of that one query; nothing is filtered in
Python over stored documents.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from services.metadata.context import MetadataContext
from services.metadata.properties import load_property
from services.metadata.search import q_clauses
from services.metadata.sections import TREE_ORDER, flag, load_section, param_id
from services.metadata.store import HIDDEN, LIVE
from shared.access import PUBLIC, read_filter
from shared.params import parse_paging
from shared.errors import BadRequest
from shared.identity import Identity

PAGING = ("max_results", "max-results", "offset", "range_start")
SECTION_PARAMS = ("recursive", "section_id", "visibility", "owner", "created_min", "created_max", "q", *PAGING)
PROPERTY_PARAMS = ("section_id", "recursive", "q", "owner", *PAGING)
VALUE_PARAMS = ("property_id", "section_id", "recursive", "q", *PAGING)
VISIBILITY = ("all", "private", "public", "shared")
SECTION_ORDER = TREE_ORDER
PROPERTY_ORDER = [("section", 1), ("tree_position", 1), ("_id", 1)]
NOTHING: dict[str, Any] = {"_id": {"$in": []}}


@dataclass(frozen=True)
class Page:
    docs: list[dict[str, Any]]
    total: int
    offset: int


def _pairs(args: Iterable[tuple[str, str]], allowed: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for key, value in args:
        if key not in allowed:
            raise BadRequest(f"Unknown parameter {key!r}; the parameters are {', '.join(allowed)}.",
                             message_type="invalid_parameter", details={"parameter": key})
        pairs[key] = value
    return pairs


def paging(ctx: MetadataContext, pairs: dict[str, str]) -> tuple[int, int]:
    return parse_paging(pairs, default_page=ctx.limits.default_page, max_page=ctx.limits.max_page)


def parse_when(raw: str, name: str, *, upper: bool) -> dict[str, Any]:
    """`YYYY-MM-DD HH:MM:SS` (or with T), or `YYYY-MM-DD` (a whole day: to its end for the upper bound)."""
    text = raw.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            when = datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        if fmt == "%Y-%m-%d" and upper:
            return {"$lt": when + timedelta(days=1)}
        return {"$lte": when} if upper else {"$gte": when}
    raise BadRequest(f"`{name}` must be a date like '2012-03-14' or '2012-03-14 17:27:08', not {raw!r}.",
                     message_type="invalid_parameter")


def owner_clause(raw: str, *, by_id: str = "owner", by_name: str = "author") -> dict[str, Any]:
    text = raw.strip()
    if not text:
        raise BadRequest("`owner` must be a user name or id.", message_type="invalid_parameter")
    return {by_id: int(text)} if text.isdigit() else {by_name: text}


def visibility_clause(raw: str, identity: Identity) -> dict[str, Any] | None:
    """private: yours, not public, shared with nobody; public: safety level 1; shared: others' shared
    with you, or yours shared with someone; all: everything you may read. An anonymous caller has
    nothing private or shared."""
    value = raw.strip().lower() or "all"
    if value not in VISIBILITY:
        raise BadRequest(f"`visibility` must be one of {', '.join(VISIBILITY)}.", message_type="invalid_parameter")
    me = identity.user_id
    if value == "public":
        return {"safety_level": PUBLIC}
    if value in ("private", "shared") and not identity.is_authenticated:
        return NOTHING
    if value == "private":
        return {"owner": me, "safety_level": {"$ne": PUBLIC}, "readers": {"$size": 0}}
    if value == "shared":
        return {"$or": [{"owner": {"$ne": me}, "readers": me}, {"owner": me, "readers.0": {"$exists": True}}]}
    return None


def _find_page(collection, query: dict[str, Any], order, limit: int, offset: int) -> Page:
    total = collection.count_documents(query)
    docs = list(collection.find(query, HIDDEN).sort(order).skip(offset).limit(limit))
    return Page(docs, total, offset)


def section_query(*, ctx: MetadataContext, identity: Identity, pairs: dict[str, str]) -> dict[str, Any]:
    recursive = flag(pairs.get("recursive"), "recursive", False)
    q = pairs.get("q", "").strip()
    clauses: list[dict[str, Any]] = [LIVE, read_filter(identity)]
    if pairs.get("section_id", "").strip() not in ("", "root"):
        section = load_section(ctx, identity, param_id(pairs["section_id"], "section", "section_id"))
        clauses.append({"ancestors": section["_id"]} if recursive or q else {"parent_section": section["_id"]})
    elif not (recursive or q):
        clauses.append({"parent_section": None})
    if (visibility := visibility_clause(pairs.get("visibility", "all"), identity)) is not None:
        clauses.append(visibility)
    if "owner" in pairs:
        clauses.append(owner_clause(pairs["owner"]))
    if "created_min" in pairs:
        clauses.append({"date_created": parse_when(pairs["created_min"], "created_min", upper=False)})
    if "created_max" in pairs:
        clauses.append({"date_created": parse_when(pairs["created_max"], "created_max", upper=True)})
    if q:
        clauses += q_clauses(q)
    return {"$and": clauses}


def list_sections(*, ctx: MetadataContext, identity: Identity, args: Iterable[tuple[str, str]]) -> Page:
    pairs = _pairs(args, SECTION_PARAMS)
    limit, offset = paging(ctx, pairs)
    query = section_query(ctx=ctx, identity=identity, pairs=pairs)
    return _find_page(ctx.store.sections, query, SECTION_ORDER, limit, offset)


def property_query(*, ctx: MetadataContext, identity: Identity, pairs: dict[str, str]) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = [LIVE, read_filter(identity)]
    if pairs.get("section_id", "").strip():
        section = load_section(ctx, identity, param_id(pairs["section_id"], "section", "section_id"))
        recursive = flag(pairs.get("recursive"), "recursive", False)
        clauses.append({"ancestors": section["_id"]} if recursive else {"section": section["_id"]})
    if "owner" in pairs:  # the property's own owner (owners.py), as its `owner` field shows
        clauses.append(owner_clause(pairs["owner"], by_id="property_owner", by_name="property_owner_name"))
    if pairs.get("q", "").strip():
        clauses += q_clauses(pairs["q"])
    return {"$and": clauses}


def list_properties(*, ctx: MetadataContext, identity: Identity, args: Iterable[tuple[str, str]]) -> Page:
    pairs = _pairs(args, PROPERTY_PARAMS)
    limit, offset = paging(ctx, pairs)
    query = property_query(ctx=ctx, identity=identity, pairs=pairs)
    return _find_page(ctx.store.properties, query, PROPERTY_ORDER, limit, offset)


def list_values(*, ctx: MetadataContext, identity: Identity, args: Iterable[tuple[str, str]]) -> tuple[list[tuple[dict, dict, int]], int, int]:
    """([(property, value entry, position)], total, offset): one aggregation over indexed properties."""
    pairs = _pairs(args, VALUE_PARAMS)
    limit, offset = paging(ctx, pairs)
    clauses: list[dict[str, Any]] = [LIVE, read_filter(identity)]
    if pairs.get("property_id", "").strip():
        prop = load_property(ctx, identity, param_id(pairs["property_id"], "property", "property_id"))
        clauses.append({"_id": prop["_id"]})
    if pairs.get("section_id", "").strip():
        section = load_section(ctx, identity, param_id(pairs["section_id"], "section", "section_id"))
        recursive = flag(pairs.get("recursive"), "recursive", False)
        clauses.append({"ancestors": section["_id"]} if recursive else {"section": section["_id"]})
    q = pairs.get("q", "").strip()
    words = q_clauses(q, "values.text") if q else []
    if words:
        clauses += [{"search_text": clause["values.text"]} for clause in words]  # narrows with the index first
    pipeline: list[dict[str, Any]] = [
        {"$match": {"$and": clauses}},
        {"$sort": dict(PROPERTY_ORDER)},
        {"$project": {"name": 1, "section": 1, "dtype": 1, "unit": 1, "owner": 1, "author": 1, "property_owner": 1,
                      "property_owner_name": 1, "date_created": 1, "last_modified": 1, "values": 1}},
        {"$unwind": {"path": "$values", "includeArrayIndex": "position"}},
    ]
    if words:
        pipeline.append({"$match": {"$and": words}})
    pipeline.append({"$facet": {"total": [{"$count": "n"}], "page": [{"$skip": offset}, {"$limit": limit}]}})
    (result,) = list(ctx.store.properties.aggregate(pipeline))
    total = result["total"][0]["n"] if result["total"] else 0
    rows = [({**row, "values": None}, row["values"], int(row["position"])) for row in result["page"]]
    return rows, total, offset
