"""One error base class, rendered as JSON by one handler per app."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from pymongo.errors import ConnectionFailure as PyMongoConnectionFailure
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a client can act on: its message, a machine word and the HTTP status."""

    http_status = 400
    message_type = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        message_type: str | None = None,
        http_status: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.message_type = message_type or self.message_type
        self.http_status = http_status or self.http_status
        self.details = details
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "message_type": self.message_type}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(ApiError):
    http_status, message_type, message = 400, "bad_request", "The request is not valid."


class NotAuthenticated(ApiError):
    http_status, message_type = 401, "not_authenticated"
    message = "Authentication is required: log in at /account/authenticate/."


class Forbidden(ApiError):
    http_status, message_type, message = 403, "forbidden", "You are not allowed to do this."


class NotFound(ApiError):
    http_status, message_type, message = 404, "not_found", "No such resource."


class MethodNotAllowed(ApiError):
    http_status, message_type, message = 405, "method_not_allowed", "This method is not allowed here."


class Conflict(ApiError):
    http_status, message_type, message = 409, "conflict", "The resource already exists."


class PreconditionFailed(ApiError):
    http_status, message_type, message = 412, "precondition_failed", "The resource has changed."


class PayloadTooLarge(ApiError):
    http_status, message_type, message = 413, "payload_too_large", "The request body is too large."


class TooManyRequests(ApiError):
    http_status, message_type, message = 429, "too_many_requests", "Too many requests; try later."


class ServiceUnavailable(ApiError):
    http_status, message_type, message = 503, "service_unavailable", "The service is unavailable."


def _http_exception_type(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    from shared.envelope import json_response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return json_response(exc.to_dict(), exc.http_status, headers=exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        body = {"message": exc.description or exc.name, "message_type": _http_exception_type(exc)}
        headers = {}
        if exc.code == 405:
            allow = sorted(m for m in (exc.valid_methods or []) if m not in ("OPTIONS", "HEAD"))  # type: ignore[attr-defined]
            body["message"] = f"Method not allowed here; use {', '.join(allow) or 'another method'}."
            headers["Allow"] = ", ".join(allow)
        return json_response(body, exc.code or 500, headers=headers)

    @app.errorhandler(PyMongoConnectionFailure)
    def _database_down(exc: Exception):
        log.error("database unavailable: %s", exc)
        body = {"message": "The database is unavailable; try again shortly.", "message_type": "database_unavailable"}
        return json_response(body, 503, headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        body = {"message": "Internal server error; it has been logged.", "message_type": "internal_error"}
        return json_response(body, 500)
