"""The routing table (DESIGN.md section 2), as pure functions.

`resolve(path)` maps a public, already percent-decoded request path to the service that serves
it and the path to send upstream, or None when nothing is routed there (unknown prefix,
`/internal/...`, dot segments). The optional `/data/` prefix is stripped first.
"""
from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote

# Service name -> the configuration key holding its base URL ("" = not built / not running).
SERVICE_URL_KEYS: dict[str, str] = {
    "auth": "AUTH_URL",
    "neo": "NEO_URL",
    "metadata": "METADATA_URL",
    "files": "FILES_URL",
    "acl": "ACL_URL",
}
SERVICES: tuple[str, ...] = tuple(SERVICE_URL_KEYS)

# First path segment -> owning service.
PREFIXES: dict[str, str] = {
    "account": "auth",
    "profiles": "auth",
    "electrophysiology": "neo",
    "labels": "neo",
    "selections": "neo",
    "metadata": "metadata",
    "api": "metadata",
    "rest": "metadata",
    "datafiles": "files",
    "acl": "acl",
}

DATA_PREFIX = "/data"
ACL_SEGMENT = "acl"
# First segments the gateway never routes, whatever the case (services' internal APIs).
NEVER_ROUTED = frozenset({"internal"})
# Paths where a bad/stale token is ignored (treated as anonymous) so that a client can log in.
LOGIN_PATHS = frozenset({"authenticate", "login", "register", "logout"})
# Services and first segments whose bodies may be uploads (datafiles, arrays as .npy parts); other
# routes take small JSON or form bodies.
UPLOAD_ROUTES = frozenset({("files", "datafiles"), ("neo", "electrophysiology")})
# Seed routes that change state although they are GETs (section 7: the seeds fix them).
STATE_CHANGING_GETS = (("datafiles", None, "convert"), ("account", "logout"))
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where a session starts: a cross-site request there would log the browser into someone else's account.
SESSION_STARTING_PATHS = (("account", "authenticate"),)

# Characters left unescaped when re-quoting a decoded path for the upstream request.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


class Route(NamedTuple):
    service: str
    upstream_path: str
    data_prefix: bool = False


def strip_data_prefix(path: str) -> tuple[str, bool]:
    """(`path` without a leading `/data` segment, whether it had one)."""
    if path == DATA_PREFIX:
        return "/", True
    if path.startswith(DATA_PREFIX + "/"):
        return path[len(DATA_PREFIX):], True
    return path, False


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def resolve(path: str) -> Route | None:
    """The route for a public request path, or None when the gateway must answer 404."""
    path, prefixed = strip_data_prefix(path)
    segments = _segments(path)
    if not segments:
        return None
    if any(segment in (".", "..") for segment in segments):
        return None  # no path tricks: nothing upstream may be reached by walking out of a prefix
    first = segments[0]
    if first.lower() in NEVER_ROUTED:
        return None
    service = PREFIXES.get(first)
    if service is None:
        return None
    # `/<type>/<id>/acl/...` (any depth, e.g. /electrophysiology/segment/segment_1/acl/) -> acl.
    if service != "acl" and ACL_SEGMENT in segments[2:]:
        service = "acl"
    upstream_path = "/" + "/".join(segments) + ("/" if path.endswith("/") else "")
    return Route(service, upstream_path, prefixed)


def is_login_path(upstream_path: str) -> bool:
    """Whether a stale or invalid token must be ignored here (login, register, logout)."""
    segments = _segments(upstream_path)
    return len(segments) == 2 and segments[0] == "account" and segments[1] in LOGIN_PATHS


def takes_uploads(route: Route) -> bool:
    """Whether the route's bodies get the upload limit rather than the small one."""
    segments = _segments(route.upstream_path)
    return bool(segments) and (route.service, segments[0]) in UPLOAD_ROUTES


def _matches(segments: list[str], pattern: tuple[str | None, ...]) -> bool:
    return len(segments) == len(pattern) and all(p is None or p == s for p, s in zip(pattern, segments))


def changes_state(method: str, upstream_path: str) -> bool:
    """Whether a request may change something: every unsafe method, and the seeds' state-changing GETs."""
    if method.upper() not in SAFE_METHODS:
        return True
    if method.upper() == "OPTIONS":
        return False
    segments = _segments(upstream_path)
    return any(_matches(segments, pattern) for pattern in STATE_CHANGING_GETS)


def starts_a_session(method: str, upstream_path: str) -> bool:
    """Whether the request logs in (and so sets the session cookie)."""
    segments = _segments(upstream_path)
    return method.upper() not in SAFE_METHODS and any(_matches(segments, p) for p in SESSION_STARTING_PATHS)


def quote_path(path: str) -> str:
    """A decoded path made safe for the request line again (UTF-8, percent-encoded)."""
    return quote(path, safe=_PATH_SAFE)
