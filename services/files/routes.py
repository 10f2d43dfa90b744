"""HTTP routes of the files service: parse, call one service function, answer.

Permissions follow docs/permissions.md: every GET answers anonymous callers too (they see public
datafiles only); every write needs a login. `internal` is the internal API (never routed by the
gateway): the ACL of a datafile for the acl service, and which datafiles a caller may read for the
metadata service.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request, send_file

from services.files import exports, service
from services.files.acl import datafile_number, internal_acl
from services.files.context import FilesContext
from shared.envelope import json_response, message, object_list
from shared.params import json_body
from shared.errors import BadRequest, NotFound
from shared.identity import current_identity, require_user

files = Blueprint("files", __name__)
internal = Blueprint("files_internal", __name__)
PREFIX = "/datafiles"


def _ctx() -> FilesContext:
    return current_app.extensions["files_context"]


def _envelope(docs, *, text: str | None = None, message_type: str | None = None, offset: int = 0,
              total: int | None = None, **extra: Any) -> dict[str, Any]:
    body = object_list(model=service.MODEL, objects=[service.fields_of(d) for d in docs], permalink=service.permalink,
                       logged_in_as=current_identity().username, offset=offset, total=total,
                       text=text, message_type=message_type)
    body.update(extra)
    return body


def _one(doc, text: str, message_type: str, status: int = 200, **extra: Any) -> Response:
    headers = {"Location": f"{PREFIX}/{doc['_id']}/"} if status == 201 else {}
    return json_response(_envelope([doc], text=text, message_type=message_type, **extra), status, headers=headers)


def _body() -> Any:
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return request.form.to_dict()
    return json_body(limit=1024 * 1024)


@files.get(f"{PREFIX}/")
def list_datafiles():
    identity = current_identity()
    docs, total, offset = service.list_datafiles(ctx=_ctx(), identity=identity, args=request.args.items(multi=True))
    return json_response(_envelope(docs, offset=offset, total=total))


@files.post(f"{PREFIX}/")
def upload():
    identity = require_user()
    doc = service.upload_datafile(ctx=_ctx(), identity=identity, stream=request.stream, mimetype=request.mimetype,
                                  boundary=request.mimetype_params.get("boundary"),
                                  content_length=request.content_length, args=request.args)
    return _one(doc, "File uploaded successfully.", "object_created", 201)


@files.get(f"{PREFIX}/<raw_id>/")
def detail(raw_id: str):
    identity = current_identity()
    doc = service.load(_ctx(), identity, service.path_id(raw_id))
    return _one(doc, "Here is the requested object.", "object_selected")


@files.route(f"{PREFIX}/<raw_id>/", methods=["POST", "PUT", "PATCH"])
def update(raw_id: str):
    identity = require_user()
    ctx = _ctx()
    convert = service.flag(request.args.get("convert"), "convert", False)
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    body = _body() if has_body or not convert else {}
    doc = service.update_datafile(ctx=ctx, identity=identity, raw_id=raw_id, body=body)
    if convert:
        doc = service.request_conversion(ctx=ctx, identity=identity, raw_id=raw_id)
        return _one(doc, "Conversion queued; follow `current_state` in the details.", "conversion_queued", 202,
                    task_id=doc.get("last_task_id"))
    return _one(doc, "Datafile updated successfully.", "object_updated")


@files.delete(f"{PREFIX}/<raw_id>/")
def delete(raw_id: str):
    identity = require_user()
    force = service.flag(request.args.get("force"), "force", False)
    doc = service.delete_datafile(ctx=_ctx(), identity=identity, raw_id=raw_id, force=force)
    body = message(f"datafile_{doc['_id']} deleted.", "object_deleted", logged_in_as=identity.username)
    body["deleted"] = [f"datafile_{doc['_id']}"]
    return json_response(body)


@files.get(f"{PREFIX}/<raw_id>/convert/")
@files.post(f"{PREFIX}/<raw_id>/convert/")
def convert(raw_id: str):
    # GET answers readers with the task already queued or running (its status); queuing needs write.
    identity = current_identity() if request.method == "GET" else require_user()
    doc = service.request_conversion(ctx=_ctx(), identity=identity, raw_id=raw_id)
    return _one(doc, "Conversion queued; follow `current_state` in the details.", "conversion_queued", 202,
                task_id=doc.get("last_task_id"))


@files.get(f"{PREFIX}/<raw_id>/history/")
def history_of(raw_id: str):
    identity = current_identity()
    return json_response(service.datafile_history(ctx=_ctx(), identity=identity, raw_id=raw_id, args=request.args))


@files.get(f"{PREFIX}/<raw_id>/download/")
@files.get(f"{PREFIX}/<raw_id>/binary/")
def download(raw_id: str):
    identity = current_identity()
    ctx = _ctx()
    doc = service.load(ctx, identity, service.path_id(raw_id))
    fmt = (request.args.get("format") or "").strip().lower()
    if fmt:
        return exports.export_response(ctx=ctx, identity=identity, doc=doc, fmt=fmt)
    path = ctx.store.path_of(doc["_id"])
    if not path.exists():
        raise BadRequest(f"The bytes of datafile_{doc['_id']} are missing.", message_type="missing_bytes", http_status=410)
    response = send_file(path, mimetype=doc.get("content_type") or "application/octet-stream", as_attachment=True,
                         download_name=doc.get("title") or f"datafile_{doc['_id']}", conditional=True,
                         etag=doc.get("sha256") or True, last_modified=doc.get("date_created"), max_age=0)
    response.headers["X-Content-SHA256"] = doc.get("sha256") or ""
    return response


# --- internal API (never routed by the gateway) ---------------------------------------------------

@internal.get("/internal/acl/<resource>/")
def internal_acl_of(resource: str):
    """The ACL of `datafile_<id>` for the acl service (docs/permissions.md, How it works)."""
    number = datafile_number(resource)
    doc = None if number is None else service.find(_ctx(), number)
    if doc is None:
        raise NotFound(f"There is no datafile {resource!r} here.")
    return json_response(internal_acl(doc))


@internal.post("/internal/datafiles/readable/")
def internal_readable():
    """For the metadata service: which of the datafiles shown in a section the caller may read."""
    readable = service.readable_datafiles(ctx=_ctx(), identity=current_identity(), body=json_body(limit=1024 * 1024))
    return json_response({"readable": readable})
