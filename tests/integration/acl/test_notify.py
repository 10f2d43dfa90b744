"""Share notifications reach an SMTP server."""
from __future__ import annotations

import smtplib

import pytest

from services.acl import notify
from tests.integration.acl.conftest import FakeUsers, envelope
from tests.smtp_sink import SmtpSink


@pytest.fixture
def sink():
    with SmtpSink() as running:
        yield running


def granted(resource="section_4", notify_flag=True):
    return envelope("acl.share.granted", {
        "resource": resource, "owner_id": 1, "owner_username": "alice", "notify": notify_flag,
        "grantees": [{"user_id": 2, "username": "bob", "level": 2}, {"user_id": 3, "username": "ghost", "level": 1}]})


def handler(sink_port: int, users: FakeUsers):
    settings = notify.SmtpSettings(host="127.0.0.1", port=sink_port, public_url="https://gnode.example.org")
    return notify.handlers(settings, users)["acl.share.granted"]


def test_each_grantee_with_an_address_gets_a_message(sink):
    users = FakeUsers()
    users.add(2, "bob")  # ghost (3) is gone: no address, no message
    handler(sink.port, users)(granted())
    (message,) = sink.inbox.wait_for(lambda m: True)
    assert message["To"] == "bob@example.org"
    assert message["Subject"] == "alice shared section_4 with you"
    body = message.get_payload()
    assert "read and change" in body and "https://gnode.example.org/metadata/sections/4/acl/" in body


def test_nothing_is_sent_without_notify(sink):
    users = FakeUsers()
    users.add(2, "bob")
    handler(sink.port, users)(granted(notify_flag=False))
    assert sink.inbox.wait_for(lambda m: True, timeout=0.3) == []


def test_an_unreachable_server_fails_the_handler_so_the_event_is_retried():
    users = FakeUsers()
    users.add(2, "bob")
    from stack.procs import free_port

    with pytest.raises((OSError, smtplib.SMTPException)):
        handler(free_port(), users)(granted())


@pytest.mark.parametrize("resource, path", [("datafile_9", "/datafiles/9/acl/"),
                                            ("segment_3", "/electrophysiology/segment/segment_3/acl/")])
def test_links_name_the_acl_of_each_kind(resource, path):
    assert notify.acl_path(resource) == path
