"""Stored documents as the `fields` of the list envelope (DESIGN.md section 7), with permalinks."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from services.metadata.fields import PROPERTY_TEXT
from services.metadata.ids import typed
from services.metadata.owners import property_owner, value_owner

SECTION_MODEL, PROPERTY_MODEL, VALUE_MODEL = "metadata.section", "metadata.property", "metadata.value"


def _untyped(typed_id: str) -> str:
    return typed_id.rsplit("_", 1)[1]


def section_permalink(fields: Mapping[str, Any]) -> str:
    return f"/metadata/sections/{_untyped(fields['id'])}"


def property_permalink(fields: Mapping[str, Any]) -> str:
    return f"/metadata/properties/{_untyped(fields['id'])}"


def value_permalink(fields: Mapping[str, Any]) -> str:
    return f"/metadata/values/{_untyped(fields['id'])}"


PERMALINKS = {SECTION_MODEL: section_permalink, PROPERTY_MODEL: property_permalink, VALUE_MODEL: value_permalink}


def section_fields(
    doc: Mapping[str, Any],
    *,
    datafiles: Iterable[int] | None = None,
    subsections: Iterable[int] | None = None,
    properties: Iterable[int] | None = None,
) -> dict[str, Any]:
    fields = {
        "id": typed("section", doc["_id"]),
        "name": doc.get("name"),
        "title": doc.get("name"),
        "description": doc.get("description"),
        "type": doc.get("type"),
        "link": doc.get("link"),
        "repository": doc.get("repository"),
        "mapping": doc.get("mapping"),
        "reference": doc.get("reference"),
        "parent_section": typed("section", doc.get("parent_section")),
        "tree_position": doc.get("tree_position", 0),
        "owner": doc.get("author"),
        "safety_level": doc.get("safety_level"),
        "date_created": doc.get("date_created"),
        "last_modified": doc.get("last_modified"),
    }
    if datafiles is not None:
        fields["datafiles"] = [f"datafile_{i}" for i in datafiles]
    if subsections is not None:
        fields["subsections"] = [typed("section", i) for i in subsections]
    if properties is not None:
        fields["properties"] = [typed("property", i) for i in properties]
    return fields


def property_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": typed("property", doc["_id"]),
        "section_id": typed("section", doc["section"]),
        "name": doc.get("name"),
    }
    fields.update({key: doc.get(key) for key in PROPERTY_TEXT})
    fields.update(
        uncertainty=doc.get("uncertainty"),
        dtype=doc.get("dtype"),
        values=[{"id": typed("value", v["id"]), "value": v["value"]} for v in doc.get("values") or ()],
        tree_position=doc.get("tree_position", 0),
        owner=property_owner(doc)[1],
        safety_level=doc.get("safety_level"),
        date_created=doc.get("date_created"),
        last_modified=doc.get("last_modified"),
    )
    return fields


def value_fields(prop: Mapping[str, Any], entry: Mapping[str, Any], position: int) -> dict[str, Any]:
    return {
        "id": typed("value", entry["id"]),
        "value": entry["value"],
        "position": position,
        "property_id": typed("property", prop["_id"]),
        "property_name": prop.get("name"),
        "section_id": typed("section", prop["section"]),
        "dtype": prop.get("dtype"),
        "unit": prop.get("unit"),
        "owner": value_owner(prop, entry)[1],
        "date_created": entry.get("date_created") or prop.get("date_created"),
        "last_modified": prop.get("last_modified"),
    }
