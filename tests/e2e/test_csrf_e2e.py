"""Cross-site request forgery through the gateway (issue 11, item 7; DESIGN.md section 8).

A browser sends the `sessionid` cookie with requests another site makes it send; when the browser
says so (`Sec-Fetch-Site: cross-site`, or an `Origin` that is not the gateway's), a state-changing
request is refused. Scripts, the site's own pages and Bearer tokens are not affected.
"""
from __future__ import annotations

import time

import pytest
import requests

CROSS_SITE = ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"})


@pytest.fixture
def user(logged_in, gateway):
    session = logged_in()
    session.base = gateway
    return session


def _sections(user) -> int:
    response = user.get(f"{user.base}/metadata/sections/")
    assert response.status_code == 200, response.text
    return response.json()["objects_selected"]


def _datafile(user) -> dict:
    response = user.post(f"{user.base}/datafiles/", files={"raw_file": ("data.csv", b"1,2\n3,4\n")}, data={"convert": "0"})
    assert response.status_code == 201, response.text
    return response.json()["selected"][0]["fields"]


def _state(user, datafile: dict) -> tuple:
    fields = user.get(f"{user.base}/datafiles/{datafile['id']}/").json()["selected"][0]["fields"]
    return fields["current_state"], fields.get("last_task_id"), fields.get("operations_log")


def _refused(response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["message_type"] == "cross_site_request"


@pytest.mark.parametrize("browser", CROSS_SITE, ids=["sec-fetch-site", "origin"])
def test_cross_site_requests_with_the_session_cookie_are_refused(user, browser):
    before = _sections(user)
    _refused(user.post(f"{user.base}/metadata/sections/", json={"name": "forged"}, headers=browser))
    assert _sections(user) == before

    datafile = _datafile(user)
    state = _state(user, datafile)
    _refused(user.get(f"{user.base}/datafiles/{datafile['id']}/convert/", headers=browser))
    _refused(user.delete(f"{user.base}/datafiles/{datafile['id']}/", headers=browser))
    assert _state(user, datafile) == state  # no conversion queued, nothing deleted

    _refused(user.get(f"{user.base}/account/logout/", headers=browser))
    time.sleep(1.2)  # a revoked session would be refused by now
    assert user.get(f"{user.base}/account/me/").status_code == 200


def test_same_site_and_script_requests_with_the_cookie_work(user):
    own_page = {"Sec-Fetch-Site": "same-origin", "Origin": user.base}
    assert user.post(f"{user.base}/metadata/sections/", json={"name": "from the site"}, headers=own_page).status_code == 201
    assert user.post(f"{user.base}/metadata/sections/", json={"name": "from a script"}).status_code == 201
    datafile = _datafile(user)
    response = user.get(f"{user.base}/datafiles/{datafile['id']}/convert/", headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 202, response.text
    # the seed's logout link, typed into the address bar
    assert user.get(f"{user.base}/account/logout/", headers={"Sec-Fetch-Site": "none"}).status_code == 200


def test_bearer_requests_are_not_affected(user):
    bearer = {"Authorization": f"Bearer {user.token}", **CROSS_SITE[0], **CROSS_SITE[1]}
    response = requests.post(f"{user.base}/metadata/sections/", json={"name": "with a token"}, headers=bearer)
    assert response.status_code == 201, response.text
    datafile = _datafile(user)
    response = requests.get(f"{user.base}/datafiles/{datafile['id']}/convert/", headers=bearer)
    assert response.status_code == 202, response.text


def test_a_login_posted_by_another_site_is_refused(gateway, new_user):
    """Login CSRF: another site must not log the browser into an account of the attacker's choosing."""
    name, password = new_user()
    for browser in CROSS_SITE:
        response = requests.post(f"{gateway}/account/authenticate/", data={"username": name, "password": password},
                                 headers=browser)
        _refused(response)
        assert "sessionid" not in response.cookies
    # scripts with the form fields, and the site's own login form, still log in
    response = requests.post(f"{gateway}/account/authenticate/", data={"username": name, "password": password})
    assert response.status_code == 200 and "SameSite=Lax" in response.headers["Set-Cookie"]
    response = requests.post(f"{gateway}/account/authenticate/", allow_redirects=False,
                             data={"username": name, "password": password, "next": "/account/me/"},
                             headers={"Sec-Fetch-Site": "same-origin", "Origin": gateway})
    assert response.status_code == 303 and "sessionid" in response.cookies
