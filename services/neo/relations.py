"""Parents and children: resolving linked parents, listing children, walking descendants."""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from services.neo.context import NeoContext
from services.neo.ids import neo_id
from services.neo.schema import NEO_TYPES, NeoType
from services.neo.store import LIVE
from shared.access import can_read, can_write, read_filter
from shared.errors import BadRequest, Forbidden
from shared.identity import Identity


def resolve_parents(
    ctx: NeoContext, identity: Identity, parents: Mapping[str, int | None]
) -> dict[str, dict[str, Any]]:
    """The parent documents to link to; each must exist and be writable by the caller.

    A parent that does not exist, or that the caller may not read (no hint that it exists), is a
    400 `invalid_parent`; one the caller may read but not change is a 403 (adding a child is a
    write of the parent, docs/permissions.md).
    """
    found, missing, read_only = {}, {}, {}
    for parent_type, parent_id in parents.items():
        if parent_id is None:
            continue
        name = neo_id(parent_type, parent_id)
        doc = ctx.store.collection(parent_type).find_one({"_id": parent_id, **LIVE}, {"_outbox": 0})
        if doc is None or not can_read(doc, identity):
            missing[parent_type] = f"there is no {parent_type} {name}"
        elif not can_write(doc, identity):
            read_only[parent_type] = f"you may read but not change {name}"
        else:
            found[parent_type] = doc
    if missing:
        raise BadRequest("A parent is missing.", message_type="invalid_parent", details=missing)
    if read_only:
        raise Forbidden("You may not add children to a parent you may only read.", details=read_only)
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


def visible_parents(
    ctx: NeoContext, identity: Identity, items: Iterable[tuple[NeoType, Mapping[str, Any]]]
) -> dict[str, dict[str, str | None]]:
    """Each object's parent links (by its neo_id) as the caller may see them: a parent they may not
    read shows as None, like no parent. `items` are objects the caller may read (so a parent among
    them needs no check); one query per parent type for all of them."""
    items = list(items)
    readable = {(t.name, d["_id"]) for t, d in items}
    unknown: dict[str, set[int]] = {}
    for neo_type, doc in items:
        for parent_type in neo_type.parents:
            parent = doc.get(parent_type)
            if parent is not None and (parent_type, parent) not in readable:
                unknown.setdefault(parent_type, set()).add(parent)
    for parent_type, ids in unknown.items():
        cursor = ctx.store.collection(parent_type).find(
            {"_id": {"$in": sorted(ids)}, **LIVE, **read_filter(identity)}, {"_id": 1}
        )
        readable.update((parent_type, doc["_id"]) for doc in cursor)
    return {
        doc["neo_id"]: {
            p: neo_id(p, doc[p]) if doc.get(p) is not None and (p, doc[p]) in readable else None
            for p in neo_type.parents
        }
        for neo_type, doc in items
    }
