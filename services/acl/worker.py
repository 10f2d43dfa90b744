"""The acl service's background process.

It publishes the batches' outbox, keeps the resource tree (tree.py), friendships
(shared/friends.py) and deactivated users' shares (users.py) from the other services' events,
e-mails share notifications (notify.py), and applies to the records any batch that the
acl service left unapplied (a big change is applied behind the answer; a crash may leave one).
"""
from __future__ import annotations

import logging
import threading

from services.acl import notify, tree, users
from services.acl.app import DEFAULTS, SERVICE, build_context
from services.acl.service import settle
from services.acl.store import OUTBOX_COLLECTIONS
from shared.config import load_config
from shared.events import ConsumerSpec, run_worker
from shared.friends import friendship_handlers
from shared.mongo import connect_mongo

log = logging.getLogger(__name__)
FRIENDSHIP_QUEUE = "acl.friendships"
QUEUES = (tree.QUEUE, FRIENDSHIP_QUEUE, users.QUEUE, notify.QUEUE)


def consumer_specs(config, db) -> list[ConsumerSpec]:
    ctx = build_context(config, db)
    return [
        ConsumerSpec(queue=tree.QUEUE, handlers=tree.handlers(ctx), prefetch=64),
        ConsumerSpec(queue=FRIENDSHIP_QUEUE, handlers=friendship_handlers(db)),
        ConsumerSpec(queue=users.QUEUE, handlers=users.handlers(ctx)),
        ConsumerSpec(queue=notify.QUEUE, handlers=notify.handlers(notify.SmtpSettings.from_config(config), ctx.users),
                     max_retries=5, retry_delay_ms=2000),
    ]


def _settle_loop(ctx, stop: threading.Event, interval: float = 2.0) -> None:
    while not stop.wait(interval):
        try:
            count = settle(ctx.store)
            if count:
                log.info("applied %d ACL batch(es) to the records", count)
        except Exception:
            log.exception("could not re-apply unapplied ACL batches")


def main() -> None:
    config = load_config(DEFAULTS)
    db = connect_mongo(config, service=SERVICE)
    stop = threading.Event()
    threading.Thread(target=_settle_loop, args=(build_context(config, db), stop), daemon=True,
                     name="acl batch settle").start()
    run_worker(service=SERVICE, config=config, relay_collections=OUTBOX_COLLECTIONS, db=db, stop=stop,
               consumers=lambda database: consumer_specs(config, database), relay_options={"max_idle": 0.2})


if __name__ == "__main__":
    main()
