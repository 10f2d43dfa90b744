"""Public token verification, the per-process revocation cache and the client address
(DESIGN.md section 3).

The token comes from `Authorization: Bearer <token>` or the session cookie. It is verified with
`shared.tokens.verify_token`, then checked against the set of revoked session ids (`jti`), which
a background thread keeps fresh by asking the auth service every REVOCATION_POLL_SECONDS for the
revocations numbered after the last one it has (`GET /internal/revocations/?after=<seq>`; the
auth service numbers them in the order they are written, services/auth/revocations.py).

Until the first answer has arrived, this process cannot tell a revoked token from a valid one:
token-bearing requests are then refused with 503 `revocations_unavailable` and `Retry-After`
(not 401, which would make clients drop a token that may be valid). Requests without a token are
not affected. Once synchronised, an outage of the auth service keeps what is known.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import requests

from shared.config import ConfigError
from shared.errors import ServiceUnavailable
from shared.tokens import LEEWAY_SECONDS, InvalidToken, SessionToken, verify_token

log = logging.getLogger("gnode.gateway.auth")

REVOCATIONS_PATH = "/internal/revocations/"
# How long the first token-bearing request of a process waits for the first revocation poll.
INITIAL_SYNC_WAIT_SECONDS = 1.0
# Pages of revocations read in one poll before the next tick goes on (a first sync of a big log).
MAX_PAGES_PER_POLL = 100
WARN_EVERY_SECONDS = 30.0

Fetch = Callable[[int], Mapping[str, Any]]


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


class RevocationsUnavailable(ServiceUnavailable):
    message_type = "revocations_unavailable"
    message = ("The gateway has not yet received the list of revoked sessions from the auth service, "
               "so it cannot accept a session token; try again shortly.")

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


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
        self._after = 0  # the number of the last revocation merged
        self._lock = threading.Lock()
        self._synced = threading.Event()  # the revocation log read to its end once
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
        return exp is not None and exp + LEEWAY_SECONDS >= self._clock()

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

    @property
    def last_seq(self) -> int:
        return self._after

    # -- polling -----------------------------------------------------------------------------
    def apply(self, payload: Mapping[str, Any]) -> bool:
        """Merge one answer of the revocations endpoint, drop entries past their expiry and move
        on to the answer's `last`; returns whether the endpoint has more to give."""
        last = payload.get("last")
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            raise ValueError(f"the revocation list has no valid `last`: {last!r}")
        now = self._clock()
        with self._lock:
            revoked = dict(self._revoked)
            for entry in payload.get("revoked") or []:
                jti, exp = _revocation(entry, now)
                if jti:
                    revoked[jti] = max(exp, revoked.get(jti, 0.0))
            revoked = {jti: exp for jti, exp in revoked.items() if exp + LEEWAY_SECONDS >= now}
            self._revoked = revoked  # one atomic swap: readers never see a half-updated dict
            self._after = last
        return bool(payload.get("more"))

    def poll_once(self) -> None:
        """Read every revocation after the last one known (a page at a time); synchronised once
        the log has been read to its end."""
        for _ in range(MAX_PAGES_PER_POLL):
            if not self.apply(self._fetch(self._after)):
                self._synced.set()
                return

    def _http_fetch(self, after: int) -> Mapping[str, Any]:
        if self._session is None:
            self._session = requests.Session()
            self._session.trust_env = False
        response = self._session.get(self.auth_url + REVOCATIONS_PATH, params={"after": str(after)}, timeout=self.timeout)
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


def _revocation(entry: Any, now: float) -> tuple[str | None, float]:
    """(jti, expiry) of one entry; an entry without a usable expiry is kept for a day."""
    if not isinstance(entry, Mapping) or not entry.get("jti"):
        return None, 0.0
    try:
        exp = float(entry.get("exp") or 0)
    except (TypeError, ValueError):
        exp = 0.0
    return str(entry["jti"]), exp or now + 86400.0


def check_token(
    token: str, secret: str, revocations: RevocationCache, verified: VerifiedTokens | None = None
) -> SessionToken:
    """The verified session of a public token; raises InvalidToken (or RevokedToken), or
    RevocationsUnavailable while this process has not read the revocations once."""
    session = verified.verify(token, secret) if verified is not None else verify_token(token, secret)
    if revocations.enabled:
        revocations.ensure_started()
        if not revocations.synced:
            revocations.wait_first_attempt(INITIAL_SYNC_WAIT_SECONDS)
            if not revocations.synced:
                raise RevocationsUnavailable()
        if revocations.is_revoked(session.session_id):
            raise RevokedToken("the session has been revoked (logged out)")
    return session


# -- the client address --------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(spec: str) -> tuple[Network, ...]:
    """`TRUSTED_PROXIES`: addresses or CIDR networks, separated by commas or spaces."""
    networks = []
    for item in spec.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES must list IP addresses or networks (CIDR), got {item!r}") from None
    return tuple(networks)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str | None:
    """The caller's address: the direct peer, unless the peer is a trusted proxy; then the
    X-Forwarded-For entries are read from the right (each proxy appends the address it saw) and
    the first one that is not itself a trusted proxy is the client. A client can write anything
    at the left of that header, so nothing left of the first untrusted entry is believed."""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # not an address: believe the last trusted hop, not what is left of it
        client = address
        if not _is_trusted(address, trusted):
            break
    return client


def _address(value: str) -> str | None:
    """An IP address from one X-Forwarded-For entry (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`)."""
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return str(_unmapped(ipaddress.ip_address(value)))
    except ValueError:
        return None


def _is_trusted(address: str | None, trusted: tuple[Network, ...]) -> bool:
    if not address:
        return False
    try:
        ip = _unmapped(ipaddress.ip_address(address))
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _unmapped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d; TRUSTED_PROXIES names it a.b.c.d.
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip
