"""Request bodies of the acl service are bounded while they are read (issue 11, item 4)."""
from services.acl.app import create_app
from tests.request_bodies import MiB, EndlessBody, assert_payload_too_large, send_chunked, send_declared

DEFAULT_LIMIT = 8 * MiB  # MAX_BODY_BYTES


def test_a_chunked_body_past_the_limit_is_413_and_the_service_keeps_answering(acl):
    owner = acl.user()
    section = acl.create("section_1", owner)
    endless = EndlessBody()
    response = send_chunked(acl.client, "POST", "/acl/", endless, headers=acl.as_(owner))
    assert_payload_too_large(response, DEFAULT_LIMIT)
    assert endless.served <= DEFAULT_LIMIT + 1
    response = send_chunked(acl.client, "POST", acl.url(section), EndlessBody(), headers=acl.as_(owner))
    assert_payload_too_large(response, DEFAULT_LIMIT)
    assert acl.events() == []  # nothing changed
    assert acl.get(section, owner).status_code == 200
    assert acl.post(section, owner, {"safety_level": 1}).status_code == 200


def test_a_declared_length_past_the_limit_is_413_without_reading(acl):
    owner = acl.user()
    section = acl.create("section_2", owner)
    response = send_declared(acl.client, "POST", acl.url(section), DEFAULT_LIMIT + 1, headers=acl.as_(owner))
    assert_payload_too_large(response, DEFAULT_LIMIT)
    assert acl.get(section, owner).status_code == 200


def test_the_limit_is_configurable(acl_config):
    client = create_app({**acl_config, "MAX_BODY_BYTES": 100}).test_client()
    assert_payload_too_large(send_declared(client, "POST", "/acl/", 101), 100)
