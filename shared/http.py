"""HTTP sessions for calls between services: one `requests.Session` per thread (a Session is not
thread-safe), ignoring proxy settings of the environment (the services talk directly)."""
from __future__ import annotations

import threading

import requests


class ThreadSessions:
    def __init__(self):
        self._local = threading.local()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            self._local.session = session
        return session
