"""The neo service's background process: publishes its outbox and keeps the permission read model.

Queues (services/neo/acl.py): `neo.acl` applies `acl.permissions.changed` to the objects' ACL
fields; `neo.friendships` keeps the copy of `auth.friendship.added|removed` that friendly reads use.
"""
from __future__ import annotations

from services.neo.acl import ACL_QUEUE, FRIENDSHIPS_QUEUE, consumers
from services.neo.app import DEFAULTS, SERVICE
from services.neo.schema import NEO_TYPES
from shared.config import load_config
from shared.events import run_worker

QUEUES = (ACL_QUEUE, FRIENDSHIPS_QUEUE)  # stack/system.py waits for them at start-up


def main() -> None:
    collections = [t.collection for t in NEO_TYPES.values()]
    run_worker(service=SERVICE, config=load_config(DEFAULTS), relay_collections=collections, consumers=consumers)


if __name__ == "__main__":
    main()
