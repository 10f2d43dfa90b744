"""Sharing through the gateway: friends, notifications, bulk, share removal, deactivated users
and a recursive share of a big tree (docs/permissions.md)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from bench.acl import build_tree, share_and_wait, wait_until_acl_knows
from stack.procs import wait_until

PROPAGATION_TIMEOUT = 10.0  # the contract is one second; the bench measures it, tests only wait


def _fields(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()["selected"][0]["fields"]


def _section(gateway, user, name="Shared", **fields) -> str:
    """A new section's typed id (`section_12`), which every URL takes too."""
    return _fields(user.post(f"{gateway}/metadata/sections/", json={"name": name, **fields}))["id"]


def _eventually(check) -> bool:
    return wait_until(check, timeout=PROPAGATION_TIMEOUT, interval=0.05)


def _status(session, url) -> int:
    return session.get(url).status_code


def test_friendly_section_follows_the_friendship(gateway, logged_in):
    owner, friend = logged_in(), logged_in()
    number = _section(gateway, owner)
    url = f"{gateway}/metadata/sections/{number}/"
    assert owner.post(f"{url}acl/", json={"safety_level": 2}).status_code == 200
    assert _eventually(lambda: owner.get(f"{url}acl/").json()["safety_level"] == 2)
    assert _status(friend, url) == 403
    assert owner.post(f"{gateway}/account/friends/", json={"username": friend.username}).status_code == 201
    assert _eventually(lambda: _status(friend, url) == 200)
    assert friend.get(f"{gateway}/metadata/sections/", params={"recursive": "true"}).json()["object_total"] == 1
    assert owner.delete(f"{gateway}/account/friends/{friend.username}/").status_code == 200
    assert _eventually(lambda: _status(friend, url) == 403)


def test_notification_reaches_the_smtp_server(gateway, logged_in, smtp_sink):
    owner, grantee = logged_in(), logged_in()
    number = _section(gateway, owner, name="Notified")
    response = owner.post(f"{gateway}/metadata/sections/{number}/acl/", params={"notify": "true"},
                          json={"shared_with": {grantee.username: 2}})
    assert response.status_code == 200, response.text
    assert response.json()["shared_with"] == {grantee.username: 2}
    address = f"{grantee.username}@example.org"
    (message,) = smtp_sink.inbox.wait_for(lambda m: m["To"] == address, timeout=PROPAGATION_TIMEOUT)
    assert message["Subject"] == f"{owner.username} shared {number} with you"
    assert f"/metadata/sections/{number.rpartition('_')[2]}/acl/" in message.get_payload()


def test_bulk_makes_several_kinds_public(gateway, logged_in):
    owner = logged_in()
    section = _section(gateway, owner, name="Bulk")
    datafile = _fields(owner.post(f"{gateway}/datafiles/", files={"raw_file": ("a.txt", b"abc")},
                                  data={"convert": "0"}))["id"]
    segment = owner.post(f"{gateway}/electrophysiology/segment/", json={"name": "s"}).json()["neo_id"]
    response = owner.post(f"{gateway}/acl/", json={"resources": [section, datafile, segment],
                                                   "state": "public"})
    assert response.status_code == 200, response.text
    assert [r["resource"] for r in response.json()["resources"]] == [section, datafile, segment]
    anonymous = requests.Session()
    for url in (f"{gateway}/metadata/sections/{section}/", f"{gateway}/datafiles/{datafile}/",
                f"{gateway}/electrophysiology/segment/{segment}/"):
        assert _eventually(lambda: _status(anonymous, url) == 200), url


def test_owner_removes_a_user_from_all_shares_and_a_user_leaves(gateway, logged_in):
    owner, bob = logged_in(), logged_in()
    first, second = _section(gateway, owner, name="One"), _section(gateway, owner, name="Two")
    urls = [f"{gateway}/metadata/sections/{n}/" for n in (first, second)]
    share = {"resources": [first, second], "shared_with": {bob.username: "collaborator"}}
    assert owner.post(f"{gateway}/acl/", json=share).status_code == 200
    assert _eventually(lambda: all(_status(bob, url) == 200 for url in urls))
    removed = owner.delete(f"{gateway}/acl/shared_with/{bob.username}/")
    assert removed.status_code == 200 and removed.json()["changed"] == 2
    assert _eventually(lambda: all(_status(bob, url) == 403 for url in urls))

    assert owner.post(f"{gateway}/acl/", json=share).status_code == 200
    assert _eventually(lambda: all(_status(bob, url) == 200 for url in urls))
    left = bob.delete(f"{gateway}/acl/shared_with_me/")
    assert left.status_code == 200 and left.json()["changed"] == 2
    assert _eventually(lambda: all(_status(bob, url) == 403 for url in urls))
    assert owner.get(f"{urls[0]}acl/").json()["shared_with"] == {}


def test_deactivated_user_loses_shares_and_keeps_their_public_data(system, gateway, logged_in):
    owner, bob = logged_in(), logged_in()
    shared = _section(gateway, owner, name="Shared with bob")
    assert owner.post(f"{gateway}/metadata/sections/{shared}/acl/", json={"shared_with": {bob.username: 1}}).status_code == 200
    bobs = _section(gateway, bob, name="Bob's public notes")
    assert bob.post(f"{gateway}/metadata/sections/{bobs}/acl/", json={"safety_level": 1}).status_code == 200
    env = {**os.environ, "MONGO_URL": system.mongo_url, "MONGO_DB_PREFIX": system.db_prefix,
           "EVENT_EXCHANGE": system.exchange, "LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-m", "services.auth.cli", "deactivate-user", bob.username], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _eventually(lambda: owner.get(f"{gateway}/metadata/sections/{shared}/acl/").json()["shared_with"] == {})
    assert _status(bob, f"{gateway}/metadata/sections/{shared}/") == 401  # bob's session is gone too
    anonymous = requests.Session()
    assert _eventually(lambda: _status(anonymous, f"{gateway}/metadata/sections/{bobs}/") == 200)


def test_recursive_share_of_a_thousand_descendants(system, gateway, logged_in):
    owner, grantee = logged_in(), logged_in()
    tree = build_tree(owner, gateway, sections=995, datafiles=5)
    wait_until_acl_knows(system.mongo_url, system.db_prefix, tree)
    result = share_and_wait(owner, grantee, gateway, tree, timeout=60)
    print(f"recursive share of 1,000 descendants: visible after {result['visible_s']} s")
    assert result["seen"] == result["wanted"], result
    # and read only: the grantee cannot change what was shared at level 1
    leaf = tree["datafiles"][0]
    assert grantee.post(f"{gateway}/datafiles/{leaf}/", json={"title": "mine now"}).status_code == 403
