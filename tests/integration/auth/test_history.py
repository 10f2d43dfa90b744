"""The user action history: auth's own entries, access, dates, and the merge with the other services."""
import threading

import pytest
from flask import Flask, jsonify, request

from services.auth import service
from services.auth.app import create_app
from stack.procs import free_port
from tests.integration.gateway.fakes import ServerThread

from .conftest import identity_headers


def _as(user):
    return identity_headers(user_id=user["id"], username=user["username"])


def _history(client, user, headers=None, **params):
    """`user`'s history, asked as `user` unless other headers are given."""
    headers = _as(user) if headers is None else headers
    return client.get(f"/profiles/profile/{user['id']}/history/", query_string=params, headers=headers)


def _register(client, name):
    response = client.post(
        "/account/register/", json={"username": name, "email": f"{name}@example.org", "password": "correct horse"}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["user"]


def _entry(number, timestamp, user, service_name="neo"):
    return {
        "id": f"{service_name}-{number}",
        "date": timestamp.replace("T", " ")[:19],
        "timestamp": timestamp,
        "user": user,
        "action": "created",
        "description": f"created analogsignal {number}",
        "source": {"kind": "request"},
        "result": {},
        "resources": [f"analogsignal_{number}"],
        "resources_total": 1,
        "service": service_name,
    }


class FakeHistoryService:
    """An `/internal/history/` that pages canned entries and remembers what it was asked."""

    def __init__(self, entries):
        self.entries = entries
        self.calls = []
        app = Flask("fake-history")

        @app.get("/internal/history/")
        def internal_history():
            self.calls.append(request.args.to_dict())
            offset, limit = int(request.args.get("offset", 0)), int(request.args.get("max_results", 100))
            return jsonify({"total": len(self.entries), "history": self.entries[offset : offset + limit]})

        self.server = ServerThread(app)
        self.url = self.server.url


@pytest.fixture
def fake_neo():
    fake = FakeHistoryService([])
    yield fake
    fake.server.stop()


@pytest.fixture
def merged_client(auth_config, fake_neo):
    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app = create_app({**auth_config, "NEO_URL": fake_neo.url, "FILES_URL": unreachable, "HISTORY_TIMEOUT_SECONDS": 2.0})
    return app.test_client()


def test_registering_and_friends_are_in_the_users_own_history(client, make_user, db):
    alice, bob = make_user(), make_user()
    client.post("/account/friends/", json={"username": bob["username"]}, headers=_as(alice))
    client.delete(f"/account/friends/{bob['username']}/", headers=_as(alice))

    response = _history(client, alice)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["message_type"] == "history" and body["subject"] == alice["username"]
    assert [e["action"] for e in body["history"]] == ["registered", "friend_added", "friend_removed"]
    assert body["object_total"] == 3 and body["selected_range"] == [0, 2] and body["unavailable"] == []
    added = body["history"][1]
    assert added["user"] == alice["username"] and added["service"] == "auth"
    assert added["resources"] == [f"user_{alice['id']}", f"user_{bob['id']}"]
    assert added["result"] == {"friend": bob["username"]}
    # the entry is keyed by the event the action published (a retried write cannot record it twice)
    outbox = db["friendships"].find_one({"_id": f"{alice['id']}:{bob['id']}"})["_outbox"]
    assert added["id"] == outbox[0]["event_id"]
    # bob was the object of alice's actions, not their actor: his history is his registration only
    assert [e["action"] for e in _history(client, bob).get_json()["history"]] == ["registered"]


def test_auths_own_entries_are_queryable_internally(client, make_user):
    alice = make_user()
    body = client.get("/internal/history/", query_string={"actor": alice["username"]}).get_json()
    assert body["total"] == 1 and body["history"][0]["action"] == "registered"


def test_operator_actions_are_recorded_as_the_systems(auth_app, make_user, db):
    alice = make_user()
    service.deactivate_user(ctx=auth_app.extensions["auth_context"], username=alice["username"])
    entry = db["history"].find_one({"action": "deactivated"})
    assert entry["actor"] is None and entry["resources"] == [f"user_{alice['id']}"]
    assert entry["source"] == {"kind": "operator"}


def test_accounts_an_operator_creates_are_recorded(auth_config, db, monkeypatch, unique):
    from services.auth import cli

    for key in ("MONGO_URL", "MONGO_DB_PREFIX", "PASSWORD_HASH_MEMORY_KIB", "PASSWORD_HASH_TIME_COST"):
        monkeypatch.setenv(key, str(auth_config[key]))
    assert cli.main(["create-user", f"op_{unique}", f"op_{unique}@example.org", "--password", "correct horse"]) == 0
    entry = db["history"].find_one({"action": "created"})
    assert entry["actor"] is None and entry["source"] == {"kind": "operator"}
    assert entry["description"] == f"account op_{unique} created by an operator"


def test_only_the_user_may_read_their_history(client, make_user):
    alice, bob = make_user(), make_user()
    assert _history(client, alice, headers={}).status_code == 401
    response = _history(client, alice, headers=_as(bob))
    assert response.status_code == 403 and response.get_json()["message_type"] == "forbidden"
    missing = {"id": 999999999, "username": alice["username"]}
    assert _history(client, missing, headers=_as(alice)).status_code == 404


def test_date_filters(client, make_user, db):
    alice, bob = make_user(), make_user()
    client.post("/account/friends/", json={"username": bob["username"]}, headers=_as(alice))
    # move the registration into the past, so that dates tell the two entries apart
    db["history"].update_one(
        {"actor": alice["username"], "action": "registered"}, {"$set": {"at": _utc(2012, 3, 14, 17, 27, 8)}}
    )
    assert [e["action"] for e in _history(client, alice, start_date="2013-01-01").get_json()["history"]] == [
        "friend_added"
    ]
    # a bare end day includes that whole day
    body = _history(client, alice, start_date="14/03/2012", end_date="2012-03-14").get_json()
    assert [e["action"] for e in body["history"]] == ["registered"] and body["object_total"] == 1
    assert _history(client, alice, start_date="2012-03-14 17:27:09", end_date="2012-12-31").get_json()["history"] == []

    response = _history(client, alice, start_date="yesterday")
    assert response.status_code == 400 and response.get_json()["details"] == {"parameter": "start_date"}
    assert _history(client, alice, end_date="2012-13-45").get_json()["details"] == {"parameter": "end_date"}
    assert _history(client, alice, start_date="2013-01-01", end_date="2012-01-01").status_code == 400


def test_merges_other_services_oldest_first_and_reports_the_unavailable(merged_client, fake_neo, db, unique):
    client = merged_client
    alice = _register(client, f"alice_{unique}")
    db["history"].update_one({"actor": alice["username"]}, {"$set": {"at": _utc(2020, 1, 2)}})
    # the fake does not filter by date: auth's own entry is moved among its canned ones instead
    fake_neo.entries = [
        _entry(1, "2020-01-01T00:00:00+00:00", alice["username"]),
        _entry(2, "2020-01-03T00:00:00+00:00", alice["username"]),
        _entry(3, "2020-01-04T00:00:00+00:00", alice["username"]),
    ]

    response = _history(client, alice)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [(e["service"], e["action"]) for e in body["history"]] == [
        ("neo", "created"), ("auth", "registered"), ("neo", "created"), ("neo", "created")
    ]
    assert body["object_total"] == 4
    assert body["unavailable"] == ["files"]  # metadata is not configured: skipped, not unavailable
    call = fake_neo.calls[-1]
    assert call["actor"] == alice["username"] and call["offset"] == "0" and call["max_results"] == "100"

    page = _history(client, alice, offset=1, max_results=2).get_json()
    assert [e["service"] for e in page["history"]] == ["auth", "neo"] and page["history"][1]["id"] == "neo-2"
    assert page["selected_range"] == [1, 2] and page["object_total"] == 4
    assert fake_neo.calls[-1]["max_results"] == "3"  # offset + limit: enough for any merge

    _history(client, alice, start_date="2020-01-02", end_date="2020-01-03")
    assert fake_neo.calls[-1]["start_date"].startswith("2020-01-02T00:00:00")
    assert fake_neo.calls[-1]["end_date"].startswith("2020-01-03T23:59:59")


def test_a_failing_or_slow_service_does_not_fail_the_history(auth_config, unique):
    release = threading.Event()
    app = Flask("broken-history")

    @app.get("/slow/internal/history/")
    def slow():
        release.wait(5)
        return jsonify({"total": 0, "history": []})

    @app.get("/failing/internal/history/")
    def failing():
        return jsonify({"message": "boom"}), 500

    @app.get("/garbled/internal/history/")
    def garbled():
        return jsonify({"total": 1, "history": [{"timestamp": "last tuesday"}]})

    broken_server = ServerThread(app)
    try:
        config = {**auth_config, "NEO_URL": f"{broken_server.url}/slow", "METADATA_URL": f"{broken_server.url}/failing",
                  "FILES_URL": f"{broken_server.url}/garbled", "HISTORY_TIMEOUT_SECONDS": 0.5}
        client = create_app(config).test_client()
        user = _register(client, f"slow_{unique}")
        body = _history(client, user).get_json()
        assert body["unavailable"] == ["files", "metadata", "neo"]
        assert [e["action"] for e in body["history"]] == ["registered"] and body["object_total"] == 1
    finally:
        release.set()
        broken_server.stop()


def test_paging_limits(client, make_user):
    alice = make_user()
    assert _history(client, alice, max_results=0).status_code == 400
    response = _history(client, alice, offset=9_999, max_results=2)
    assert response.status_code == 400 and response.get_json()["details"] == {"parameter": "offset"}


def _utc(*parts):
    from datetime import datetime, timezone

    return datetime(*parts, tzinfo=timezone.utc)
