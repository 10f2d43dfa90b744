"""Public token verification and the per-process revocation cache (DESIGN.md section 3).

The token comes from `Authorization: Bearer <token>` or the session cookie. It is verified with
`shared.tokens.verify_token`, then checked against the set of revoked session ids (`jti`), which
a background thread keeps fresh by polling the auth service's
`GET /internal/revocations/?since=<epoch>` every REVOCATION_POLL_SECONDS.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import requests

from shared.tokens import InvalidToken, SessionToken, verify_token

log = logging.getLogger("gnode.gateway.auth")

REVOCATIONS_PATH = "/internal/revocations/"
# Ask again for a little before the last answer's `now`, so that a revocation committed while the
# previous answer was being produced is never missed (entries are idempotent).
SINCE_OVERLAP_SECONDS = 2.0
# How long a first token-bearing request waits for the first revocation list of this process.
INITIAL_SYNC_WAIT_SECONDS = 1.0
WARN_EVERY_SECONDS = 30.0

Fetch = Callable[[float], Mapping[str, Any]]


@dataclass(frozen=True)
class TokenSource:
    token: str
    from_cookie: bool


def extract_token(headers: Mapping[str, str], cookies: Mapping[str, str], cookie_name: str) -> TokenSource | None:
    """The public token a client sent: the Bearer header wins over the session cookie."""
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return TokenSource(value.strip(), from_cookie=False)
    cookie = cookies.get(cookie_name, "").strip()
    if cookie:
        return TokenSource(cookie, from_cookie=True)
    return None


class RevokedToken(InvalidToken):
    pass


class RevocationCache:
    """Revoked session ids (jti -> exp) for this process, refreshed by a daemon thread.

    Nothing starts in the constructor: `ensure_started()` is called on the first request, in the
    worker process (the thread would not survive gunicorn's fork otherwise). If the auth service is
    unreachable, what is known is kept and the poll is retried.
    """

    def __init__(
        self,
        auth_url: str,
        poll_seconds: float,
        *,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.time,
        timeout: tuple[float, float] = (1.0, 2.0),
    ):
        self.auth_url = auth_url.rstrip("/")
        self.poll_seconds = max(0.05, float(poll_seconds))
        self.timeout = timeout
        self._fetch = fetch or self._http_fetch
        self._custom_fetch = fetch is not None
        self._clock = clock
        self._revoked: dict[str, float] = {}
        self._since = 0.0
        self._lock = threading.Lock()
        self._synced = threading.Event()  # one answer of the auth service merged
        self._attempted = threading.Event()  # the first poll of this process finished, either way
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_pid: int | None = None
        self._session: requests.Session | None = None
        self._failing_since: float | None = None
        self._last_warning = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.auth_url) or self._custom_fetch

    # -- queries -----------------------------------------------------------------------------
    def is_revoked(self, jti: str) -> bool:
        exp = self._revoked.get(jti)
        return exp is not None and exp >= self._clock()

    def __len__(self) -> int:
        return len(self._revoked)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def wait_first_attempt(self, timeout: float) -> bool:
        """Wait (once per process, at most `timeout`) for the first poll to succeed or fail."""
        return self._attempted.is_set() or self._attempted.wait(timeout)

    # -- polling -----------------------------------------------------------------------------
    def apply(self, payload: Mapping[str, Any]) -> None:
        """Merge one answer of the revocations endpoint and drop entries past their expiry."""
        now = self._clock()
        entries = payload.get("revoked") or []
        with self._lock:
            revoked = dict(self._revoked)
            for entry in entries:
                jti = entry.get("jti")
                if not jti:
                    continue
                try:
                    exp = float(entry.get("exp") or 0)
                except (TypeError, ValueError):
                    exp = 0.0
                revoked[str(jti)] = max(exp, revoked.get(str(jti), 0.0)) if exp else now + 86400.0
            revoked = {jti: exp for jti, exp in revoked.items() if exp >= now}
            self._revoked = revoked  # one atomic swap: readers never see a half-updated dict
            server_now = payload.get("now")
            if isinstance(server_now, (int, float)):
                self._since = max(0.0, float(server_now) - SINCE_OVERLAP_SECONDS)
        self._synced.set()

    def poll_once(self) -> None:
        self.apply(self._fetch(self._since))

    def _http_fetch(self, since: float) -> Mapping[str, Any]:
        if self._session is None:
            self._session = requests.Session()
            self._session.trust_env = False
        params = {"since": repr(since)} if since else None
        response = self._session.get(self.auth_url + REVOCATIONS_PATH, params=params, timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def ensure_started(self) -> None:
        if not self.enabled or self._stop.is_set():
            return
        pid = os.getpid()
        if self._thread is not None and self._thread_pid == pid and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread_pid == pid and self._thread.is_alive():
                return
            self._thread_pid = pid
            self._session = None  # never share a connection with a parent process
            self._thread = threading.Thread(target=self._run, name="gateway-revocations", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                if self._failing_since is not None:
                    log.info(
                        "revocation list reachable again after %.1f s",
                        self._clock() - self._failing_since,
                        extra={"auth_url": self.auth_url},
                    )
                    self._failing_since = None
            except Exception as exc:  # keep what is known, retry at the next tick
                now = self._clock()
                if self._failing_since is None:
                    self._failing_since = now
                if now - self._last_warning >= WARN_EVERY_SECONDS:
                    self._last_warning = now
                    log.warning(
                        "cannot refresh the revoked sessions from the auth service: %s",
                        f"{type(exc).__name__}: {exc}",
                        extra={"auth_url": self.auth_url, "known_revoked": len(self._revoked)},
                    )
            self._attempted.set()
            self._stop.wait(self.poll_seconds)


class VerifiedTokens:
    """Tokens whose signature already verified, kept until they expire (bounded, least recent out).

    Signature checks cost more than the rest of the gateway's work on a small request; revocation
    is still checked on every request.
    """

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self._sessions: OrderedDict[tuple[str, str], SessionToken] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str, secret: str) -> SessionToken:
        key = (token, secret)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._sessions.move_to_end(key)
        if session is not None:
            if session.expires_at > time.time():
                return session
            with self._lock:
                self._sessions.pop(key, None)
            raise InvalidToken("Signature has expired")
        session = verify_token(token, secret)
        with self._lock:
            self._sessions[key] = session
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)
        return session


def check_token(
    token: str, secret: str, revocations: RevocationCache, verified: VerifiedTokens | None = None
) -> SessionToken:
    """The verified session of a public token; raises InvalidToken (or RevokedToken)."""
    session = verified.verify(token, secret) if verified is not None else verify_token(token, secret)
    if revocations.enabled:
        revocations.ensure_started()
        if not revocations.synced:
            revocations.wait_first_attempt(INITIAL_SYNC_WAIT_SECONDS)
        if revocations.is_revoked(session.session_id):
            raise RevokedToken("the session has been revoked (logged out)")
    return session
