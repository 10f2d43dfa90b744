"""Cross-site request forgery (DESIGN.md section 8), as pure functions.

A browser attaches the `sessionid` cookie to requests that another site makes it send (forms,
links, images; `SameSite=Lax` still lets top-level GET navigations and older browsers through).
Modern browsers say where a request comes from: `Sec-Fetch-Site` (`cross-site`, `same-site`,
`same-origin`, `none`) and, on unsafe methods, `Origin`. A state-changing request that carries the
cookie is refused when either says "another site"; a request with neither header (a script, curl,
the G-Node clients) is not a browser acting for another site and passes.
"""
from __future__ import annotations

from typing import Iterable, Mapping
from urllib.parse import urlsplit

CROSS_SITE = "cross-site"
SAME_SITE = "same-site"


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower-case; None when it has no host."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def trusted_origins(public_url: str, extra: str) -> frozenset[str]:
    """The origins of PUBLIC_URL and of the comma-separated TRUSTED_ORIGINS."""
    candidates: Iterable[str] = [public_url, *extra.split(",")]
    return frozenset(origin for origin in map(origin_of, candidates) if origin)


def is_foreign_origin(origin: str, *, host: str | None, trusted: frozenset[str]) -> bool:
    """Whether an `Origin` header names another site than the one the request was sent to.

    Ours: an origin on the host the browser addressed (the scheme is not compared, because TLS may
    end in front of the gateway), or a trusted one. `null` (sandboxed frames, privacy redirects) is
    never ours."""
    normalised = origin_of(origin)
    if normalised is None:
        return True
    if normalised in trusted:
        return False
    return not host or urlsplit(normalised).netloc != host.strip().lower()


def is_cross_site(headers: Mapping[str, str], *, host: str | None, trusted: frozenset[str],
                  without_origin: bool = False) -> bool:
    """Whether the browser says the request was made by another site.

    `without_origin`: a GET that changes state carries no `Origin`, so nothing tells a sibling
    subdomain (`same-site`) from this one: it is refused too."""
    fetch_site = headers.get("Sec-Fetch-Site", "").strip().lower()
    if fetch_site == CROSS_SITE or (without_origin and fetch_site == SAME_SITE and "Origin" not in headers):
        return True
    origin = headers.get("Origin")
    return origin is not None and is_foreign_origin(origin, host=host, trusted=trusted)
