"""A local SMTP server that keeps what it receives (aiosmtpd), for the notification tests."""
from __future__ import annotations

import email
import ssl
import time
from email.message import Message

from aiosmtpd.controller import Controller

from stack.procs import free_port


class Inbox:
    def __init__(self):
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def wait_for(self, predicate, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if predicate(m)]
            if found:
                return found
            time.sleep(0.05)
        return []


class SmtpSink:
    """`tls_context`: offer STARTTLS with that server certificate."""

    def __init__(self, tls_context: ssl.SSLContext | None = None):
        self.inbox = Inbox()
        self.port = free_port()
        options = {"tls_context": tls_context} if tls_context else {}
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)

    def __enter__(self) -> "SmtpSink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
