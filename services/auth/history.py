"""The user action history, `GET /profiles/profile/<user_id>/history/` (seed 001 "RESOURCE ACTION HISTORY").

Every service keeps the history of its own resources (shared/history.py); a user's history is what
that user did anywhere. The auth service owns this view: it reads its own entries and asks each
other service's `/internal/history/?actor=<username>` in parallel, then merges them oldest first.
A service that is not configured is skipped; one that does not answer in time, or answers an error,
is named in `unavailable` and the answer holds what the others gave (a partial history beats a 500).
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from services.auth import service
from services.auth.service import AuthContext
from shared.errors import BadRequest, Forbidden
from shared.history import MAX_PAGE, date_range, find_entries, history_body, paging, wire_entry
from shared.http import ThreadSessions
from shared.identity import Identity

log = logging.getLogger("gnode.auth.history")

# The services whose entries a user's history includes, each reached at the URL in <NAME>_URL.
REMOTE_SERVICES = ("neo", "metadata", "files")
# Merging needs the first offset+limit entries of every service, so deep pages cost every service
# that much; beyond this window a client narrows the dates instead.
MERGE_WINDOW = 10_000
# Enough for a few concurrent history requests to ask all three services at once.
FETCH_THREADS = 12
# Dates go to the other services in one exact form, so they cannot read a bare day differently.
_WIRE_DATE = "%Y-%m-%dT%H:%M:%S.%f"


@dataclass(frozen=True)
class HistorySources:
    """Where the other services' histories are: service name -> base URL ("" = not configured)."""

    urls: Mapping[str, str]
    timeout: float
    # One pool and one HTTP session per pool thread for the life of the app, so that connections to
    # the services are reused; the pool starts its threads on first use (after a gunicorn fork).
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="history"),
        repr=False,
        compare=False,
    )
    sessions: ThreadSessions = field(default_factory=ThreadSessions, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "HistorySources":
        urls = {name: config.get(f"{name.upper()}_URL") or "" for name in REMOTE_SERVICES}
        return cls(urls=urls, timeout=float(config["HISTORY_TIMEOUT_SECONDS"]))

    @property
    def configured(self) -> dict[str, str]:
        return {name: url for name, url in self.urls.items() if url}


@dataclass(frozen=True)
class _Query:
    actor: str
    start: datetime | None
    end: datetime | None
    wanted: int  # offset + limit: the most entries any one service can contribute to the page


def user_history(
    *, ctx: AuthContext, sources: HistorySources, identity: Identity, user_id: int, args: Mapping[str, str]
) -> dict[str, Any]:
    """The answer for `user_id`'s history as `identity` (a signed-in user) asked for it."""
    user = service.get_active_user(ctx=ctx, user_id=user_id)
    if identity.user_id != user_id:
        # What a user did in private resources is theirs alone, even though profiles are public.
        raise Forbidden("Only the user themselves may read their action history.")
    start, end = date_range(args)
    offset, limit = paging(args)
    if offset + limit > MERGE_WINDOW:
        raise BadRequest(
            f"`offset` + `max_results` may be at most {MERGE_WINDOW}; narrow `start_date` / `end_date` instead.",
            message_type="invalid_parameter",
            details={"parameter": "offset"},
        )
    query = _Query(actor=user["username"], start=start, end=end, wanted=offset + limit)
    own_total, entries = _own_entries(ctx, query)
    totals, remote_entries, unavailable = _remote_entries(sources, query)
    page = sorted(entries + remote_entries, key=_sort_key)[offset : offset + limit]
    body = history_body(
        subject=user["username"],
        total=own_total + sum(totals.values()),
        entries=page,
        offset=offset,
        logged_in_as=identity.username,
    )
    body["unavailable"] = unavailable
    return body


def _own_entries(ctx: AuthContext, query: _Query) -> tuple[int, list[dict[str, Any]]]:
    total, raw = find_entries(
        ctx.store.history, actor=query.actor, start=query.start, end=query.end, offset=0, limit=query.wanted
    )
    return total, [wire_entry(entry, service="auth") for entry in raw]


def _remote_entries(
    sources: HistorySources, query: _Query
) -> tuple[dict[str, int], list[dict[str, Any]], list[str]]:
    """Ask every configured service at once: (totals, entries) of those that answered in time, and
    the names of the others."""
    futures = {name: sources.pool.submit(_fetch, sources, name, url, query) for name, url in sources.configured.items()}
    # A straggler is not waited for; it ends on its own, its request having the same timeout.
    wait(futures.values(), timeout=sources.timeout)
    totals: dict[str, int] = {}
    entries: list[dict[str, Any]] = []
    unavailable = []
    for name, future in futures.items():
        failure = _failure(future)
        if failure:
            future.cancel()  # when it has not even started (the pool was busy), it never will
            log.warning("history of %s: the %s service is unavailable (%s)", query.actor, name, failure)
            unavailable.append(name)
            continue
        totals[name], fetched = future.result()
        entries.extend(fetched)
    return totals, entries, sorted(unavailable)


def _failure(future: Future) -> str | None:
    """Why a finished-or-not fetch gave nothing, or None when it has its result (never blocks)."""
    if not future.done():
        return "no answer in time"
    if future.cancelled():
        return "cancelled"
    error = future.exception()
    return repr(error) if error is not None else None


def _fetch(sources: HistorySources, name: str, url: str, query: _Query) -> tuple[int, list[dict[str, Any]]]:
    """(total, first `wanted` entries) of one service, page by page (a service pages at most MAX_PAGE)."""
    entries: list[dict[str, Any]] = []
    while True:
        remaining = query.wanted - len(entries)
        params = {"actor": query.actor, "offset": len(entries), "max_results": min(MAX_PAGE, remaining)}
        if query.start:
            params["start_date"] = query.start.strftime(_WIRE_DATE)
        if query.end:
            params["end_date"] = query.end.strftime(_WIRE_DATE)
        response = sources.sessions.get().get(
            url.rstrip("/") + "/internal/history/", params=params, timeout=sources.timeout
        )
        response.raise_for_status()
        total, page = _checked_page(response.json(), name)
        entries.extend(page)
        if not page or len(entries) >= min(query.wanted, total):
            return total, entries


def _checked_page(body: Any, name: str) -> tuple[int, list[dict[str, Any]]]:
    """The page of an answer, refused (ValueError: the service counts as unavailable) when malformed,
    so that one bad service cannot break the sorting of everyone's entries."""
    if not isinstance(body, dict) or not isinstance(body.get("total"), int):
        raise ValueError(f"the {name} service answered no {{total, history}} object")
    if not isinstance(body.get("history"), list):
        raise ValueError(f"the {name} service answered no {{total, history}} object")
    for entry in body["history"]:
        if not isinstance(entry, dict):
            raise ValueError(f"the {name} service answered an entry that is not an object")
        _moment(entry)
        entry.setdefault("service", name)
    return body["total"], body["history"]


def _moment(entry: Mapping[str, Any]) -> datetime:
    moment = datetime.fromisoformat(str(entry.get("timestamp")))
    if moment.tzinfo is None:
        raise ValueError(f"the timestamp {entry.get('timestamp')!r} has no time zone")
    return moment


def _sort_key(entry: Mapping[str, Any]) -> tuple[datetime, str, str]:
    # Ties (same instant in two services) are broken the same way on every page.
    return _moment(entry), str(entry.get("service", "")), str(entry.get("id", ""))
