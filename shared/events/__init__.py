"""The event bus (DESIGN.md section 5): envelopes, the outbox, its relay, consumers and the worker.

Producing: build an envelope (`envelope_for(event, producer=...)` for a payload dataclass with a
`routing_key: ClassVar[str]`, or `make_envelope(type, payload, producer=...)`) and store it in the
same single-document write as the state change (`outbox_fields`, `with_outbox`,
`tombstone_update`, or `record_event` for an event tied to no document). The service's worker
process (`run_worker`) relays the outbox to RabbitMQ with publisher confirms.

Consuming: give `run_worker` a ConsumerSpec per queue with a handler table keyed by routing key
(or pattern); handlers get the envelope and must be idempotent.

Reads of a collection that uses tombstones must filter `{"_tombstone": {"$ne": True}}`.
Nothing here connects at import time.
"""
from shared.events.consumer import (
    Consumer,
    DeadLetter,
    Handler,
    ProcessedStore,
    Retry,
    decide_on_failure,
    find_handler,
    match_routing_key,
    retry_count,
)
from shared.events.envelope import (
    MalformedEvent,
    decode_envelope,
    encode_envelope,
    envelope_for,
    make_envelope,
    routing_key_of,
)
from shared.events.outbox import (
    OUTBOX_COLLECTION,
    ensure_outbox_indexes,
    outbox_fields,
    record_event,
    tombstone_update,
    with_outbox,
)
from shared.events.relay import OutboxRelay
from shared.events.topology import dead_queue_name, delete_topology, dlx_name, queue_name, retry_queue_name
from shared.events.worker import ConsumerSpec, run_worker

__all__ = [
    "queue_name",
    "OUTBOX_COLLECTION",
    "Consumer",
    "ConsumerSpec",
    "DeadLetter",
    "Handler",
    "MalformedEvent",
    "OutboxRelay",
    "ProcessedStore",
    "Retry",
    "dead_queue_name",
    "decide_on_failure",
    "decode_envelope",
    "delete_topology",
    "dlx_name",
    "encode_envelope",
    "ensure_outbox_indexes",
    "envelope_for",
    "find_handler",
    "make_envelope",
    "match_routing_key",
    "outbox_fields",
    "record_event",
    "retry_count",
    "retry_queue_name",
    "routing_key_of",
    "run_worker",
    "tombstone_update",
    "with_outbox",
]
