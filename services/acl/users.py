"""What the acl service does when the auth service deactivates a user (queue `acl.users`).

| routing key            | fields read        |
|------------------------|--------------------|
| auth.user.deactivated  | user_id, username  |

The user is taken out of every share (docs/permissions.md, "Deleted users"). Repeating it
finds nothing left to change.
"""
from __future__ import annotations

from typing import Callable

from services.acl.service import AclContext, forget_deactivated_user

QUEUE = "acl.users"


def handlers(ctx: AclContext) -> dict[str, Callable[[dict], None]]:
    def deactivated(envelope: dict) -> None:
        payload = envelope.get("payload") or {}
        forget_deactivated_user(ctx=ctx, user_id=int(payload["user_id"]), username=str(payload["username"]))

    return {"auth.user.deactivated": deactivated}
