"""E-mails to users newly given access to a resource (`notify=true`), sent by the acl worker.

The worker consumes its own `acl.share.granted` events (queue `acl.notifications`), looks up
the grantees' addresses in the auth service and sends one message per grantee through the SMTP
server of `SMTP_HOST`/`SMTP_PORT` (`SMTP_USER`/`SMTP_PASSWORD` to log in, `SMTP_STARTTLS`).
With no `SMTP_HOST` the message is only logged. A failure to send is retried by the consumer
and dead-lettered after its retries, never dropped silently.

STARTTLS verifies the server's certificate and name against the system's CAs, or against
`SMTP_CA_FILE` for a lab's own CA: otherwise anyone on the path could present a certificate of
their own and read the messages (and the SMTP password). A server that does not offer STARTTLS
when it is configured fails the send rather than falling back to plain text.
"""
from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Callable, Mapping

from services.acl.clients import UserDirectory
from shared.config import ConfigError

log = logging.getLogger(__name__)
QUEUE = "acl.notifications"
LEVEL_WORDS = {1: "read", 2: "read and change"}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "G-Node <noreply@localhost>"
    user: str = ""
    password: str = ""
    starttls: bool = False
    ca_file: str = ""
    timeout: float = 10.0
    public_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "SmtpSettings":
        ca_file = config.get("SMTP_CA_FILE") or ""
        if ca_file and not Path(ca_file).is_file():
            raise ConfigError(f"SMTP_CA_FILE names no file: {ca_file!r}")
        return cls(host=config.get("SMTP_HOST", ""), port=int(config.get("SMTP_PORT", 25)),
                   sender=config.get("SMTP_FROM") or cls.sender, user=config.get("SMTP_USER", ""),
                   password=config.get("SMTP_PASSWORD", ""), starttls=bool(config.get("SMTP_STARTTLS", False)),
                   ca_file=ca_file, public_url=config.get("PUBLIC_URL") or cls.public_url)

    def tls_context(self) -> ssl.SSLContext:
        """Certificate and host name checked, against SMTP_CA_FILE when set."""
        return ssl.create_default_context(cafile=self.ca_file or None)


def share_message(settings: SmtpSettings, *, to: str, grantee: str, owner: str, resource: str, level: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = f"{owner} shared {resource} with you"
    message.set_content(
        f"Hello {grantee},\n\n{owner} gave you {LEVEL_WORDS.get(level, 'read')} access to {resource}.\n"
        f"Its permissions: {settings.public_url.rstrip('/')}{acl_path(resource)}\n"
    )
    return message


def acl_path(resource: str) -> str:
    kind, _, number = resource.rpartition("_")
    if kind == "section":
        return f"/metadata/sections/{number}/acl/"
    if kind == "datafile":
        return f"/datafiles/{number}/acl/"
    return f"/electrophysiology/{kind}/{resource}/acl/"


def send(settings: SmtpSettings, messages: list[EmailMessage]) -> None:
    if not settings.host:
        for message in messages:
            log.info("no SMTP_HOST: not sending %r to %s", message["Subject"], message["To"])
        return
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls(context=settings.tls_context())
        if settings.user:
            smtp.login(settings.user, settings.password)
        for message in messages:
            smtp.send_message(message)


def handlers(settings: SmtpSettings, users: UserDirectory) -> dict[str, Callable[[dict], None]]:
    def granted(envelope: dict) -> None:
        payload = envelope.get("payload") or {}
        if not payload.get("notify"):
            return
        grantees = payload.get("grantees") or []
        found = users.by_id(g["user_id"] for g in grantees)
        messages = [
            share_message(settings, to=found[g["user_id"]]["email"], grantee=g["username"],
                          owner=payload.get("owner_username") or "Someone", resource=payload["resource"],
                          level=int(g.get("level") or 1))
            for g in grantees if found.get(g["user_id"], {}).get("email")
        ]
        send(settings, messages)

    return {"acl.share.granted": granted}
