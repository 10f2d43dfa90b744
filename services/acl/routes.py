"""The acl service's public routes (docs/permissions.md); each parses, calls one operation, answers."""
from __future__ import annotations

from flask import Blueprint, current_app, request

from services.acl import service
from services.acl.resources import resource_from_url
from services.acl.rules import parse_acl_body, parse_bulk_body
from shared.envelope import json_response, message
from shared.identity import current_identity, require_user
from shared.params import json_body, parse_flag

acl = Blueprint("acl", __name__)
SELECTED = "Here is the list of requested objects."


def _ctx() -> service.AclContext:
    return current_app.extensions["acl_context"]


def _flags() -> dict[str, bool]:
    return {"recursive": parse_flag(request.args.get("recursive"), "recursive"),
            "notify": parse_flag(request.args.get("notify"), "notify")}


def _acl_answer(resource: str):
    identity = current_identity()
    if request.method == "GET":
        view = service.get_acl(ctx=_ctx(), identity=identity, resource=resource)
    else:
        identity = require_user()
        view = service.set_acl(ctx=_ctx(), identity=identity, resource=resource,
                               request=parse_acl_body(json_body()), **_flags())
    return json_response(message(SELECTED, "object_selected", logged_in_as=identity.username, **view))


@acl.route("/electrophysiology/<collection>/<raw_id>/acl/", methods=["GET", "POST"])
def electrophysiology_acl(collection: str, raw_id: str):
    return _acl_answer(resource_from_url(collection, raw_id))


@acl.route("/metadata/sections/<raw_id>/acl/", methods=["GET", "POST"])
def section_acl(raw_id: str):
    return _acl_answer(resource_from_url("sections", raw_id))


@acl.route("/datafiles/<raw_id>/acl/", methods=["GET", "POST"])
def datafile_acl(raw_id: str):
    return _acl_answer(resource_from_url("datafiles", raw_id))


@acl.post("/acl/")
def bulk():
    identity = require_user()
    resources, acl_request = parse_bulk_body(json_body())
    listed, changed = service.set_acl_bulk(ctx=_ctx(), identity=identity, resources=resources,
                                           request=acl_request, **_flags())
    return json_response(message(f"The permissions of {len(listed)} resource(s) were changed.", "acl_updated",
                                 logged_in_as=identity.username, resources=listed, changed=changed))


@acl.delete("/acl/shared_with/<username>/")
def remove_user(username: str):
    identity = require_user()
    changed = service.remove_user_from_shares(ctx=_ctx(), identity=identity, username=username)
    return json_response(message(f"{username} was taken out of {changed} of your resource(s).", "acl_updated",
                                 logged_in_as=identity.username, changed=changed))


@acl.delete("/acl/shared_with_me/")
def leave():
    identity = require_user()
    changed = service.leave_shares(ctx=_ctx(), identity=identity)
    return json_response(message(f"You left {changed} shared resource(s).", "acl_updated",
                                 logged_in_as=identity.username, changed=changed))
