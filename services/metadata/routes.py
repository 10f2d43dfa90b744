"""HTTP routes of the metadata service: parse, call one service function, answer.

Every answer about sections, properties and values uses the list envelope of DESIGN.md section 7
(`selected: [{"model", "fields", "permalink"}]`), also for a single object.

Permissions (docs/permissions.md): every GET is open to anonymous callers, who see public sections
(with their properties and values) only; every write needs a login (401). The service functions
answer 404 / 401 / 403 as shared/access.py `check_access` does.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from flask import Blueprint, Response, current_app, request

from services.metadata import acl, history, listing, odml_io, properties, sections
from services.metadata.context import MetadataContext
from services.metadata.ids import InvalidId, parse_id, parse_optional_section, typed
from services.metadata.serialise import (
    PERMALINKS, PROPERTY_MODEL, SECTION_MODEL, VALUE_MODEL, property_fields, section_fields, value_fields,
)
from shared.envelope import json_response, message, object_list
from shared.params import json_body
from shared.errors import BadRequest, NotFound
from shared.history import SOURCE_HEADER, source_from_header
from shared.identity import current_identity, require_user

metadata = Blueprint("metadata", __name__)
internal = Blueprint("metadata_internal", __name__)
PREFIX = "/metadata"


def _ctx() -> MetadataContext:
    return current_app.extensions["metadata_context"]


def _json_body(*, required: bool = True) -> Any:
    return json_body(required=required, cache=True)


def _envelope(
    model: str,
    objects: Iterable[Mapping[str, Any]],
    *,
    text: str | None = None,
    message_type: str | None = None,
    offset: int = 0,
    total: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = object_list(model=model, objects=objects, permalink=PERMALINKS[model],
                       logged_in_as=current_identity().username, offset=offset, total=total,
                       text=text, message_type=message_type)
    body.update(extra)
    return body


def _one(model: str, fields: Mapping[str, Any], text: str, message_type: str, status: int = 200, **extra: Any) -> Response:
    body = _envelope(model, [fields], text=text, message_type=message_type, **extra)
    headers = {"Location": PERMALINKS[model](fields) + "/"} if status == 201 else {}
    return json_response(body, status, headers=headers)


def _origin() -> dict[str, str]:
    """The history source of a create: a calling service acting for a job says which (`X-Gnode-Source`)."""
    return source_from_header(request.headers.get(SOURCE_HEADER))


def _history(resource: str) -> Response:
    """The history of a resource whose read access the caller has just been checked for."""
    body = history.history_of(_ctx().store, resource=resource, args=request.args,
                              logged_in_as=current_identity().username)
    return json_response(body)


def _section_detail(doc: Mapping[str, Any], readable_datafiles: set[int] | None = None) -> dict[str, Any]:
    subsections, props, datafiles = sections.section_contents(_ctx(), current_identity(), doc["_id"],
                                                              readable=readable_datafiles)
    return section_fields(doc, datafiles=datafiles, subsections=subsections, properties=props)


# --- sections -------------------------------------------------------------------------------------

@metadata.get(f"{PREFIX}/sections/")
def list_sections():
    identity = current_identity()
    page = listing.list_sections(ctx=_ctx(), identity=identity, args=request.args.items(multi=True))
    return json_response(_envelope(SECTION_MODEL, [section_fields(d) for d in page.docs], offset=page.offset, total=page.total))


@metadata.post(f"{PREFIX}/sections/")
def create_section():
    identity = require_user()
    body = _json_body(required=False)
    params: dict[str, Any] = {}
    if isinstance(body, dict):
        params.update({k: body.pop(k) for k in sections.COPY_MOVE_PARAMS if k in body})
    params.update({k: v for k, v in request.args.items() if k in sections.COPY_MOVE_PARAMS})
    unknown = [k for k in request.args if k not in sections.COPY_MOVE_PARAMS]
    if unknown:
        raise BadRequest(f"Unknown parameter {unknown[0]!r}; the parameters are {', '.join(sections.COPY_MOVE_PARAMS)}.",
                         message_type="invalid_parameter")
    copy_move = sections.parse_copy_move(params)
    if copy_move is None:
        if body is None:
            raise BadRequest("The request body is empty; send the section's fields as a JSON object.", message_type="empty_body")
        doc = sections.create_section(ctx=_ctx(), identity=identity, body=body, origin=_origin())
        return _one(SECTION_MODEL, _section_detail(doc), "Section created successfully.", "object_created", 201)
    kind, result = sections.copy_or_move(ctx=_ctx(), identity=identity, request=copy_move, body=body)
    if kind == "moved":
        return _one(SECTION_MODEL, _section_detail(result), "Section moved successfully.", "object_moved")
    return _one(
        SECTION_MODEL, _section_detail(result.top, result.readable_datafiles), "Section copied successfully.",
        "object_copied", 201,
        sections_created=[typed("section", i) for i in result.sections],
        properties_created=len(result.properties),
        datafile_links_created=result.datafile_links,
    )


@metadata.get(f"{PREFIX}/sections/<raw_id>/")
def get_section(raw_id: str):
    identity = current_identity()
    doc = sections.load_section(_ctx(), identity, sections.path_id(raw_id, "section"))
    return _one(SECTION_MODEL, _section_detail(doc), "Here is the requested object.", "object_selected")


@metadata.get(f"{PREFIX}/sections/<raw_id>/history/")
def section_history(raw_id: str):
    section_id = sections.path_id(raw_id, "section")
    sections.load_section(_ctx(), current_identity(), section_id)
    return _history(typed("section", section_id))


@metadata.route(f"{PREFIX}/sections/<raw_id>/", methods=["POST", "PUT", "PATCH"])
def update_section(raw_id: str):
    identity = require_user()
    doc = sections.update_section(ctx=_ctx(), identity=identity, raw_id=raw_id, body=_json_body())
    return _one(SECTION_MODEL, _section_detail(doc), "Section updated successfully.", "object_updated")


@metadata.delete(f"{PREFIX}/sections/<raw_id>/")
def delete_section(raw_id: str):
    identity = require_user()
    force = sections.flag(request.args.get("force"), "force", False)
    result = sections.delete_section(ctx=_ctx(), identity=identity, raw_id=raw_id, force=force)
    body = message(f"{len(result.sections)} section(s) deleted, with {result.properties} propertie(s) and "
                   f"{result.values} value(s).", "object_deleted", logged_in_as=identity.username)
    body.update(deleted=[typed("section", i) for i in result.sections], properties_deleted=result.properties,
                values_deleted=result.values, datafile_links_removed=result.datafile_links)
    return json_response(body)


# --- odML documents -------------------------------------------------------------------------------

def _export(section_id: int | None) -> Response:
    identity = current_identity()
    fmt = odml_io.parse_format(request.args.get("format"))
    exported = odml_io.export_tree(ctx=_ctx(), identity=identity, section_id=section_id, fmt=fmt)
    return Response(exported.text, mimetype=exported.media_type, headers={
        "Content-Disposition": f'attachment; filename="{exported.filename}"',
        "X-Sections-Exported": str(exported.sections),
    })


@metadata.get(f"{PREFIX}/sections/<raw_id>/export/")
def export_section(raw_id: str):
    return _export(sections.path_id(raw_id, "section"))


@metadata.get(f"{PREFIX}/export/")
def export_all():
    return _export(None)


def _uploaded_document() -> tuple[bytes, str | None, str | None]:
    """(bytes, filename, content type): a multipart `file` part, or the body itself."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise BadRequest("A multipart import needs the document in a `file` part.", message_type="invalid_document")
        return upload.read(), upload.filename, upload.mimetype
    return request.get_data(cache=False), None, request.mimetype


