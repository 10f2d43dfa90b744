"""Where the login form may send the browser afterwards: only to a path on this site.

Browsers forgive a lot in a Location header (the WHATWG URL parser): they drop tabs and newlines
anywhere, strip leading and trailing spaces and control characters, and read a backslash as a
slash. So `/<TAB>/evil.com` and `/\\evil.com` both become `//evil.com`, which leaves the site. A
target is read the same way first and refused unless it then is a plain absolute path; its
percent-decoded form must pass too (`/%2F/evil.com`), for anything that decodes it once more before
redirecting again.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from werkzeug.urls import iri_to_uri

MAX_TARGET_LENGTH = 2048
_TAB_AND_NEWLINES = str.maketrans("", "", "\t\n\r")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))


def safe_next_path(target: Any) -> str | None:
    """`target` as the browser will read it, if that stays on this site; None otherwise."""
    if not isinstance(target, str) or len(target) > MAX_TARGET_LENGTH:
        return None
    path = as_browser_reads(target)
    if path is None or not _is_local_path(path):
        return None
    decoded = as_browser_reads(unquote(path))
    if decoded is None or not _is_local_path(decoded):
        return None
    try:
        return iri_to_uri(path)  # a Location header is ASCII
    except UnicodeError:  # a lone surrogate from a JSON body
        return None


def as_browser_reads(target: str) -> str | None:
    """The URL a browser makes of `target`; None if control characters remain inside it."""
    value = target.translate(_TAB_AND_NEWLINES).strip(_C0_AND_SPACE).replace("\\", "/")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return None
    return value


def _is_local_path(value: str) -> bool:
    if not value.startswith("/") or value.startswith("//"):
        return False
    parts = urlsplit(value)
    # Dot segments are never needed here, and `/.//evil.com` resolves to the path `//evil.com`.
    dot_segments = {".", ".."} & set(parts.path.split("/"))
    return not parts.scheme and not parts.netloc and not dot_segments
