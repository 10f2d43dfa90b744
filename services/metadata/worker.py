"""The metadata service's background process: publishes its outbox and keeps datafile links from
the files service's events (see links.py)."""
from __future__ import annotations

from services.metadata.app import DEFAULTS, SERVICE
from services.metadata.links import QUEUE, handlers
from services.metadata.store import OUTBOX_COLLECTIONS, MetadataStore
from shared.config import load_config
from shared.events import ConsumerSpec, run_worker


def consumers(db) -> list[ConsumerSpec]:
    return [ConsumerSpec(queue=QUEUE, handlers=handlers(MetadataStore(db)))]


def main() -> None:
    run_worker(service=SERVICE, config=load_config(DEFAULTS), relay_collections=OUTBOX_COLLECTIONS, consumers=consumers)


if __name__ == "__main__":
    main()
