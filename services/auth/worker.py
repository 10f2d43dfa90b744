"""The auth service's background process: publishes its outbox (it consumes no events) and
periodically deletes expired sessions, revocations and login throttling records."""
from __future__ import annotations

import logging
import threading

from services.auth.app import DEFAULTS, SERVICE
from services.auth.service import purge_expired
from services.auth.store import OUTBOX_COLLECTIONS, AuthStore
from shared.config import load_config
from shared.events import run_worker
from shared.mongo import connect_mongo

log = logging.getLogger(__name__)

# The worker signs no session token: it holds no JWT_SECRET (DESIGN.md section 8).
NOT_HELD = ("JWT_SECRET",)


def purge_loop(store: AuthStore, stop: threading.Event, interval_seconds: float) -> None:
    """Purge now, then every `interval_seconds` until `stop` (a failure is logged and retried)."""
    while True:
        try:
            purged = purge_expired(store=store)
            if any(purged.values()):
                log.info("purged expired records: %s", purged, extra={"purged": purged})
        except Exception:
            log.exception("could not purge expired sessions")
        if stop.wait(interval_seconds):
            return


def main() -> None:
    config = load_config(DEFAULTS, without=NOT_HELD)
    db = connect_mongo(config, service=SERVICE)
    stop = threading.Event()
    threading.Thread(target=purge_loop, args=(AuthStore(db), stop, float(config["PURGE_INTERVAL_SECONDS"])),
                     daemon=True, name="auth purge").start()
    run_worker(service=SERVICE, config=config, relay_collections=OUTBOX_COLLECTIONS, consumers=[], db=db, stop=stop,
               # friendship changes must reach the other services within a second (docs/permissions.md)
               relay_options={"max_idle": 0.2})


if __name__ == "__main__":
    main()