def _given_acl() -> Any:
    """The internal import's `acl` part (JSON): the datafile's ACL the new sections start with."""
    raw = request.form.get("acl") if request.mimetype == "multipart/form-data" else None
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest("`acl` must be a JSON object.", message_type="invalid_json") from None


def _import(source: str, *, acl: Any = None) -> Response:
    identity = require_user()
    try:
        target_id = parse_optional_section(request.args.get("target_section_id"))
    except InvalidId as exc:
        raise BadRequest(f"`target_section_id`: {exc}.", message_type="invalid_id") from None
    fmt = odml_io.parse_format(request.args.get("format"), default=None)
    data, filename, content_type = _uploaded_document()
    result = odml_io.import_document(ctx=_ctx(), identity=identity, data=data, fmt=fmt, filename=filename,
                                     content_type=content_type, target_id=target_id, source=source,
                                     origin=_origin(), acl=sections.given_acl(acl, identity))
    body = _envelope(
        SECTION_MODEL, [section_fields(d) for d in result.top],
        text=f"Imported {len(result.sections)} section(s), {result.properties} propertie(s) and {result.values} value(s).",
        message_type="object_imported",
        sections_created=[typed("section", i) for i in result.sections],
        section_ids=result.sections,
        properties_created=result.properties,
        values_created=result.values,
    )
    return json_response(body, 201)


