"""The files service's permission plumbing without a database: which resource ids it owns, its
consumers and their queues, the internal ACL answer and the created event's `acl`."""
from __future__ import annotations

import dataclasses

import pytest

from services.files import acl as files_acl
from services.files.events import DatafileCreated
from shared.events import envelope_for


class FakeDb(dict):
    def __missing__(self, name):
        self[name] = f"<collection {name}>"
        return self[name]


@pytest.mark.parametrize("resource, expected", [
    ("datafile_9", 9), ("datafile_123456789", 123456789), (" datafile_4 ", 4),
    ("section_9", None), ("segment_9", None), ("block_9", None), ("9", None), ("datafile_", None),
    ("datafile_0", None), ("datafile_x", None), ("datafile_9_1", None), ("Datafile_9", None), ("", None),
    (9, None), (None, None),
])
def test_datafile_number(resource, expected):
    assert files_acl.datafile_number(resource) == expected


def test_locate_names_the_datafile_document_or_nothing():
    db = FakeDb()
    locate = files_acl.locator(db)
    assert locate("datafile_9") == [("<collection datafiles>", {"_id": 9})]
    for foreign in ("section_9", "analogsignal_9", "garbage"):
        assert locate(foreign) == []


def test_the_worker_consumers_and_their_queues():
    specs = files_acl.consumers(FakeDb(), poll_interval=0.05)
    assert [spec.queue for spec in specs] == ["files.acl", "files.friendships"]
    assert set(specs[0].handlers) == {"acl.permissions.changed"}
    assert set(specs[1].handlers) == {"auth.friendship.added", "auth.friendship.removed"}
    assert all(spec.options == {"poll_interval": 0.05} for spec in specs)
    assert files_acl.QUEUES == ("files.acl", "files.friendships")


def test_the_acl_routing_key_is_the_acl_services():
    from services.acl.events import PermissionsChanged

    assert files_acl.PERMISSIONS_CHANGED == PermissionsChanged.routing_key


def test_the_internal_acl_answer():
    doc = {"_id": 9, "section": 4, "owner": 7, "safety_level": 2, "shared_with": {"bob": 1}, "readers": [8],
           "writers": [], "acl_version": 3, "title": "x"}
    assert files_acl.internal_acl(doc) == {"resource": "datafile_9", "owner": 7, "safety_level": 2,
                                           "shared_with": {"bob": 1}, "readers": [8], "writers": [],
                                           "acl_version": 3, "parents": ["section_4"]}
    bare = files_acl.internal_acl({"_id": 10, "section": None, "owner": 7})
    assert bare["parents"] == [] and bare["acl_version"] == 0 and bare["safety_level"] == 3


def test_the_created_event_carries_the_acl():
    acl = {"owner": 7, "safety_level": 3, "shared_with": {}, "readers": [], "writers": []}
    event = DatafileCreated(datafile_id=9, owner=7, section_id=None, title="a", size=1, sha256="00", acl=acl)
    assert envelope_for(event, producer="files")["payload"]["acl"] == acl
    assert "acl" in {f.name for f in dataclasses.fields(DatafileCreated)}


# --- exports leave out the NEO objects the caller may not read ------------------------------------

class FakeNeo:
    """Answers `get` from a table; ids in `refused` answer that status (the neo service's 401/403/404)."""

    def __init__(self, objects, refused):
        self.objects, self.refused = objects, refused

    def get(self, identity, neo_id, **params):
        from services.files.clients import ServiceRefused

        if neo_id in self.refused:
            raise ServiceRefused(self.refused[neo_id], None, f"neo service: {self.refused[neo_id]}")
        return self.objects[neo_id]

    def array(self, identity, neo_id, field):
        raise AssertionError("no arrays in these blocks")


class FakeCtx:
    def __init__(self, neo):
        self.neo = neo


def test_exports_leave_out_what_the_caller_may_not_read():
    from services.files.exports import rebuild_blocks
    from shared.identity import Identity

    objects = {"block_1": {"name": "kept", "segment": ["segment_1", "segment_2", "segment_3"]},
               "segment_1": {"name": "readable"}, "block_2": {"name": "refused"}}
    neo = FakeNeo(objects, {"segment_2": 403, "segment_3": 404, "block_2": 401})
    blocks = rebuild_blocks(FakeCtx(neo), Identity(user_id=1, username="a"), ["block_1", "block_2"])
    assert [b.name for b in blocks] == ["kept"] and [s.name for s in blocks[0].segments] == ["readable"]


@pytest.mark.parametrize("identity_kwargs, error", [({}, "NotAuthenticated"), ({"user_id": 1, "username": "a"}, "Forbidden")])
def test_an_export_with_nothing_readable_is_refused(identity_kwargs, error):
    from services.files.exports import export_response
    from shared.identity import Identity

    doc = {"_id": 9, "current_state": "converted", "extracted_info": {"blocks": ["block_1"]}}
    ctx = FakeCtx(FakeNeo({}, {"block_1": 401 if not identity_kwargs else 403}))
    with pytest.raises(Exception) as raised:
        export_response(ctx=ctx, identity=Identity(**identity_kwargs), doc=doc, fmt="hdf5")
    assert type(raised.value).__name__ == error


def test_the_clients_send_no_identity_for_an_anonymous_caller():
    from services.files.clients import NeoClient
    from shared.identity import IDENTITY_HEADER, Identity

    client = NeoClient("http://neo", "secret-0123456789abcdef0123456789abcdef", "neo")
    assert client.headers(Identity()) == {}
    assert IDENTITY_HEADER in client.headers(Identity(user_id=1, username="a"))
