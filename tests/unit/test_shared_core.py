"""Config, errors, envelopes, identity and tokens: no I/O."""
import time
from datetime import datetime

import pytest
from flask import Flask

from shared.config import ConfigError, load_config
from shared.envelope import neo_list, object_list
from shared.errors import ApiError, NotFound, TooManyRequests, register_error_handlers
from shared.identity import ANONYMOUS, Identity, InvalidIdentity, decode_identity, encode_identity
from shared.tokens import InvalidToken, issue_token, verify_token

SECRET = "unit-test-secret-0123456789abcdef-0123"
OTHER = "another-secret-0123456789abcdef-01234"


def test_config_reads_environment_with_types_and_overrides():
    defaults = {"PORT": 1, "OPEN": True, "RATIO": 0.5, "NAME": "x"}
    env = {"PORT": "8080", "OPEN": "false", "RATIO": "2.5", "NAME": "gnode", "MONGO_URL": "mongodb://db",
           "INTERNAL_SECRET": SECRET}
    config = load_config(defaults, {"NAME": "override"}, environ=env)
    assert config["PORT"] == 8080 and config["OPEN"] is False and config["RATIO"] == 2.5
    assert config["NAME"] == "override" and config["MONGO_URL"] == "mongodb://db"
    assert config["EVENT_EXCHANGE"] == "gnode"
    with pytest.raises(ConfigError, match="PORT must be an integer"):
        load_config(defaults, environ={"PORT": "eighty", "INTERNAL_SECRET": SECRET})
    with pytest.raises(ConfigError, match="OPEN must be a boolean"):
        load_config(defaults, environ={"OPEN": "maybe", "INTERNAL_SECRET": SECRET})


def _app_raising(exc):
    app = Flask("t")
    register_error_handlers(app)

    @app.get("/boom")
    def boom():
        raise exc

    return app.test_client()


def test_api_errors_become_json_with_status_and_headers():
    response = _app_raising(TooManyRequests("slow down", headers={"Retry-After": "7"}, details={"n": 1})).get("/boom")
    assert response.status_code == 429
    assert response.get_json() == {"message": "slow down", "message_type": "too_many_requests", "details": {"n": 1}}
    assert response.headers["Retry-After"] == "7"
    response = _app_raising(ApiError("odd", message_type="odd_thing", http_status=418)).get("/boom")
    assert response.status_code == 418 and response.get_json()["message_type"] == "odd_thing"


def test_unknown_urls_methods_and_crashes_are_json():
    client = _app_raising(RuntimeError("secret detail"))
    assert client.get("/nowhere").get_json()["message_type"] == "not_found"
    response = client.post("/boom")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]
    response = client.get("/boom")
    assert response.status_code == 500
    assert "secret detail" not in response.get_data(as_text=True)
    assert NotFound().http_status == 404


def test_list_envelopes_have_the_seed_shapes():
    body = object_list(
        model="datafiles.datafile",
        objects=[{"id": 9, "title": "a", "date_created": datetime(2012, 3, 14, 17, 27, 8)}],
        permalink=lambda obj: f"/datafiles/{obj['id']}",
        logged_in_as="bob",
    )
    assert body["objects_selected"] == 1 and body["selected_range"] == [0, 0]
    assert body["selected"][0]["permalink"] == "/datafiles/9"
    assert body["message_type"] == "object_selected"
    neo = neo_list(neo_ids=["segment_1"], total=5, selected_as_of=0, logged_in_as="bob")
    assert neo["object_total"] == 5 and neo["object_selected"] == 1 and neo["selected"] == ["segment_1"]


def test_identity_round_trip_and_rejections():
    identity = Identity(user_id=3, username="ann", session_id="abc", client_ip="10.1.1.1")
    header = encode_identity(identity, SECRET)
    assert decode_identity(header, SECRET) == identity
    with pytest.raises(InvalidIdentity):
        decode_identity(header, OTHER)
    with pytest.raises(InvalidIdentity):
        decode_identity(encode_identity(identity, SECRET, now=time.time() - 3600), "secret")
    assert not ANONYMOUS.is_authenticated and identity.is_authenticated


def test_session_tokens_verify_and_expire():
    token, session = issue_token(user_id=7, username="ann", secret=SECRET, ttl_seconds=60)
    assert verify_token(token, SECRET) == session
    with pytest.raises(InvalidToken):
        verify_token(token, OTHER)
    expired, _ = issue_token(user_id=7, username="ann", secret=SECRET, ttl_seconds=60, now=time.time() - 3600)
    with pytest.raises(InvalidToken):
        verify_token(expired, SECRET)
    with pytest.raises(InvalidToken):
        verify_token("not.a.token", SECRET)


def test_dates_use_the_seed_format():
    from datetime import timezone

    from shared.envelope import dumps

    moment = datetime(2011, 9, 29, 10, 42, 40, tzinfo=timezone.utc)
    assert dumps({"date_created": moment}) == b'{"date_created":"2011-09-29 10:42:40"}'
