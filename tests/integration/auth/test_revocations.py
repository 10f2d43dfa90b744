"""The numbered revocation log the gateway follows, and the purge of expired sessions (issue 11, item 6)."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from services.auth import revocations, service
from services.auth.worker import purge_loop
from shared.tokens import verify_token

from .conftest import INTERNAL_SECRET, JWT_SECRET, identity_headers


@pytest.fixture
def ctx(auth_app):
    context = auth_app.extensions["auth_context"]
    context.store.ensure_indexes()
    return context


def logout(client, user, token):
    session = verify_token(token, JWT_SECRET)
    headers = identity_headers(user_id=user["id"], username=user["username"], session_id=session.session_id)
    assert client.post("/account/logout/", headers=headers).status_code == 200
    return session


def poll(client, after):
    response = client.get(f"/internal/revocations/?after={after}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_each_revocation_gets_the_next_number(client, make_user, login):
    user = make_user()
    first = logout(client, user, login(user["username"])["token"])
    second = logout(client, user, login(user["username"])["token"])
    answer = poll(client, 0)
    assert [(e["seq"], e["jti"]) for e in answer["revoked"]] == [(1, first.session_id), (2, second.session_id)]
    assert answer["revoked"][0]["exp"] == first.expires_at
    assert answer["last"] == 2 and answer["more"] is False
    assert poll(client, 1)["revoked"] == answer["revoked"][1:]
    assert poll(client, 2) == {"revoked": [], "last": 2, "more": False}


def test_a_reader_ahead_of_the_log_is_moved_back(client, make_user, login):
    user = make_user()
    logout(client, user, login(user["username"])["token"])
    # say the database was restored from an older backup: the gateway must not wait for number 50
    assert poll(client, 50) == {"revoked": [], "last": 1, "more": False}


def test_the_log_is_read_in_pages(ctx):
    for n in range(5):
        revocations.append(ctx.store.revocations, session_id=f"s{n}", expires_epoch=2**40, revoked_epoch=1.0)
    page = revocations.entries_after(ctx.store.revocations, after=0, limit=3)
    assert [e["seq"] for e in page["revoked"]] == [1, 2, 3] and page["last"] == 3 and page["more"]
    page = revocations.entries_after(ctx.store.revocations, after=3, limit=3)
    assert [e["seq"] for e in page["revoked"]] == [4, 5] and page["last"] == 5 and not page["more"]


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "9" * 30, "1e3", str(2**63)])
def test_a_bad_after_is_400_not_500(client, after):
    response = client.get(f"/internal/revocations/?after={after}")
    assert response.status_code == 400
    assert response.get_json()["message_type"] == "invalid_parameter"


def test_a_revocation_written_while_a_poll_is_in_flight_is_not_missed(ctx, monkeypatch):
    """Writer A takes its number's predecessor, then stalls; B writes; a poll sees B. A's entry
    must still come after what the poll saw (a counter taken before the write would give A the
    smaller number, behind the reader)."""
    log = ctx.store.revocations
    a_has_read, b_written = threading.Event(), threading.Event()
    original = revocations.newest_seq

    def stalling_newest(collection):
        newest = original(collection)
        if threading.current_thread().name == "writer-a" and not a_has_read.is_set():
            a_has_read.set()
            assert b_written.wait(5)
        return newest

    monkeypatch.setattr(revocations, "newest_seq", stalling_newest)
    writer_a = threading.Thread(name="writer-a", target=lambda: revocations.append(
        log, session_id="a", expires_epoch=2**40, revoked_epoch=1.0))
    writer_a.start()
    assert a_has_read.wait(5)
    revocations.append(log, session_id="b", expires_epoch=2**40, revoked_epoch=1.0)
    first = revocations.entries_after(log, after=0)
    b_written.set()
    writer_a.join(5)
    second = revocations.entries_after(log, after=first["last"])
    assert [e["jti"] for e in first["revoked"]] == ["b"]
    assert [e["jti"] for e in second["revoked"]] == ["a"]


def test_concurrent_revocations_and_polls_miss_nothing(ctx, make_user, login):
    user = make_user()
    sessions = [verify_token(login(user["username"])["token"], JWT_SECRET).session_id for _ in range(40)]
    seen: list[str] = []
    done = threading.Event()

    def follow():
        after = 0
        while True:
            finished = done.is_set()
            answer = service.revocations_after(ctx=ctx, after=after)
            seen.extend(e["jti"] for e in answer["revoked"])
            after = answer["last"]
            if finished and not answer["revoked"]:
                return

    def revoke(chunk):
        for session_id in chunk:
            service._revoke_sessions(ctx, {"_id": session_id})

    follower = threading.Thread(target=follow)
    follower.start()
    writers = [threading.Thread(target=revoke, args=(sessions[i::8],)) for i in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(30)
    done.set()
    follower.join(30)
    assert sorted(seen) == sorted(sessions)  # each once: numbers are never given twice
    numbers = [e["_id"] for e in ctx.store.revocations.find({}, sort=[("_id", 1)])]
    assert numbers == list(range(1, 41))


def test_the_log_and_the_purge_are_indexed(ctx):
    # the sequence is the log's _id, which MongoDB always indexes (and keeps unique)
    assert "_id_" in ctx.store.revocations.index_information()
    assert any(spec["key"] == [("exp", 1)] for spec in ctx.store.revocations.index_information().values())
    assert any(spec["key"] == [("expires_epoch", 1)] for spec in ctx.store.sessions.index_information().values())
    assert any(spec["key"] == [("expires_at", 1)] for spec in ctx.store.login_attempts.index_information().values())


# -- purging expired records -----------------------------------------------------------------------

def _session(ctx, session_id, expires_epoch, **extra):
    ctx.store.sessions.insert_one({"_id": session_id, "user_id": 1, "expires_epoch": expires_epoch, "revoked_at": None,
                                   **extra})


def test_expired_sessions_revocations_and_throttling_records_are_purged(ctx):
    now = datetime.now(timezone.utc)
    epoch = now.timestamp()
    _session(ctx, "live", epoch + 3600)
    _session(ctx, "expired", epoch - 3600)
    _session(ctx, "in_leeway", epoch - 1)  # a token is accepted a few seconds past its expiry
    _session(ctx, "expired_unpublished", epoch - 3600, _outbox=[{"event_id": "e1", "type": "auth.session.revoked"}],
             _outbox_pending=True)
    log = ctx.store.revocations
    for jti, exp in [("old1", epoch - 7200), ("fresh", epoch + 3600), ("old2", epoch - 3600), ("old3", epoch - 3600)]:
        revocations.append(log, session_id=jti, expires_epoch=exp, revoked_epoch=epoch)
    attempts = ctx.store.login_attempts
    attempts.insert_many([{"_id": "ip:stale", "attempts": 3, "expires_at": now - timedelta(seconds=1)},
                          {"_id": "ip:current", "attempts": 3, "expires_at": now + timedelta(seconds=60)}])

    purged = service.purge_expired(store=ctx.store, now=now)

    assert purged == {"sessions": 1, "revocations": 2, "login_attempts": 1}
    assert {s["_id"] for s in ctx.store.sessions.find()} == {"live", "in_leeway", "expired_unpublished"}
    # the newest entry stays even though it expired: numbers must never be given out again
    assert [e["jti"] for e in log.find(sort=[("_id", 1)])] == ["fresh", "old3"]
    assert revocations.append(log, session_id="next", expires_epoch=epoch + 60, revoked_epoch=epoch) == 5
    assert [a["_id"] for a in attempts.find()] == ["ip:current"]


def test_the_worker_purges_periodically(ctx):
    stop = threading.Event()
    _session(ctx, "expired", time.time() - 3600)
    thread = threading.Thread(target=purge_loop, args=(ctx.store, stop, 0.05), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while ctx.store.sessions.find_one({"_id": "expired"}) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ctx.store.sessions.find_one({"_id": "expired"}) is None
        _session(ctx, "expired_later", time.time() - 3600)  # the next round takes it too
        while ctx.store.sessions.find_one({"_id": "expired_later"}) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ctx.store.sessions.find_one({"_id": "expired_later"}) is None
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_the_worker_holds_no_jwt_secret():
    from services.auth.app import DEFAULTS
    from services.auth.worker import NOT_HELD
    from shared.config import load_config

    config = load_config(DEFAULTS, environ={"INTERNAL_SECRET": INTERNAL_SECRET, "JWT_SECRET": JWT_SECRET},
                         without=NOT_HELD)
    assert "JWT_SECRET" not in config and config["INTERNAL_SECRET"] == INTERNAL_SECRET


def test_sessions_revoked_before_the_log_existed_stay_revoked_after_the_upgrade(ctx, client):
    """A session logged out under the earlier scheme (`revoked_at`, `revoked_epoch`, no log entry)
    must not come back to life when the gateway starts following the log."""
    now = time.time()
    ctx.store.sessions.insert_many([
        {"_id": "old-revoked", "user_id": 1, "created_at": datetime.now(timezone.utc), "expires_epoch": int(now) + 3600,
         "revoked_at": datetime.now(timezone.utc), "revoked_epoch": now - 60},
        {"_id": "old-expired", "user_id": 1, "created_at": datetime.now(timezone.utc), "expires_epoch": int(now) - 3600,
         "revoked_at": datetime.now(timezone.utc), "revoked_epoch": now - 7200},
        {"_id": "old-live", "user_id": 1, "created_at": datetime.now(timezone.utc), "expires_epoch": int(now) + 3600,
         "revoked_at": None, "revoked_epoch": None},
    ])
    service.prepare_store(ctx=ctx)
    service.prepare_store(ctx=ctx)  # a second process starting changes nothing more
    revoked = {entry["jti"] for entry in poll(client, 0)["revoked"]}
    assert "old-revoked" in revoked and "old-expired" not in revoked and "old-live" not in revoked
    assert ctx.store.sessions.find_one({"_id": "old-revoked"})["revocation_seq"] >= 1
    assert ctx.store.revocations.count_documents({"jti": "old-revoked"}) == 1
