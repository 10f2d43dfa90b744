"""HTTP routes of the auth service: parse, call one service function, answer."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, render_template, request

from services.auth import history, service
from services.auth.redirects import safe_next_path
from services.auth.service import AuthContext
from shared.envelope import json_response, message
from shared.errors import ApiError, BadRequest
from shared.identity import current_identity, require_user

account = Blueprint("account", __name__, template_folder="templates")
internal = Blueprint("internal", __name__)

LOGIN_ERRORS = {
    "invalid_credentials": "Wrong username or password.",
    "too_many_failed_logins": "Too many failed logins; wait a few minutes.",
    "missing_credentials": "Give both username and password.",
}


def _ctx() -> AuthContext:
    return current_app.extensions["auth_context"]


def _fields() -> dict[str, Any]:
    """Form fields or a JSON object, whichever the client sent."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object.", message_type="invalid_json")
        return body
    return request.form.to_dict()


def _logged_in_as() -> str | None:
    return current_identity().username


@account.post("/account/authenticate/")
def authenticate():
    fields = _fields()
    next_url = safe_next_path(fields.get("next"))
    identity = current_identity()
    try:
        token, session, user = service.authenticate(
            ctx=_ctx(),
            username=fields.get("username"),
            password=fields.get("password"),
            client_ip=identity.client_ip or request.remote_addr,
            user_agent=request.user_agent.string,
        )
    except ApiError as exc:
        if "next" in fields:  # a browser posting the login form: back to the form with the reason
            return redirect("../login/?" + urlencode({"error": exc.message_type, "next": next_url or ""}), code=303)
        raise
    if next_url:
        response = redirect(next_url, code=303)
    else:
        body = message("Authentication successful.", "authenticated", logged_in_as=user["username"])
        body.update(token=token, expires_at=session.expires_at, user=service.public_user(user))
        response = json_response(body)
    response.set_cookie(
        current_app.config["SESSION_COOKIE"],
        token,
        max_age=current_app.config["TOKEN_TTL_SECONDS"],
        httponly=True,
        samesite="Lax",
        secure=current_app.config["COOKIE_SECURE"],
        path="/",
    )
    return response


@account.route("/account/logout/", methods=["GET", "POST"])
def logout():
    identity = require_user()
    service.logout(ctx=_ctx(), identity=identity)
    response = json_response(message("You are logged out.", "logged_out", logged_in_as=None))
    response.delete_cookie(current_app.config["SESSION_COOKIE"], path="/", httponly=True, samesite="Lax")
    return response


@account.get("/account/login/")
def login_form():
    error = LOGIN_ERRORS.get(request.args.get("error", ""), "")
    next_url = safe_next_path(request.args.get("next")) or ""
    return render_template("login.html", error=error, next=next_url)


@account.post("/account/register/")
def register():
    fields = _fields()
    user = service.register_user(
        ctx=_ctx(),
        username=fields.get("username"),
        email=fields.get("email"),
        password=fields.get("password"),
        first_name=fields.get("first_name", ""),
        last_name=fields.get("last_name", ""),
    )
    body = message("Account created; log in at /account/authenticate/.", "user_created", logged_in_as=None)
    body["user"] = service.private_user(user)
    return json_response(body, 201, headers={"Location": f"/profiles/profile/{user['_id']}/"})


@account.get("/account/me/")
def me():
    identity = require_user()
    user = service.get_active_user(ctx=_ctx(), user_id=identity.user_id)
    body = message("Your account.", "object_selected", logged_in_as=identity.username)
    body["user"] = service.private_user(user)
    return json_response(body)


@account.get("/account/friends/")
def friends():
    identity = require_user()
    body = message("Your friends.", "object_selected", logged_in_as=identity.username)
    body["friends"] = service.list_friends(ctx=_ctx(), identity=identity)
    return json_response(body)


@account.post("/account/friends/")
def add_friend():
    identity = require_user()
    friend, created = service.add_friend(ctx=_ctx(), identity=identity, friend_username=_fields().get("username"))
    text = f"{friend['username']} is now your friend." if created else f"{friend['username']} is already your friend."
    body = message(text, "friend_added" if created else "friend_exists", logged_in_as=identity.username)
    body["friend"] = {"id": friend["_id"], "username": friend["username"]}
    return json_response(body, 201 if created else 200)


@account.delete("/account/friends/<username>/")
def remove_friend(username: str):
    identity = require_user()
    friend = service.remove_friend(ctx=_ctx(), identity=identity, friend_username=username)
    return json_response(
        message(f"{friend['username']} is no longer your friend.", "friend_removed", logged_in_as=identity.username)
    )


@account.get("/profiles/profile/<int:user_id>/")
def profile(user_id: int):
    user = service.get_active_user(ctx=_ctx(), user_id=user_id)
    body = message("Here is the requested profile.", "object_selected", logged_in_as=_logged_in_as())
    body["profile"] = service.public_user(user)
    return json_response(body)


@account.get("/profiles/profile/<int:user_id>/history/")
def profile_history(user_id: int):
    identity = require_user()
    body = history.user_history(
        ctx=_ctx(),
        sources=current_app.extensions["auth_history_sources"],
        identity=identity,
        user_id=user_id,
        args=request.args,
    )
    return json_response(body)


@internal.get("/internal/revocations/")
def revocations():
    return json_response(service.revocations_after(ctx=_ctx(), after=request.args.get("after")))


@internal.get("/internal/users/")
def users():
    try:
        ids = [int(i) for i in request.args.getlist("id")]
    except ValueError:
        raise BadRequest("`id` must be an integer.") from None
    found = service.find_users(ctx=_ctx(), usernames=request.args.getlist("username"), ids=ids)
    return json_response({"users": found})


@internal.get("/internal/users/<int:user_id>/friends/")
def friends_of(user_id: int):
    return json_response({"user_id": user_id, "friends": service.friends_of(ctx=_ctx(), user_id=user_id)})
