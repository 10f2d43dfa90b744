"""Accounts through the gateway, as a client would use them."""
import time
import uuid

import jwt
import pika
import requests

from shared.identity import IDENTITY_HEADER, Identity, encode_identity
from shared.config import COMMON_DEFAULTS
from stack.system import SERVICES


def test_register_and_authenticate_with_form_sets_the_sessionid_cookie(gateway, new_user):
    name, password = new_user()
    response = requests.post(f"{gateway}/account/authenticate/", data={"username": name, "password": password})
    assert response.status_code == 200
    assert response.json()["message_type"] == "authenticated"
    assert response.json()["logged_in_as"] == name
    assert "sessionid" in response.cookies
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie


def test_authenticate_with_json_and_use_the_bearer_token(gateway, new_user):
    name, password = new_user()
    token = requests.post(f"{gateway}/account/authenticate/", json={"username": name, "password": password}).json()["token"]
    me = requests.get(f"{gateway}/account/me/", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["user"]["username"] == name
    assert me.json()["logged_in_as"] == name


def test_the_cookie_authenticates_and_no_token_is_401(gateway, logged_in):
    session = logged_in()
    assert session.get(f"{gateway}/account/me/").json()["user"]["username"] == session.username
    anonymous = requests.get(f"{gateway}/account/me/")
    assert anonymous.status_code == 401
    assert anonymous.json()["message_type"] == "not_authenticated"


def test_wrong_password_is_401_invalid_credentials(gateway, new_user):
    name, _ = new_user()
    response = requests.post(f"{gateway}/account/authenticate/", data={"username": name, "password": "wrong password"})
    assert response.status_code == 401
    assert response.json()["message_type"] == "invalid_credentials"


def test_logout_revokes_the_token_within_one_second(gateway, logged_in):
    session = logged_in()
    token = session.token
    assert session.get(f"{gateway}/account/logout/").status_code == 200
    time.sleep(1.0)
    response = requests.get(f"{gateway}/account/me/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["message_type"] == "invalid_token"
    response = requests.get(f"{gateway}/account/me/", cookies={"sessionid": token})
    assert response.status_code == 401


def test_forged_identity_header_gets_nothing(gateway, logged_in):
    victim = logged_in()
    user_id = victim.get(f"{gateway}/account/me/").json()["user"]["id"]
    forged_identity = Identity(user_id=user_id, username=victim.username)
    attempts = [
        encode_identity(forged_identity, COMMON_DEFAULTS["INTERNAL_SECRET"]),  # the well-known dev default
        encode_identity(forged_identity, "a-guessed-secret-0123456789abcdefghij"),
        jwt.encode({"user_id": user_id, "username": victim.username}, None, algorithm="none"),
    ]
    for header in attempts:
        response = requests.get(f"{gateway}/account/me/", headers={IDENTITY_HEADER: header})
        assert response.status_code == 401, response.text
        response = requests.get(f"{gateway}/account/friends/", headers={IDENTITY_HEADER: header, "X-Forwarded-User": victim.username})
        assert response.status_code == 401


def test_friendships_through_the_gateway_publish_events(system, gateway, logged_in, amqp_url):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = f"e2e.friendships.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, exclusive=True)
    channel.queue_bind(queue, system.exchange, routing_key="auth.friendship.*")
    try:
        alice, bob = logged_in(), logged_in()
        assert alice.post(f"{gateway}/account/friends/", json={"username": bob.username}).status_code == 201
        assert [f["username"] for f in alice.get(f"{gateway}/account/friends/").json()["friends"]] == [bob.username]
        assert alice.delete(f"{gateway}/account/friends/{bob.username}/").status_code == 200
        assert alice.get(f"{gateway}/account/friends/").json()["friends"] == []

        received = []
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.1)
                continue
            received.append(__import__("json").loads(body))
        assert [event["type"] for event in received] == ["auth.friendship.added", "auth.friendship.removed"]
        assert received[0]["payload"]["friend_username"] == bob.username
        assert received[0]["producer"] == "auth"
    finally:
        connection.close()


def test_data_prefix_serves_the_same_api(gateway, new_user):
    name, password = new_user()
    response = requests.post(f"{gateway}/data/account/authenticate/", data={"username": name, "password": password})
    assert response.status_code == 200
    me = requests.get(f"{gateway}/data/account/me/", cookies={"sessionid": response.cookies["sessionid"]})
    assert me.json()["user"]["username"] == name


def test_routes_of_services_not_built_yet_answer_503(gateway, logged_in):
    session = logged_in()
    prefixes = {"neo": "/electrophysiology/segment/", "metadata": "/metadata/sections/", "files": "/datafiles/", "acl": "/acl/"}
    for spec in SERVICES:
        if spec.name in prefixes and not spec.is_built:
            response = session.get(f"{gateway}{prefixes[spec.name]}")
            assert response.status_code == 503
            assert response.json()["message_type"] == "service_unavailable"
            assert spec.name in response.json()["message"]
    assert requests.get(f"{gateway}/no-such-prefix/").status_code == 404
    assert requests.get(f"{gateway}/internal/revocations/").status_code == 404


def test_health_and_request_ids(gateway):
    health = requests.get(f"{gateway}/healthz")
    assert health.status_code == 200
    services = health.json()["services"]
    assert services["auth"]["status"] == "ok"
    response = requests.get(f"{gateway}/account/login/", headers={"X-Request-Id": "trace-123"})
    assert response.headers["X-Request-Id"] == "trace-123"
    assert "<form" in response.text
    assert len(requests.get(f"{gateway}/account/login/").headers["X-Request-Id"]) >= 16


def test_login_never_redirects_off_the_site(gateway, new_user):
    page = requests.get(f"{gateway}/account/login/?next=/%09/evil.com")
    assert page.status_code == 200 and 'name="next" value=""' in page.text
    name, password = new_user()
    for target in ("/%09/evil.com", "/\t/evil.com", "/\\evil.com", "javascript:alert(1)"):
        response = requests.post(f"{gateway}/account/authenticate/", allow_redirects=False,
                                 data={"username": name, "password": password, "next": target})
        assert response.status_code == 200, (target, response.text)  # no safe next: the JSON answer
        assert "Location" not in response.headers
    response = requests.post(f"{gateway}/account/authenticate/", allow_redirects=False,
                             data={"username": name, "password": password, "next": "/account/me/"})
    assert response.status_code == 303 and response.headers["Location"] == "/account/me/"