@metadata.post(f"{PREFIX}/import/")
def import_document():
    return _import("import")


# --- properties -----------------------------------------------------------------------------------

@metadata.get(f"{PREFIX}/properties/")
def list_properties():
    identity = current_identity()
    page = listing.list_properties(ctx=_ctx(), identity=identity, args=request.args.items(multi=True))
    return json_response(_envelope(PROPERTY_MODEL, [property_fields(d) for d in page.docs], offset=page.offset, total=page.total))


@metadata.post(f"{PREFIX}/properties/")
def create_property():
    identity = require_user()
    doc = properties.create_property(ctx=_ctx(), identity=identity, body=_json_body(), origin=_origin())
    return _one(PROPERTY_MODEL, property_fields(doc), "Property created successfully.", "object_created", 201)


@metadata.get(f"{PREFIX}/properties/<raw_id>/")
def get_property(raw_id: str):
    identity = current_identity()
    doc = properties.load_property(_ctx(), identity, sections.path_id(raw_id, "property"))
    return _one(PROPERTY_MODEL, property_fields(doc), "Here is the requested object.", "object_selected")


@metadata.get(f"{PREFIX}/properties/<raw_id>/history/")
def property_history(raw_id: str):
    property_id = sections.path_id(raw_id, "property")
    properties.load_property(_ctx(), current_identity(), property_id)
    return _history(typed("property", property_id))


@metadata.route(f"{PREFIX}/properties/<raw_id>/", methods=["POST", "PUT", "PATCH"])
def update_property(raw_id: str):
    identity = require_user()
    doc = properties.update_property(ctx=_ctx(), identity=identity, raw_id=raw_id, body=_json_body())
    return _one(PROPERTY_MODEL, property_fields(doc), "Property updated successfully.", "object_updated")


@metadata.delete(f"{PREFIX}/properties/<raw_id>/")
def delete_property(raw_id: str):
    identity = require_user()
    doc = properties.delete_property(ctx=_ctx(), identity=identity, raw_id=raw_id)
    body = message(f"property_{doc['_id']} deleted, with {len(doc['values'])} value(s).", "object_deleted",
                   logged_in_as=identity.username)
    body.update(deleted=[typed("property", doc["_id"])], values_deleted=len(doc["values"]))
    return json_response(body)


# --- values ---------------------------------------------------------------------------------------

def _value(found: tuple[dict, dict, int]) -> dict[str, Any]:
    return value_fields(*found)


@metadata.get(f"{PREFIX}/values/")
def list_values():
    identity = current_identity()
    rows, total, offset = listing.list_values(ctx=_ctx(), identity=identity, args=request.args.items(multi=True))
    return json_response(_envelope(VALUE_MODEL, [_value(r) for r in rows], offset=offset, total=total))


@metadata.post(f"{PREFIX}/values/")
def create_value():
    identity = require_user()
    found = properties.create_value(ctx=_ctx(), identity=identity, body=_json_body(), origin=_origin())
    return _one(VALUE_MODEL, _value(found), "Value created successfully.", "object_created", 201)


@metadata.get(f"{PREFIX}/values/<raw_id>/")
def get_value(raw_id: str):
    identity = current_identity()
    found = properties.load_value(_ctx(), identity, sections.path_id(raw_id, "value"))
    return _one(VALUE_MODEL, _value(found), "Here is the requested object.", "object_selected")


@metadata.get(f"{PREFIX}/values/<raw_id>/history/")
def value_history(raw_id: str):
    value_id = sections.path_id(raw_id, "value")
    properties.load_value(_ctx(), current_identity(), value_id)
    return _history(typed("value", value_id))


@metadata.route(f"{PREFIX}/values/<raw_id>/", methods=["POST", "PUT", "PATCH"])
def update_value(raw_id: str):
    identity = require_user()
    found = properties.update_value(ctx=_ctx(), identity=identity, raw_id=raw_id, body=_json_body())
    return _one(VALUE_MODEL, _value(found), "Value updated successfully.", "object_updated")


