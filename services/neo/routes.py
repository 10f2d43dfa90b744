"""HTTP routes of the neo service: parse, call one service function, answer.

Every GET is open to anonymous callers, who see public objects only; every write needs a login
(docs/permissions.md). `/internal/...` routes are for other services, never routed by the gateway.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.http import http_date

from services.neo import acl, history, labels, listing, reading, selections, service
from services.neo.context import NeoContext
from services.neo.reading import NPY_MEDIA_TYPE, flag
from services.neo.relations import children_of, visible_parents
from services.neo.schema import NEO_TYPES
from shared.envelope import json_response, message, neo_list
from shared.errors import BadRequest
from shared.history import SOURCE_HEADER, source_from_header
from shared.identity import current_identity, require_user
from shared.params import json_body, parse_json

neo = Blueprint("neo", __name__)
internal = Blueprint("neo_internal", __name__)
PREFIX = "/electrophysiology"


def _ctx() -> NeoContext:
    return current_app.extensions["neo_context"]


def _json_body() -> Any:
    return json_body(limit=current_app.config["MAX_JSON_BYTES"])


def _body_and_uploads() -> tuple[Any, dict[str, Any]]:
    """A JSON body, or multipart with the JSON in a `json` part and arrays as .npy file parts."""
    if request.mimetype != "multipart/form-data":
        return _json_body(), {}
    raw = request.form.get("json")
    if raw is None and "json" in request.files:
        raw = request.files["json"].read()
    if raw is None:
        raise BadRequest("A multipart request needs a `json` part with the object's fields.", message_type="invalid_json")
    body = parse_json(raw, what="The `json` part")
    uploads = {name: storage.stream for name, storage in request.files.items() if name != "json"}
    return body, uploads


@neo.get(f"{PREFIX}/")
def index():
    identity = current_identity()
    body = message("The NEO object types.", "object_selected", logged_in_as=identity.username)
    body["types"] = {
        name: {"attributes": [a.name for a in t.attributes], "data_fields": [d.name for d in t.data_fields],
               "parents": list(t.parents), "children": list(t.children)}
        for name, t in NEO_TYPES.items()
    }
    return json_response(body)


@neo.get(f"{PREFIX}/info/<raw_neo_id>/")
def info(raw_neo_id: str):
    identity = current_identity()
    body = message("Here is the summary of the object.", "object_info", logged_in_as=identity.username)
    body.update(listing.object_info(ctx=_ctx(), identity=identity, raw_neo_id=raw_neo_id))
    return json_response(body)


@neo.get(f"{PREFIX}/<type_name>/")
def list_objects(type_name: str):
    identity = current_identity()
    ids, total, offset = listing.list_objects(
        ctx=_ctx(), identity=identity, type_name=type_name, args=request.args.items(multi=True)
    )
    return json_response(neo_list(neo_ids=ids, total=total, selected_as_of=offset, logged_in_as=identity.username))


@neo.post(f"{PREFIX}/<type_name>/")
def create(type_name: str):
    identity = require_user()
    body, uploads = _body_and_uploads()
    many = isinstance(body, list)
    if many and uploads:
        raise BadRequest("Array parts go with a single object, not with a list.", message_type="invalid_body")
    docs = service.create_objects(
        ctx=_ctx(), identity=identity, type_name=type_name, bodies=body if many else [body], uploads=uploads,
        metadata=_metadata(),
        # Only services set it (the gateway drops client x-gnode-* headers): "conversion:datafile_9".
        source=source_from_header(request.headers.get(SOURCE_HEADER)),
    )
    neo_type = service.require_type(type_name)
    if many:
        out = message(f"{len(docs)} objects created successfully.", "objects_created", logged_in_as=identity.username)
        out.update(selected=[d["neo_id"] for d in docs], object_selected=len(docs))
        return json_response(out, 201)
    doc = docs[0]
    out = reading.serialise(neo_type, doc, children={c: [] for c in neo_type.children})
    out.update(message("Object created successfully.", "object_created", logged_in_as=identity.username))
    return json_response(out, 201, headers={"Location": f"{PREFIX}/{neo_type.name}/{doc['_id']}/"})


@neo.post(f"{PREFIX}/<type_name>/bulk_update/")
def bulk_update(type_name: str):
    identity = require_user()
    ids = service.bulk_update(ctx=_ctx(), identity=identity, type_name=type_name, body=_json_body(),
                              metadata=_metadata())
    out = message(f"{len(ids)} objects updated successfully.", "objects_updated", logged_in_as=identity.username)
    out.update(selected=ids, object_selected=len(ids))
    return json_response(out)


@neo.get(f"{PREFIX}/<type_name>/<raw_id>/")
def get(type_name: str, raw_id: str):
    identity = current_identity()
    read_request = reading.parse_read_request(request.args, request.headers.get("Accept", ""))
    result = reading.read_object(
        ctx=_ctx(), identity=identity, type_name=type_name, raw_id=raw_id, request=read_request,
        if_none_match=request.headers.get("If-None-Match"),
    )
    headers = {"ETag": result.etag, "Cache-Control": "private, no-cache"}
    if result.doc.get("last_modified"):
        headers["Last-Modified"] = _http_date(result.doc["last_modified"])
    if result.body is None and result.npy is None:
        return Response(status=304, headers=headers)
    if result.npy is not None:
        return Response(result.npy, mimetype=NPY_MEDIA_TYPE, headers={**headers, **result.npy_headers})
    result.body.update(message("Object retrieved successfully.", "retrieved", logged_in_as=identity.username))
    return json_response(result.body, headers=headers)


@neo.get(f"{PREFIX}/<type_name>/<raw_id>/history/")
def object_history(type_name: str, raw_id: str):
    """The object's action history (docs/neo.md, *History*): `start_date`, `end_date`, paging."""
    identity = current_identity()
    return json_response(history.object_history(ctx=_ctx(), identity=identity, type_name=type_name, raw_id=raw_id,
                                                 args=request.args))


