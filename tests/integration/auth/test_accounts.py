"""Registration, authentication, logout and the login form against a real MongoDB stand-in."""
import pytest

from services.auth import cli
from shared.tokens import verify_token

from .conftest import JWT_SECRET, identity_headers


def test_register_then_authenticate_with_form_fields(client, make_user, unique):
    user = make_user(f"alice_{unique}")
    response = client.post("/account/authenticate/", data={"username": user["username"], "password": "correct horse battery"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["message_type"] == "authenticated"
    assert body["logged_in_as"] == user["username"]
    session = verify_token(body["token"], JWT_SECRET)
    assert session.user_id == user["id"] and session.username == user["username"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"sessionid={body['token']}")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


def test_authenticate_with_json_and_any_username_case(client, make_user, unique):
    user = make_user(f"Bob_{unique}")
    response = client.post(
        "/account/authenticate/", json={"username": user["username"].lower(), "password": "correct horse battery"}
    )
    assert response.status_code == 200
    assert response.get_json()["logged_in_as"] == user["username"]


@pytest.mark.parametrize(
    "password, username_suffix", [("wrong password", ""), ("correct horse battery", "_nobody")]
)
def test_wrong_credentials_are_401_invalid_credentials(client, make_user, unique, password, username_suffix):
    user = make_user()
    response = client.post(
        "/account/authenticate/", json={"username": user["username"] + username_suffix, "password": password}
    )
    assert response.status_code == 401
    assert response.get_json()["message_type"] == "invalid_credentials"
    assert "Set-Cookie" not in response.headers


def test_authenticate_other_methods_and_bad_bodies(client):
    response = client.get("/account/authenticate/")
    assert response.status_code == 405
    assert response.get_json()["message_type"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]
    response = client.post("/account/authenticate/", data="{not json", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["message_type"] == "invalid_json"
    response = client.post("/account/authenticate/", json={"username": "x"})
    assert response.status_code == 400 and response.get_json()["message_type"] == "missing_credentials"
    response = client.post("/account/authenticate/", json=["username", "password"])
    assert response.status_code == 400


def test_registration_validates_and_refuses_duplicates(client, make_user, unique):
    user = make_user(f"carol_{unique}")
    response = client.post("/account/register/", json={"username": "bad name!", "email": "nope", "password": "short"})
    assert response.status_code == 400
    assert set(response.get_json()["details"]) == {"username", "email", "password"}
    response = client.post(
        "/account/register/",
        json={"username": user["username"].upper(), "email": f"other_{unique}@example.org", "password": "long enough"},
    )
    assert response.status_code == 409 and response.get_json()["message_type"] == "username_taken"
    response = client.post(
        "/account/register/",
        json={"username": f"other_{unique}", "email": user["email"].upper(), "password": "long enough"},
    )
    assert response.status_code == 409 and response.get_json()["message_type"] == "email_taken"


def test_registration_can_be_switched_off(auth_config, unique):
    from services.auth.app import create_app

    client = create_app({**auth_config, "REGISTRATION_OPEN": False}).test_client()
    response = client.post(
        "/account/register/", json={"username": f"d_{unique}", "email": f"d_{unique}@example.org", "password": "long enough"}
    )
    assert response.status_code == 403
    assert response.get_json()["message_type"] == "registration_closed"


def test_failed_logins_are_throttled_per_username(client, make_user):
    user = make_user()
    for _ in range(3):
        assert client.post("/account/authenticate/", json={"username": user["username"], "password": "wrong!"}).status_code == 401
    response = client.post("/account/authenticate/", json={"username": user["username"], "password": "correct horse battery"})
    assert response.status_code == 429
    assert response.get_json()["message_type"] == "too_many_failed_logins"
    assert 0 < int(response.headers["Retry-After"]) <= 900


def test_failed_logins_are_throttled_per_client_address(client, make_user):
    victim = make_user()
    headers = identity_headers(client_ip="192.0.2.77")
    for attempt in range(6):
        client.post("/account/authenticate/", json={"username": f"guess{attempt}", "password": "wrong!"}, headers=headers)
    response = client.post(
        "/account/authenticate/", json={"username": victim["username"], "password": "correct horse battery"}, headers=headers
    )
    assert response.status_code == 429
    other_address = identity_headers(client_ip="192.0.2.78")
    response = client.post(
        "/account/authenticate/", json={"username": victim["username"], "password": "correct horse battery"}, headers=other_address
    )
    assert response.status_code == 200


def test_success_resets_the_username_counter(client, make_user, login):
    user = make_user()
    for _ in range(2):
        client.post("/account/authenticate/", json={"username": user["username"], "password": "wrong!"})
    login(user["username"])
    for _ in range(2):
        client.post("/account/authenticate/", json={"username": user["username"], "password": "wrong!"})
    login(user["username"])


def test_me_needs_identity_and_rejects_forged_identity(client, make_user):
    user = make_user()
    assert client.get("/account/me/").status_code == 401
    forged = identity_headers(user_id=user["id"], username=user["username"], secret="not-the-internal-secret-0123456789abcdef")
    response = client.get("/account/me/", headers=forged)
    assert response.status_code == 401
    assert response.get_json()["message_type"] == "invalid_identity"
    response = client.get("/account/me/", headers=identity_headers(user_id=user["id"], username=user["username"]))
    assert response.status_code == 200
    assert response.get_json()["user"]["email"] == user["email"]


def test_logout_revokes_the_session(client, make_user, login):
    user = make_user()
    session = verify_token(login(user["username"])["token"], JWT_SECRET)
    before = client.get("/internal/revocations/").get_json()["last"]
    headers = identity_headers(user_id=user["id"], username=user["username"], session_id=session.session_id)
    response = client.post("/account/logout/", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["message_type"] == "logged_out"
    assert "sessionid=;" in response.headers["Set-Cookie"]
    answer = client.get(f"/internal/revocations/?after={before}").get_json()
    assert [entry["jti"] for entry in answer["revoked"]] == [session.session_id]
    assert answer["revoked"][0]["seq"] == answer["last"] == before + 1
    assert client.get("/account/logout/").status_code == 401


def test_login_form_posts_to_authenticate_and_redirects(client, make_user):
    page = client.get("/account/login/?next=/account/me/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'action="../authenticate/"' in html and 'name="password"' in html and 'value="/account/me/"' in html
    user = make_user()
    response = client.post(
        "/account/authenticate/", data={"username": user["username"], "password": "correct horse battery", "next": "/account/me/"}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/account/me/"
    assert "sessionid=" in response.headers["Set-Cookie"]
    failed = client.post("/account/authenticate/", data={"username": user["username"], "password": "nope", "next": "https://evil.example/"})
    assert failed.status_code == 303
    assert failed.headers["Location"].startswith("../login/?error=invalid_credentials")
    assert "evil" not in failed.headers["Location"]


def test_operator_cli_creates_and_deactivates_users(auth_config, client, login, unique, monkeypatch, capsys):
    for key, value in auth_config.items():
        monkeypatch.setenv(key, str(value))
    name = f"op_{unique}"
    assert cli.main(["create-user", name, f"{name}@example.org", "--password", "operator pass"]) == 0
    login(name, "operator pass")
    assert cli.main(["create-user", name, f"x{name}@example.org", "--password", "operator pass"]) == 1
    assert cli.main(["deactivate-user", name]) == 0
    response = client.post("/account/authenticate/", json={"username": name, "password": "operator pass"})
    assert response.status_code == 401
    assert "deactivated" in capsys.readouterr().out
