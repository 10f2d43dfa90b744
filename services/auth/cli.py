"""`gnode-admin`: operator commands for accounts (create the first user, list, deactivate).

It reads the same environment variables as the auth service (MONGO_URL, MONGO_DB_PREFIX, ...)
except the secrets: it signs nothing, so it needs and holds none. `make user` runs it against the
stack that `make run` started.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys

from services.auth import service
from services.auth.app import DEFAULTS, SERVICE, build_context
from shared.config import PUBLISHED_DEV_SECRETS, load_config
from shared.errors import ApiError
from shared.mongo import connect_mongo


def _context():
    config = load_config(DEFAULTS, without=PUBLISHED_DEV_SECRETS)
    ctx = build_context(config, connect_mongo(config, service=SERVICE))
    ctx.store.ensure_indexes()
    return ctx


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return args.password
    if os.environ.get("GNODE_PASSWORD"):
        return os.environ["GNODE_PASSWORD"]
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password (again): "):
        raise SystemExit("The passwords differ.")
    return first


def create_user(args: argparse.Namespace) -> None:
    user = service.create_user(
        ctx=_context(),
        username=args.username,
        email=args.email,
        password=_password(args),
        first_name=args.first_name,
        last_name=args.last_name,
        by_operator=True,
    )
    print(f"created user {user['username']} (id {user['_id']})")


def list_users(args: argparse.Namespace) -> None:
    for user in _context().store.users.find({}).sort("_id"):
        state = "active" if user.get("is_active", True) else "deactivated"
        print(f"{user['_id']:>6}  {user['username']:<24} {user['email']:<32} {state}")


def deactivate_user(args: argparse.Namespace) -> None:
    user = service.deactivate_user(ctx=_context(), username=args.username)
    print(f"deactivated {user['username']}; their sessions are revoked")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnode-admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create an account")
    create.add_argument("username")
    create.add_argument("email")
    create.add_argument("--password", help="default: $GNODE_PASSWORD, else asked for")
    create.add_argument("--first-name", default="")
    create.add_argument("--last-name", default="")
    create.set_defaults(run=create_user)
    commands.add_parser("list-users", help="list accounts").set_defaults(run=list_users)
    deactivate = commands.add_parser("deactivate-user", help="stop an account from logging in")
    deactivate.add_argument("username")
    deactivate.set_defaults(run=deactivate_user)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.details:
            print(f"       {exc.details}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
