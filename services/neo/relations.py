"""Parents and children: resolving linked parents, listing children, walking descendants."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from services.neo.context import NeoContext
from services.neo.ids import neo_id
from services.neo.schema import NEO_TYPES, NeoType
from services.neo.store import LIVE
from shared.access import read_filter, write_filter
from shared.errors import BadRequest
from shared.identity import Identity


def resolve_parents(
    ctx: NeoContext, identity: Identity, parents: Mapping[str, int | None]
) -> dict[str, dict[str, Any]]:
    """The parent documents to link to; each must exist and be writable by the caller."""
    found, problems = {}, {}
    for parent_type, parent_id in parents.items():
        if parent_id is None:
            continue
        doc = ctx.store.collection(parent_type).find_one(
            {"_id": parent_id, **LIVE, **write_filter(identity)}, {"_outbox": 0}
        )
        if doc is None:
            problems[parent_type] = f"there is no {parent_type} {neo_id(parent_type, parent_id)} you may write to"
        else:
            found[parent_type] = doc
    if problems:
        raise BadRequest("A parent is missing or not yours to link to.", message_type="invalid_parent", details=problems)
    return found


def parent_ids(neo_type: NeoType, doc: Mapping[str, Any]) -> dict[str, str]:
    return {p: neo_id(p, doc[p]) for p in neo_type.parents if doc.get(p) is not None}


def children_of(ctx: NeoContext, identity: Identity, neo_type: NeoType, object_id: int) -> dict[str, list[str]]:
    """Readable children by type, as neo_ids in creation order."""
    children = {}
    for child_type in neo_type.children:
        cursor = ctx.store.collection(child_type).find(
            {neo_type.name: object_id, **LIVE, **read_filter(identity)}, {"_id": 1}
        ).sort("_id", 1)
        children[child_type] = [neo_id(child_type, doc["_id"]) for doc in cursor]
    return children


def has_children(ctx: NeoContext, neo_type: NeoType, object_id: int) -> dict[str, int]:
    counts = {}
    for child_type in neo_type.children:
        count = ctx.store.collection(child_type).count_documents({neo_type.name: object_id, **LIVE})
        if count:
            counts[child_type] = count
    return counts


def descendants(
    ctx: NeoContext, identity: Identity | None, neo_type: NeoType, object_id: int, *, projection: Mapping[str, Any]
) -> Iterator[tuple[NeoType, dict[str, Any]]]:
    """Every descendant once (an object may hang under two parents), breadth first.

    With an identity only readable descendants are walked; without one, all of them.
    """
    seen: set[tuple[str, int]] = set()
    frontier: dict[str, list[int]] = {neo_type.name: [object_id]}
    while frontier:
        next_frontier: dict[str, list[int]] = {}
        for parent_type, ids in frontier.items():
            for child_type in NEO_TYPES[parent_type].children:
                query = {parent_type: {"$in": ids}, **LIVE}
                if identity is not None:
                    query.update(read_filter(identity))
                for doc in ctx.store.collection(child_type).find(query, projection).sort("_id", 1):
                    key = (child_type, doc["_id"])
                    if key in seen:
                        continue
                    seen.add(key)
                    next_frontier.setdefault(child_type, []).append(doc["_id"])
                    yield NEO_TYPES[child_type], doc
        frontier = next_frontier


def container_size(ctx: NeoContext, identity: Identity, neo_type: NeoType, doc: Mapping[str, Any]) -> int:
    """A container's size sums its readable descendants' array data (seed: blocks sum segments...)."""
    own = int(doc.get("size", 0))
    if not neo_type.children:
        return own
    return own + sum(
        int(child.get("size", 0)) for _, child in descendants(ctx, identity, neo_type, doc["_id"], projection={"size": 1})
    )
