"""The metadata service's background process: publishes its outbox, keeps datafile links from the
files service's events (links.py), applies the acl service's permission changes and keeps the
friendships for friendly reads (acl.py)."""
from __future__ import annotations

from services.metadata import acl
from services.metadata.app import DEFAULTS, SERVICE
from services.metadata.links import QUEUE, handlers
from services.metadata.store import OUTBOX_COLLECTIONS, MetadataStore
from shared.config import load_config
from shared.events import ConsumerSpec, run_worker

QUEUES = (QUEUE, acl.ACL_QUEUE, acl.FRIENDSHIPS_QUEUE)  # stack/system.py waits for them at start-up


def consumers(db) -> list[ConsumerSpec]:
    """Queues `metadata.datafile-links`, `metadata.acl` and `metadata.friendships`."""
    return [ConsumerSpec(queue=QUEUE, handlers=handlers(MetadataStore(db))), *acl.consumer_specs(db)]


def main() -> None:
    run_worker(service=SERVICE, config=load_config(DEFAULTS), relay_collections=OUTBOX_COLLECTIONS, consumers=consumers)


if __name__ == "__main__":
    main()
