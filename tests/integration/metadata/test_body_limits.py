"""Request bodies of the metadata service are bounded while they are read (issue 11, item 4)."""
from tests.integration.metadata.conftest import as_user
from tests.request_bodies import MiB, EndlessBody, assert_payload_too_large, send_chunked, send_declared

DEFAULT_LIMIT = 8 * MiB  # MAX_BODY_BYTES
IMPORT_LIMIT = 32 * MiB + MiB  # IMPORT_MAX_BYTES and the multipart framing


def test_a_chunked_body_past_the_limit_is_413_and_the_service_keeps_answering(api, counts):
    section = api.section("kept")
    before = counts()
    for path in ("/metadata/sections/", "/metadata/properties/", f"/metadata/sections/{section['id']}/"):
        endless = EndlessBody()
        assert_payload_too_large(send_chunked(api.client, "POST", path, endless, headers=api.headers), DEFAULT_LIMIT)
        assert endless.served <= DEFAULT_LIMIT + 1
    endless = EndlessBody()
    response = send_chunked(api.client, "POST", "/metadata/import/", endless, content_type="application/xml",
                            headers=api.headers)
    assert_payload_too_large(response, IMPORT_LIMIT)
    assert endless.served <= IMPORT_LIMIT + 1
    assert counts() == before  # nothing stored
    api.section("after")  # and the next request is served as usual


def test_a_declared_length_past_the_limit_is_413_without_reading(api):
    response = send_declared(api.client, "POST", "/metadata/sections/", DEFAULT_LIMIT + 1, headers=api.headers)
    assert_payload_too_large(response, DEFAULT_LIMIT)
    response = send_declared(api.client, "POST", "/metadata/import/", IMPORT_LIMIT + 1,
                             content_type="application/xml", headers=api.headers)
    assert_payload_too_large(response, IMPORT_LIMIT)
    api.section("after")


def test_odml_imports_may_be_larger_than_other_bodies(make_app):
    client = make_app(MAX_BODY_BYTES=1000, IMPORT_MAX_BYTES=100_000).test_client()
    headers = as_user(9_999_001, "importer")
    padded = (b'<?xml version="1.0" encoding="UTF-8"?>\n<odML version="1.1">' + b" " * 5000
              + b"<section><name>padded</name><type>t</type></section></odML>")
    response = send_chunked(client, "POST", "/metadata/import/", padded, content_type="application/xml",
                            headers=headers)
    assert response.status_code == 201, response.get_json()
    response = send_chunked(client, "POST", "/metadata/sections/", b'{"name": "' + b"x" * 5000 + b'"}',
                            headers=headers)
    assert_payload_too_large(response, 1000)
