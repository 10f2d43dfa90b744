"""Who owns a property or a value: read from the stored documents (no I/O).

A section's properties and values carry the section's permission read model (`owner`, `author`,
...), which says who may read and write them. Each also has an owner of its own, whoever created
it, kept through moves: `property_owner` / `property_owner_name` on a property document, `owner` /
`owner_name` on a value entry. What was stored before these were recorded belongs to the section's
owner (a property) or to its property's owner (a value).
"""
from __future__ import annotations

from typing import Any, Mapping


def property_owner(doc: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """(user id, user name) of a property's owner."""
    return doc.get("property_owner", doc.get("owner")), doc.get("property_owner_name", doc.get("author"))


def value_owner(doc: Mapping[str, Any], entry: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """(user id, user name) of the owner of the value `entry` of the property `doc`."""
    owner_id, owner_name = property_owner(doc)
    return entry.get("owner", owner_id), entry.get("owner_name", owner_name)
