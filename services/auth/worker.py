"""The auth service's background process: publishes its outbox (it consumes no events)."""
from __future__ import annotations

from services.auth.app import DEFAULTS, SERVICE
from services.auth.store import OUTBOX_COLLECTIONS
from shared.config import load_config
from shared.events import run_worker


def main() -> None:
    run_worker(service=SERVICE, config=load_config(DEFAULTS), relay_collections=OUTBOX_COLLECTIONS, consumers=[],
               # friendship changes must reach the other services within a second (docs/permissions.md)
               relay_options={"max_idle": 0.2})


if __name__ == "__main__":
    main()
