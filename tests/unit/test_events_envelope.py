import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import ClassVar

import pytest

from shared.events import MalformedEvent, decode_envelope, encode_envelope, envelope_for, make_envelope, routing_key_of


@dataclass(frozen=True)
class FriendshipAdded:
    routing_key: ClassVar[str] = "auth.friendship.added"
    user_id: int
    friend_id: int


@dataclass(frozen=True)
class NoKey:
    value: int


def test_make_envelope_has_the_design_fields():
    envelope = make_envelope("files.conversion.completed", {"file_id": 9}, producer="files")
    assert set(envelope) == {"event_id", "type", "occurred_at", "producer", "payload"}
    assert uuid.UUID(envelope["event_id"]).version == 4
    assert envelope["type"] == "files.conversion.completed"
    assert envelope["producer"] == "files"
    assert envelope["payload"] == {"file_id": 9}
    occurred = datetime.fromisoformat(envelope["occurred_at"])
    assert occurred.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - occurred) < timedelta(seconds=5)


def test_each_envelope_gets_its_own_id():
    ids = {make_envelope("a.b.c", {}, producer="a")["event_id"] for _ in range(50)}
    assert len(ids) == 50


def test_occurred_at_is_converted_to_utc():
    paris = timezone(timedelta(hours=2))
    envelope = make_envelope("a.b.c", producer="a", occurred_at=datetime(2024, 5, 1, 12, 0, tzinfo=paris))
    assert envelope["occurred_at"] == "2024-05-01T10:00:00.000+00:00"
    assert envelope["payload"] == {}


def test_payload_is_normalised_to_plain_json():
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    envelope = make_envelope("a.b.c", {"at": when, "tags": ("x", "y"), "n": {1: "one"}}, producer="a")
    assert envelope["payload"] == {"at": "2024-01-02T03:04:05+00:00", "tags": ["x", "y"], "n": {"1": "one"}}
    assert json.loads(encode_envelope(envelope)) == envelope


def test_payload_that_cannot_be_json_is_refused():
    with pytest.raises(TypeError):
        make_envelope("a.b.c", {"x": object()}, producer="a")


@pytest.mark.parametrize("bad", ["", "auth", "auth.user", "auth.*.added", "auth.#", "auth..added", None, 3])
def test_bad_routing_keys_are_refused(bad):
    with pytest.raises(ValueError):
        make_envelope(bad, {}, producer="auth")


def test_producer_is_required():
    with pytest.raises(ValueError):
        make_envelope("a.b.c", {}, producer="")


def test_envelope_for_a_payload_dataclass():
    envelope = envelope_for(FriendshipAdded(user_id=1, friend_id=2), producer="auth")
    assert envelope["type"] == "auth.friendship.added"
    assert envelope["payload"] == {"user_id": 1, "friend_id": 2}  # the ClassVar is not a field
    assert envelope["producer"] == "auth"
    assert routing_key_of(FriendshipAdded) == "auth.friendship.added"


def test_envelope_for_refuses_what_is_not_an_event():
    with pytest.raises(TypeError):
        envelope_for(NoKey(1), producer="x")
    with pytest.raises(TypeError):
        envelope_for({"user_id": 1}, producer="x")
    with pytest.raises(TypeError):
        envelope_for(FriendshipAdded, producer="x")


def test_decode_roundtrip_and_malformed_bodies():
    envelope = make_envelope("a.b.c", {"k": "ü"}, producer="a")
    assert decode_envelope(encode_envelope(envelope)) == envelope
    for body in (b"not json", b"[1, 2]", b'{"type": "a.b.c"}', b'{"event_id": 5}', b'{"event_id": "x", "payload": 3}', b"\xff\xfe"):
        with pytest.raises(MalformedEvent):
            decode_envelope(body)
