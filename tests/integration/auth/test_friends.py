"""Friendships: list, add by username, remove, each recorded as an event in the outbox."""
from .conftest import identity_headers


def _as(user):
    return identity_headers(user_id=user["id"], username=user["username"])


def _outbox_types(db, owner, friend):
    doc = db["friendships"].find_one({"_id": f"{owner['id']}:{friend['id']}"}) or {}
    return [event["type"] for event in doc.get("_outbox", [])]


def test_add_list_and_remove_friends(client, make_user, db):
    alice, bob, carol = make_user(), make_user(), make_user()
    response = client.post("/account/friends/", json={"username": bob["username"]}, headers=_as(alice))
    assert response.status_code == 201 and response.get_json()["message_type"] == "friend_added"
    assert _outbox_types(db, alice, bob) == ["auth.friendship.added"]
    client.post("/account/friends/", data={"username": carol["username"]}, headers=_as(alice))
    again = client.post("/account/friends/", json={"username": bob["username"]}, headers=_as(alice))
    assert again.status_code == 200 and again.get_json()["message_type"] == "friend_exists"

    listed = client.get("/account/friends/", headers=_as(alice)).get_json()["friends"]
    assert sorted(f["username"] for f in listed) == sorted([bob["username"], carol["username"]])
    # friendship is one-way: bob has not added alice
    assert client.get("/account/friends/", headers=_as(bob)).get_json()["friends"] == []

    response = client.delete(f"/account/friends/{bob['username']}/", headers=_as(alice))
    assert response.status_code == 200 and response.get_json()["message_type"] == "friend_removed"
    assert _outbox_types(db, alice, bob)[-1] == "auth.friendship.removed"
    listed = client.get("/account/friends/", headers=_as(alice)).get_json()["friends"]
    assert [f["username"] for f in listed] == [carol["username"]]
    assert client.delete(f"/account/friends/{bob['username']}/", headers=_as(alice)).status_code == 404

    readded = client.post("/account/friends/", json={"username": bob["username"]}, headers=_as(alice))
    assert readded.status_code == 201
    friend_ids = client.get(f"/internal/users/{alice['id']}/friends/").get_json()["friends"]
    assert sorted(friend_ids) == sorted([bob["id"], carol["id"]])


def test_friend_requests_are_validated(client, make_user):
    alice = make_user()
    assert client.get("/account/friends/").status_code == 401
    assert client.post("/account/friends/", json={"username": "nobody-at-all"}, headers=_as(alice)).status_code == 404
    response = client.post("/account/friends/", json={"username": alice["username"]}, headers=_as(alice))
    assert response.status_code == 400 and response.get_json()["message_type"] == "invalid_friend"
    assert client.post("/account/friends/", json={}, headers=_as(alice)).status_code == 400
    assert client.post("/account/friends/", data="[", content_type="application/json", headers=_as(alice)).status_code == 400


def test_profiles_are_public(client, make_user):
    alice = make_user()
    response = client.get(f"/profiles/profile/{alice['id']}/")
    assert response.status_code == 200
    assert response.get_json()["profile"]["username"] == alice["username"]
    assert "email" not in response.get_json()["profile"]
    assert client.get("/profiles/profile/999999999/").status_code == 404
