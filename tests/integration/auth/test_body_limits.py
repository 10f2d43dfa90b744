"""Request bodies of the auth service are bounded while they are read (issue 11, item 4)."""
from services.auth.app import create_app
from tests.request_bodies import MiB, EndlessBody, assert_payload_too_large, send_chunked, send_declared

DEFAULT_LIMIT = 1 * MiB  # MAX_BODY_BYTES


def test_a_chunked_body_past_the_limit_is_413_and_the_service_keeps_answering(client, make_user, db):
    users_before = db["users"].count_documents({})
    endless = EndlessBody()
    assert_payload_too_large(send_chunked(client, "POST", "/account/register/", endless), DEFAULT_LIMIT)
    assert endless.served <= DEFAULT_LIMIT + 1
    form = EndlessBody(b"username=a&")
    response = send_chunked(client, "POST", "/account/authenticate/", form,
                            content_type="application/x-www-form-urlencoded")
    assert_payload_too_large(response, DEFAULT_LIMIT)
    assert db["users"].count_documents({}) == users_before  # nothing stored
    make_user()  # and the next request is served as usual


def test_a_declared_length_past_the_limit_is_413_without_reading(client, make_user):
    assert_payload_too_large(send_declared(client, "POST", "/account/register/", DEFAULT_LIMIT + 1), DEFAULT_LIMIT)
    response = send_declared(client, "POST", "/account/authenticate/", 10 * 1024**3,
                             content_type="application/x-www-form-urlencoded")
    assert_payload_too_large(response, DEFAULT_LIMIT)
    make_user()


def test_the_limit_is_configurable(auth_config):
    client = create_app({**auth_config, "MAX_BODY_BYTES": 100}).test_client()
    assert_payload_too_large(send_chunked(client, "POST", "/account/register/", b"{" + b" " * 200 + b"}"), 100)