@neo.route(f"{PREFIX}/<type_name>/<raw_id>/", methods=["POST", "PATCH", "PUT"])
def update(type_name: str, raw_id: str):
    identity = require_user()
    body, uploads = _body_and_uploads()
    ctx = _ctx()
    neo_type = service.require_type(type_name)
    doc = service.update_object(
        ctx=ctx, identity=identity, type_name=type_name, raw_id=raw_id, body=body, uploads=uploads,
        if_match=request.headers.get("If-Match"),
        current_etag=lambda current: reading.plain_etag(ctx, identity, neo_type, current),
        metadata=_metadata(),
    )
    links = visible_parents(ctx, identity, [(neo_type, doc)])
    out = reading.serialise(neo_type, doc, children=children_of(ctx, identity, neo_type, doc["_id"]),
                            parents=links[doc["neo_id"]])
    out.update(message("Object updated successfully. Data changes saved.", "object_updated", logged_in_as=identity.username))
    return json_response(out, headers={"ETag": reading.plain_etag(ctx, identity, neo_type, doc, links)})


@neo.delete(f"{PREFIX}/<type_name>/<raw_id>/")
def delete(type_name: str, raw_id: str):
    identity = require_user()
    cascade = flag(request.args, "cascade")
    deleted = service.delete_object(ctx=_ctx(), identity=identity, type_name=type_name, raw_id=raw_id, cascade=cascade)
    out = message(f"{len(deleted)} object(s) deleted.", "object_deleted", logged_in_as=identity.username)
    out["deleted"] = deleted
    return json_response(out)


def _selection_list(result: dict[str, Any], identity) -> dict[str, Any]:
    out = neo_list(neo_ids=result["neo_ids"], total=result["total"], selected_as_of=result["offset"],
                   logged_in_as=identity.username)
    return out


