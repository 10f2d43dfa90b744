"""The neo service's background process: publishes its outbox."""
from __future__ import annotations

from services.neo.app import DEFAULTS, SERVICE
from services.neo.schema import NEO_TYPES
from shared.config import load_config
from shared.events import run_worker


def main() -> None:
    collections = [t.collection for t in NEO_TYPES.values()]
    run_worker(service=SERVICE, config=load_config(DEFAULTS), relay_collections=collections, consumers=[])


if __name__ == "__main__":
    main()