@metadata.delete(f"{PREFIX}/values/<raw_id>/")
def delete_value(raw_id: str):
    identity = require_user()
    _, entry, _ = properties.delete_value(ctx=_ctx(), identity=identity, raw_id=raw_id)
    body = message(f"value_{entry['id']} deleted.", "object_deleted", logged_in_as=identity.username)
    body["deleted"] = [typed("value", entry["id"])]
    return json_response(body)


# --- internal API (never routed by the gateway) ---------------------------------------------------

@internal.get("/internal/acl/<resource>/")
def internal_acl(resource: str):
    """For the acl service: a section's ACL, `acl_version` and parent (`section_<id>` only; else 404)."""
    return json_response(acl.internal_acl(_ctx().store, resource))


def _ids(name: str, kind: str) -> list[int]:
    raw = request.args.getlist(name)
    values = [part for item in raw for part in item.split(",") if part.strip()]
    if not values:
        raise BadRequest(f"Give one or more `{name}`.", message_type="invalid_parameter")
    if len(values) > 10_000:
        raise BadRequest(f"At most 10000 `{name}` per request.", message_type="invalid_parameter")
    try:
        return [parse_id(v, kind) for v in values]
    except InvalidId as exc:
        raise BadRequest(f"`{name}`: {exc}.", message_type="invalid_id") from None


@internal.post("/internal/import/")
def internal_import():
    """The files service's conversion type 4 (odML): the acting user in the identity header; the new
    sections start with the datafile's ACL (`acl` part) rather than their target's."""
    return _import(request.args.get("source") or "import", acl=_given_acl())


@internal.get("/internal/values/")
def internal_values():
    found, missing = properties.resolve_values(ctx=_ctx(), value_ids=_ids("id", "value"))
    return json_response({"values": found, "missing": missing})


def _internal_section(doc: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("name", "parent_section", "ancestors", "owner", "author", "safety_level", "shared_with", "readers", "writers")
    return {"id": typed("section", doc["_id"]), "section_id": doc["_id"], **{k: doc.get(k) for k in keys}}


@internal.get("/internal/sections/<raw_id>/")
def internal_section(raw_id: str):
    section_id = sections.path_id(raw_id, "section")
    doc = sections.find_section(_ctx(), section_id)
    if doc is None:
        raise NotFound(f"There is no section_{section_id}.")
    return json_response({"section": _internal_section(doc)})


@internal.get("/internal/sections/<raw_id>/descendants/")
def internal_descendants(raw_id: str):
    section_id = sections.path_id(raw_id, "section")
    if sections.find_section(_ctx(), section_id) is None:
        raise NotFound(f"There is no section_{section_id}.")
    found = sections.subtree(_ctx(), section_id, {"parent_section": 1, "owner": 1, "depth": 1})
    descendants = [{"section_id": d["_id"], "parent_section": d["parent_section"], "owner": d["owner"]} for d in found]
    return json_response({"section_id": section_id, "descendants": descendants, "count": len(descendants)})


@internal.post("/internal/sections/")
def internal_create_path():
    """For archive extraction: `{"parent_section": id or null, "path": ["a", "b"] or "a/b"}`, `mkdir -p`."""
    identity = require_user()
    body = _json_body()
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object with `path`.", message_type="invalid_json")
    path = body.get("path")
    if isinstance(path, str):
        path = [part for part in path.split("/") if part.strip()]
    if not isinstance(path, list) or not path or not all(isinstance(p, str) and p.strip() and len(p) <= 1000 for p in path):
        raise BadRequest("`path` must be a non-empty list of names (or a 'a/b/c' string).", message_type="invalid_fields")
    if len(path) > 256:
        raise BadRequest("`path` is limited to 256 levels.", message_type="invalid_fields")
    try:
        parent_id = parse_optional_section(body.get("parent_section"))
    except InvalidId as exc:
        raise BadRequest(f"`parent_section`: {exc}.", message_type="invalid_id") from None
    created = sections.create_path(ctx=_ctx(), identity=identity, parent_id=parent_id, path=[p.strip() for p in path],
                                   source=str(body.get("source") or "archive"), origin=_origin(),
                                   acl=sections.given_acl(body.get("acl"), identity))
    items = [{"id": typed("section", d["_id"]), "section_id": d["_id"], "name": d["name"], "created": new}
             for d, new in created]
    return json_response({"sections": items, "leaf_section_id": items[-1]["section_id"]},
                         201 if any(new for _, new in created) else 200)

