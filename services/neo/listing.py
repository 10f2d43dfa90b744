"""Listing objects of a type with filters and paging, and the short `info` summary."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from services.neo.context import NeoContext
from services.neo.ids import InvalidId, neo_id, parse_typed
from services.neo.query import filter_clause
from services.neo.relations import children_of, descendants
from services.neo.service import load_readable, require_type
from services.neo.store import LIVE
from shared.access import read_filter
from shared.errors import NotFound
from shared.identity import Identity
from shared.params import PAGING_PARAMETERS, parse_paging

PAGING = PAGING_PARAMETERS


def list_objects(
    *, ctx: NeoContext, identity: Identity, type_name: str, args: Iterable[tuple[str, str]]
) -> tuple[list[str], int, int]:
    """(neo_ids of the page, total matching, offset) of the readable objects matching the filters."""
    neo_type = require_type(type_name)
    pairs = list(args)
    paging = {k: v for k, v in pairs if k in PAGING}
    limit, offset = parse_paging(paging, default_page=ctx.limits.default_page, max_page=ctx.limits.max_page)
    clauses = [LIVE, read_filter(identity)]
    clauses += [filter_clause(neo_type, key, value) for key, value in pairs if key not in PAGING]
    query = {"$and": clauses}
    collection = ctx.store.collection(neo_type)
    total = collection.count_documents(query)
    page = collection.find(query, {"_id": 1}).sort("_id", 1).skip(offset).limit(limit)
    return [neo_id(neo_type.name, doc["_id"]) for doc in page], total, offset


def object_info(*, ctx: NeoContext, identity: Identity, raw_neo_id: str) -> dict[str, Any]:
    """Counts of readable descendants by type and the total size of their array data."""
    try:
        type_name, object_id = parse_typed(raw_neo_id)
    except InvalidId as exc:
        raise NotFound(f"No such object: {exc}.") from None
    neo_type = require_type(type_name)
    doc = load_readable(ctx, identity, neo_type, object_id)
    counts: Counter[str] = Counter()
    total_size = int(doc.get("size", 0))
    for child_type, child in descendants(ctx, identity, neo_type, object_id, projection={"size": 1}):
        counts[child_type.name] += 1
        total_size += int(child.get("size", 0))
    direct = {name: len(ids) for name, ids in children_of(ctx, identity, neo_type, object_id).items()}
    arrays = (doc.get("arrays") or {}).get("fields", {})
    return {
        "neo_id": doc["neo_id"],
        "type": neo_type.name,
        "name": doc.get("name") or doc.get("label"),
        "size": total_size,
        "own_size": int(doc.get("size", 0)),
        "children": direct,
        "descendants": dict(counts),
        "arrays": {name: {"shape": info["shape"], "dtype": info["dtype"]} for name, info in arrays.items()},
        "date_created": doc.get("date_created"),
        "last_modified": doc.get("last_modified"),
        "author": doc.get("author"),
    }