@neo.post("/selections/")
def create_selection():
    """Runs a selection (docs/neo.md, *Selections*); `save_as` also stores it for its owner."""
    identity = require_user()
    result = selections.select(ctx=_ctx(), identity=identity, body=_json_body(), args=request.args)
    out = _selection_list(result, identity)
    if "selection_id" in result:
        out.update(selection_id=result["selection_id"], selection_name=result["selection_name"])
        return json_response(out, 201, headers={"Location": f"/selections/{result['selection_id']}/"})
    return json_response(out)


@neo.get("/selections/")
def list_selections():
    identity = require_user()
    saved = selections.list_saved(ctx=_ctx(), identity=identity)
    out = message("Here are your saved selections.", "object_selected", logged_in_as=identity.username)
    out.update(selections=saved, object_total=len(saved))
    return json_response(out)


@neo.get("/selections/<raw_id>/")
def get_selection(raw_id: str):
    identity = require_user()
    result = selections.rerun(ctx=_ctx(), identity=identity, raw_id=raw_id, args=request.args)
    out = _selection_list(result, identity)
    out.update(selection_id=result["selection"]["selection_id"], selection_name=result["selection"]["name"],
               obj_type=result["selection"]["obj_type"], querysets=result["selection"]["querysets"])
    return json_response(out)


@neo.get("/selections/<raw_id>/history/")
def selection_history(raw_id: str):
    identity = require_user()
    return json_response(history.selection_history(ctx=_ctx(), identity=identity, raw_id=raw_id, args=request.args))


@neo.delete("/selections/<raw_id>/")
def delete_selection(raw_id: str):
    identity = require_user()
    deleted = selections.delete(ctx=_ctx(), identity=identity, raw_id=raw_id)
    out = message("Selection deleted.", "object_deleted", logged_in_as=identity.username)
    out["deleted"] = [deleted]
    return json_response(out)


def _metadata():
    return current_app.extensions["neo_metadata"]


@neo.post("/labels/")
def create_label():
    """Links a metadata value to objects (docs/neo.md, *Labels*)."""
    identity = require_user()
    label = labels.create(ctx=_ctx(), metadata=_metadata(), identity=identity, body=_json_body())
    out = message(f"Label applied to {label['object_total']} object(s).", "object_created", logged_in_as=identity.username)
    out.update(label)
    return json_response(out, 201, headers={"Location": f"/labels/{label['label_id']}/"})


@neo.get("/labels/<raw_id>/")
def get_label(raw_id: str):
    identity = require_user()
    out = message("Here is the label.", "retrieved", logged_in_as=identity.username)
    out.update(labels.get(ctx=_ctx(), identity=identity, raw_id=raw_id))
    return json_response(out)


@neo.delete("/labels/<raw_id>/")
def delete_label(raw_id: str):
    identity = require_user()
    body = json_body(limit=current_app.config["MAX_JSON_BYTES"], required=False)
    result = labels.remove(ctx=_ctx(), identity=identity, raw_id=raw_id, body=body)
    text = "Label deleted." if result["deleted"] else f"Label removed from {len(result['removed_from'])} object(s)."
    out = message(text, "object_deleted", logged_in_as=identity.username)
    out.update(result)
    return json_response(out)


@neo.get(f"{PREFIX}/<type_name>/<raw_id>/metadata/")
def object_metadata(type_name: str, raw_id: str):
    identity = current_identity()
    out = message("Here is the object's metadata.", "retrieved", logged_in_as=identity.username)
    out.update(labels.object_metadata(ctx=_ctx(), metadata=_metadata(), identity=identity,
                                      type_name=type_name, raw_id=raw_id))
    return json_response(out)


@internal.get("/internal/acl/<resource>/")
def internal_acl(resource: str):
    """For the acl service: an object's ACL, `acl_version` and parents (`segment_3`); no identity needed."""
    return json_response(acl.acl_record(_ctx().store, resource))


def _http_date(value) -> str:
    return http_date(value)
