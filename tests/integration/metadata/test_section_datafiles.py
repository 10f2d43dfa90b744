"""A section shows only the datafiles the caller may read (docs/permissions.md), asked of the files
service (here a fake served over HTTP that checks the signed identity) in one call per request."""
from __future__ import annotations

import pytest

from services.metadata.acl import acl_handlers
from services.metadata.links import handlers
from services.metadata.store import MetadataStore
from tests.integration.metadata.conftest import only
from tests.integration.metadata.test_permissions import change, envelope


@pytest.fixture
def world(api, users, db, files):
    """The owner's public section showing four datafiles: 21 public, 22 the owner's own, 23 shared
    with the collaborator (who may write the section), 24 readable by nobody here."""
    collaborator, stranger = users(), users()
    section = api.section("Recordings")
    acl = acl_handlers(MetadataStore(db))["acl.permissions.changed"]
    acl(envelope("acl.permissions.changed", {"changes": [change(section, api, 1, safety_level=1,
                                                                shared={collaborator: 2})]}))
    links = handlers(MetadataStore(db))
    for datafile_id in (21, 22, 23, 24):
        links["files.datafile.created"]({"payload": {"datafile_id": datafile_id, "section_id": section["id"]}})
    files.publish(21)
    files.share(22, api)
    files.share(23, api, collaborator)
    return {"section": section, "owner": api, "collaborator": collaborator, "stranger": stranger}


def shown(caller, section) -> list[str]:
    return caller.fields(f"sections/{section['id']}")["datafiles"]


def test_each_caller_sees_only_the_datafiles_they_may_read(world, anonymous, files):
    section = world["section"]
    assert shown(world["owner"], section) == ["datafile_21", "datafile_22", "datafile_23"]
    assert shown(world["collaborator"], section) == ["datafile_21", "datafile_23"]
    assert shown(world["stranger"], section) == ["datafile_21"]
    assert shown(anonymous, section) == ["datafile_21"]
    # one call per request, as the caller (the identity header the fake verified), for the linked ids only
    assert files.calls == [(world[who].user_id, [21, 22, 23, 24]) for who in ("owner", "collaborator", "stranger")] \
        + [(None, [21, 22, 23, 24])]


def test_a_datafile_shows_as_soon_as_the_files_service_lets_you_read_it(world, files):
    assert shown(world["stranger"], world["section"]) == ["datafile_21"]
    files.share(24, world["stranger"])
    assert shown(world["stranger"], world["section"]) == ["datafile_21", "datafile_24"]


def test_a_copy_links_only_what_the_copier_may_read(world, files, counts):
    collaborator = world["collaborator"]
    target = collaborator.section("Collaborator's copy target")
    response = collaborator.post("sections", None, query={
        "source_section_id": world["section"]["id"], "target_section_id": target["id"], "mode": "copy",
        "with_datafiles": "true"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["datafile_links_created"] == 2 and only(body)["datafiles"] == ["datafile_21", "datafile_23"]
    assert len(files.calls) == 1  # checked once for the copy, not again for the answer
    files.share(22, collaborator)  # later readable: still not linked into the copy, which never had it
    assert shown(collaborator, only(body)) == ["datafile_21", "datafile_23"]


def test_files_service_down_shows_no_datafiles_and_refuses_copies_with_them(world, files, counts, anonymous):
    files.failing = True
    assert shown(world["owner"], world["section"]) == []
    assert shown(anonymous, world["section"]) == []
    before = counts()
    response = world["owner"].post("sections", None, query={"source_section_id": world["section"]["id"],
                                                            "mode": "copy", "with_datafiles": "true"})
    assert response.status_code == 503 and response.get_json()["message_type"] == "service_unavailable"
    assert counts() == before
    without = world["owner"].post("sections", None, query={"source_section_id": world["section"]["id"],
                                                           "mode": "copy"})
    assert without.status_code == 201  # a copy without datafiles does not need the files service


def test_a_section_without_datafiles_asks_nothing(api, files):
    section = api.section("Empty")
    assert shown(api, section) == [] and files.calls == []


def test_not_configured_shows_no_datafiles(make_app, world):
    alone = make_app(FILES_URL="").test_client()
    owner = type(world["owner"])(alone, world["owner"].headers)
    assert shown(owner, world["section"]) == []
