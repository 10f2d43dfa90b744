"""Share notifications reach an SMTP server, and STARTTLS verifies it."""
from __future__ import annotations

import contextlib
import shutil
import smtplib
import ssl
import subprocess

import pytest

from services.acl import notify
from shared.config import ConfigError
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


# -- STARTTLS verifies the server ------------------------------------------------------------------

def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A lab CA, and server certificates it signed for 127.0.0.1 and for another name."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make test certificates")
    folder = tmp_path_factory.mktemp("smtp-tls")
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
             "-subj", "/CN=Test Lab CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    made = {"ca": ca}
    for name, alt_name in [("right", "IP:127.0.0.1"), ("wrong_name", "DNS:mail.example.org")]:
        key, request, cert, extensions = (folder / f"{name}.{ext}" for ext in ("key", "csr", "pem", "ext"))
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request), "-subj", "/CN=mail")
        extensions.write_text(f"subjectAltName={alt_name}\nbasicConstraints=CA:FALSE\n"
                              "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                              "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
        _openssl("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
                 "-out", str(cert), "-days", "2", "-extfile", str(extensions))
        made[name] = (cert, key)
    return made


@contextlib.contextmanager
def tls_sink(cert_and_key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert_and_key)
    with SmtpSink(tls_context=context) as running:
        yield running


def starttls_handler(port: int, users: FakeUsers, ca_file: str = ""):
    settings = notify.SmtpSettings(host="127.0.0.1", port=port, starttls=True, ca_file=ca_file)
    return notify.handlers(settings, users)["acl.share.granted"]


def test_starttls_refuses_a_server_whose_certificate_no_trusted_ca_signed(certificates):
    users = FakeUsers()
    users.add(2, "bob")
    with tls_sink(certificates["right"]) as sink:
        with pytest.raises(ssl.SSLCertVerificationError):
            starttls_handler(sink.port, users)(granted())  # fails: the consumer retries, then dead-letters
        assert sink.inbox.wait_for(lambda m: True, timeout=0.3) == []


def test_starttls_accepts_a_server_signed_by_the_configured_ca(certificates):
    users = FakeUsers()
    users.add(2, "bob")
    with tls_sink(certificates["right"]) as sink:
        starttls_handler(sink.port, users, ca_file=str(certificates["ca"]))(granted())
        (message,) = sink.inbox.wait_for(lambda m: True)
        assert message["To"] == "bob@example.org"


def test_starttls_checks_the_server_name(certificates):
    users = FakeUsers()
    users.add(2, "bob")
    with tls_sink(certificates["wrong_name"]) as sink:
        with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch|hostname"):
            starttls_handler(sink.port, users, ca_file=str(certificates["ca"]))(granted())
        assert sink.inbox.wait_for(lambda m: True, timeout=0.3) == []


def test_starttls_configured_but_not_offered_fails_instead_of_sending_in_clear(sink):
    users = FakeUsers()
    users.add(2, "bob")
    with pytest.raises(smtplib.SMTPNotSupportedError):
        starttls_handler(sink.port, users)(granted())
    assert sink.inbox.wait_for(lambda m: True, timeout=0.3) == []


def test_the_ca_file_setting_is_read_and_checked(certificates, tmp_path):
    settings = notify.SmtpSettings.from_config({"SMTP_HOST": "mail", "SMTP_STARTTLS": True,
                                                "SMTP_CA_FILE": str(certificates["ca"])})
    assert settings.starttls and settings.ca_file == str(certificates["ca"])
    assert settings.tls_context().verify_mode == ssl.CERT_REQUIRED and settings.tls_context().check_hostname
    with pytest.raises(ConfigError, match="SMTP_CA_FILE"):
        notify.SmtpSettings.from_config({"SMTP_HOST": "mail", "SMTP_CA_FILE": str(tmp_path / "missing.pem")})
