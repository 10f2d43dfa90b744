"""The permission matrix of docs/permissions.md, end to end through the gateway (issue 6).

The world is built once per module: an owner, a friend (the owner counts them as a friend with
`POST /account/friends/`, one-way), a stranger (signed in, no relation) and an anonymous caller (no
token). For each of the 15 ACL states (safety level 1/2/3 x no share / stranger read / stranger
write / friend read / friend write) the owner creates

- a section with a property (and a private subsection, for the export), the property taking the
  section's permissions,
- a datafile in no section,
- a segment holding an analog signal with the state's ACL and a private analog signal,

and sets each ACL (section, datafile, segment, analog signal) with `POST <acl url>`. Propagation
is asynchronous, so the fixture then polls (at most 5 s) until reads and lists show the ACLs.

Every (resource type, action, ACL state, user) is one test case. Its expected answer comes from
`expected()`, written from the table of docs/permissions.md alone:

- read (get, acl GET, download / export, cascade, children): 200, else 403 signed in, 401 anonymous;
- list: 200 for everyone (anonymous included), the resource listed iff readable;
- write (update, add a child, and delete that child again): 2xx, else 403 / 401;
- owner only (delete, acl POST; a property of the owner's too: docs/permissions.md, "Properties and
  values": collaborators change the owner's properties but do not take them away): 2xx, else 403 / 401.

Friendship is one-way: the friend's own friendly resources are readable by the friend's friend
(the stranger), not by the owner who counts the friend as theirs.

Speed: the requests of one test function and resource type are made together the first time one
of its cases runs, the 15 states in parallel and, within a state, the users one after the other in
the order friend, stranger, anonymous, owner (so the owner's delete comes last); each case then
checks its own answer. Deletes run last (the tests of a module run in file order), on the shared
resources: the others are refused first, then the owner deletes. Friend, stranger and anonymous
each try to delete a property of the owner's made for them (refused even to writers); the owner
deletes the shared one.
"""
from __future__ import annotations

import io
import itertools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import requests

# ---------------------------------------------------------------------------------------------
# The contract (docs/permissions.md), as data and three functions.

LEVELS = (1, 2, 3)  # 1 public, 2 friendly, 3 private
SHARES = {  # share name -> (who, level of the share)
    "none": None,
    "stranger_read": ("stranger", 1),
    "stranger_write": ("stranger", 2),
    "friend_read": ("friend", 1),
    "friend_write": ("friend", 2),
}
USERS = ("friend", "stranger", "anonymous", "owner")  # in the order of the requests of one state


@dataclass(frozen=True)
class State:
    level: int
    share: str

    @property
    def id(self) -> str:
        return f"L{self.level}-{self.share}"

    def shared_level(self, user: str) -> int:
        share = SHARES[self.share]
        return share[1] if share and share[0] == user else 0


STATES = tuple(State(level, share) for level in LEVELS for share in SHARES)

READ, LIST, WRITE, OWNER = "read", "list", "write", "owner"


def can_read(user: str, state: State) -> bool:
    """The owner; anyone when public; a user it is shared with; a friend of the owner when friendly."""
    return (user == "owner" or state.level == 1 or state.shared_level(user) >= 1
            or (user == "friend" and state.level == 2))


def can_write(user: str, state: State) -> bool:
    """The owner, or a user it is shared with at level 2."""
    return user == "owner" or state.shared_level(user) == 2


def expected(kind: str, user: str, state: State) -> int:
    """The status the contract gives `user` for an action of kind READ/LIST/WRITE/OWNER on a
    resource in `state` (200 stands for success; a change may answer 201 or 204 as well)."""
    if kind == LIST:
        return 200  # anonymous callers may use every GET; the list leaves out what they may not read
    allowed = {READ: can_read, WRITE: can_write, OWNER: lambda u, s: u == "owner"}[kind](user, state)
    if allowed:
        return 200
    return 401 if user == "anonymous" else 403


def acl_body(state: State, names: dict[str, str]) -> dict:
    share = SHARES[state.share]
    return {"safety_level": state.level, "shared_with": {names[share[0]]: share[1]} if share else {}}


# ---------------------------------------------------------------------------------------------
# The world.

NEO = "/electrophysiology"
SIGNAL = {"t_start": {"units": "ms", "data": 0}, "sampling_rate": {"units": "Hz", "data": 1000}}
ITEM_PATHS = {
    "section": "/metadata/sections/{}/",
    "property": "/metadata/properties/{}/",
    "datafile": "/datafiles/{}/",
    "segment": NEO + "/segment/{}/",
    "analogsignal": NEO + "/analogsignal/{}/",
}
ACL_PATHS = {  # the documented acl urls; the roles that have an ACL of their own
    "section": "/metadata/sections/{}/acl/",
    "section_via_neo": NEO + "/sections/{}/acl/",
    "datafile": "/datafiles/{}/acl/",
    "datafile_via_neo": NEO + "/datafiles/{}/acl/",
    "segment": NEO + "/segment/{}/acl/",
    "analogsignal": NEO + "/analogsignal/{}/acl/",
}
ACL_ROLES = ("section", "datafile", "segment", "analogsignal")
POLL_SECONDS = 5.0


@dataclass
class World:
    base: str
    sessions: dict[str, requests.Session]
    names: dict[str, str]  # user -> username
    ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (role, state id) -> typed id
    payload: dict[tuple[str, str], Any] = field(default_factory=dict)  # (role, state id) -> content
    answers: dict[tuple[str, str], dict] = field(default_factory=dict)  # (test, kind) -> answers
    propagation_seconds: float | None = None  # from the last ACL set to all shown
    unsettled: str | None = None  # what still did not show after the poll

    def id(self, role: str, state: State) -> str:
        return self.ids[role, state.id]

    def call(self, user: str, method: str, path: str, **kwargs) -> requests.Response:
        return self.sessions[user].request(method, f"{self.base}{path}", timeout=30, **kwargs)


def _fields(response: requests.Response) -> dict:
    assert response.status_code == 201, (response.request.method, response.request.url, response.text)
    return response.json()["selected"][0]["fields"]


def _neo(response: requests.Response) -> str:
    assert response.status_code == 201, (response.request.method, response.request.url, response.text)
    return response.json()["neo_id"]


def _register(base: str, user: str) -> tuple[str, requests.Session]:
    name = f"pm{user[:3]}{uuid.uuid4().hex[:10]}"
    password = "a long enough password"
    response = requests.post(f"{base}/account/register/",
                             json={"username": name, "email": f"{name}@example.org", "password": password})
    assert response.status_code == 201, response.text
    response = requests.post(f"{base}/account/authenticate/", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {response.json()['token']}"
    return name, session


def _build_state(world: World, state: State, tag: str) -> list[tuple[str, dict]]:
    """Creates the state's resources as the owner; answers the (acl path, body) to post."""
    call, ids, sid = world.call, world.ids, state.id
    section = _fields(call("owner", "POST", "/metadata/sections/", json={"name": f"pm {tag} {sid}"}))["id"]
    ids["section", sid] = section
    ids["subsection", sid] = _fields(call("owner", "POST", "/metadata/sections/", json={
        "name": "private subsection", "parent_section": section}))["id"]
    ids["property", sid] = _fields(call("owner", "POST", "/metadata/properties/", json={
        "section_id": section, "name": "colour", "dtype": "string", "values": ["red"]}))["id"]
    for user in USERS[:3]:  # the owner's properties they try to delete; the owner deletes "colour"
        ids[f"property_{user}", sid] = _fields(call("owner", "POST", "/metadata/properties/", json={
            "section_id": section, "name": f"for {user}", "dtype": "string", "values": ["x"]}))["id"]
    content = f"permissions matrix {tag} {sid}\n".encode() * 3
    world.payload["datafile", sid] = content
    ids["datafile", sid] = _fields(call("owner", "POST", "/datafiles/", files={"raw_file": ("pm.bin", content)},
                                        data={"convert": "0", "caption": f"pm {sid}"}))["id"]
    segment = _neo(call("owner", "POST", f"{NEO}/segment/", json={"name": f"pm {sid}"}))
    ids["segment", sid] = segment
    values = np.arange(16, dtype=np.float64) + 100 * state.level + len(state.share)
    world.payload["analogsignal", sid] = values
    ids["analogsignal", sid] = _neo(call("owner", "POST", f"{NEO}/analogsignal/", json={
        **SIGNAL, "name": f"pm {sid}", "signal": {"units": "mV", "data": values.tolist()}, "segment": segment}))
    ids["private_signal", sid] = _neo(call("owner", "POST", f"{NEO}/analogsignal/", json={
        **SIGNAL, "name": f"pm private {sid}", "signal": {"units": "mV", "data": [1.0, 2.0]}, "segment": segment}))
    body = acl_body(state, world.names)
    return [(ACL_PATHS[role].format(ids[role, sid]), body) for role in ACL_ROLES]


ONE_WAY = "one-way"  # the friend's own friendly resources; the friend counts the stranger as a friend


def _build_one_way(world: World, tag: str) -> None:
    """Friendship is one-way: the friend counts the stranger (not the owner) as a friend and makes
    a section, a datafile and a segment of their own friendly (2)."""
    added = world.call("friend", "POST", "/account/friends/", json={"username": world.names["stranger"]})
    assert added.status_code == 201, added.text
    ids = world.ids
    ids["section", ONE_WAY] = _fields(world.call("friend", "POST", "/metadata/sections/",
                                                 json={"name": f"pm {tag} friend's"}))["id"]
    ids["datafile", ONE_WAY] = _fields(world.call("friend", "POST", "/datafiles/", data={"convert": "0"},
                                                  files={"raw_file": ("friends.bin", b"friend's")}))["id"]
    ids["segment", ONE_WAY] = _neo(world.call("friend", "POST", f"{NEO}/segment/", json={"name": "friend's"}))
    for role in ONE_WAY_KINDS:
        answer = world.call("friend", "POST", ACL_PATHS[role].format(ids[role, ONE_WAY]), json={"safety_level": 2})
        assert answer.status_code == 200, answer.text


ONE_WAY_KINDS = ("section", "datafile", "segment")


def _one_way_expected(user: str) -> int:
    """The friend's friendly resources: the friend owns them, the stranger is the friend's friend."""
    return {"friend": 200, "stranger": 200, "owner": 403, "anonymous": 401}[user]


def _listed(world: World, kind: str, user: str) -> tuple[int, set[str] | None, str]:
    """(status, ids of the owner's `kind`s that `user` sees listed, request)."""
    owner = world.names["owner"]
    if kind == "section":
        path, params = "/metadata/sections/", {"owner": owner, "recursive": "true"}
    elif kind == "property":
        path, params = "/metadata/properties/", {"owner": owner}
    elif kind == "datafile":
        path, params = "/datafiles/", {"owner": owner}
    else:
        path, params = f"{NEO}/{kind}/", {"author": owner}
    response = world.call(user, "GET", path, params={**params, "max_results": 10000})
    request = f"GET {response.request.path_url}"
    if response.status_code != 200:
        return response.status_code, None, request
    selected = response.json()["selected"]
    ids = set(selected) if kind in ("segment", "analogsignal") else {item["fields"]["id"] for item in selected}
    return 200, ids, request


def _unsettled(world: World) -> str | None:
    """What does not show the ACLs yet, or None when every list shows exactly what the contract
    lets each user read and the last state's resources (their ACLs were set last) answer reads as
    the contract says."""
    for kind, user in itertools.product(ITEM_PATHS, USERS):
        status, ids, request = _listed(world, kind, user)
        if status != 200:
            return f"{request} as {user}: {status}"
        wrong = [s.id for s in STATES if (world.id(kind, s) in ids) != can_read(user, s)]
        if wrong:
            return f"{request} as {user}: wrong for {wrong}"
    for kind, user in itertools.product(ITEM_PATHS, USERS):
        path = ITEM_PATHS[kind].format(world.id(kind, STATES[-1]))
        status = world.call(user, "GET", path).status_code
        if status != expected(READ, user, STATES[-1]):
            return f"GET {path} as {user}: {status}"
    for kind in ONE_WAY_KINDS:
        path = ITEM_PATHS[kind].format(world.ids[kind, ONE_WAY])
        status = world.call("stranger", "GET", path).status_code
        if status != 200:
            return f"GET {path} as stranger (the friend's friend): {status}"
    return None


@pytest.fixture(scope="module")
def world(system) -> World:
    base = system.gateway_url
    tag = uuid.uuid4().hex[:6]
    names, sessions = {"anonymous": ""}, {"anonymous": requests.Session()}
    with ThreadPoolExecutor(3) as pool:
        for user, (name, session) in zip(USERS[:2] + ("owner",),
                                         pool.map(lambda u: _register(base, u), USERS[:2] + ("owner",))):
            names[user], sessions[user] = name, session
    world = World(base=base, sessions=sessions, names=names)
    added = world.call("owner", "POST", "/account/friends/", json={"username": names["friend"]})
    assert added.status_code == 201, added.text
    # Each state's ACLs are set as soon as it is built; the last state's after all others.

    def build(state: State) -> None:
        for path, body in _build_state(world, state, tag):
            answer = world.call("owner", "POST", path, json=body)
            assert answer.status_code == 200, (path, body, answer.status_code, answer.text)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(build, STATES[:-1]))
    _build_one_way(world, tag)
    build(STATES[-1])
    # Propagation is asynchronous (within a second by the contract): poll for at most 5 s.
    start = time.monotonic()
    while (unsettled := _unsettled(world)) is not None:
        if time.monotonic() - start > POLL_SECONDS:
            world.unsettled = unsettled  # the cases below report what is still wrong
            break
    else:
        world.propagation_seconds = time.monotonic() - start
    yield world
    for session in sessions.values():
        session.close()


# ---------------------------------------------------------------------------------------------
# Answers, made per (test, kind) in one go, checked per case.

@dataclass
class Answer:
    request: str
    status: int | None = None
    response: requests.Response | None = None
    error: BaseException | None = None
    after: dict[str, int] = field(default_factory=dict)  # follow-up checks: what -> status


def _answers(world: World, test: str, kind: str, make: Callable[[World, str, State, str], Answer]) -> dict:
    key = (test, kind)
    if key not in world.answers:
        def one_state(state: State) -> dict:
            out = {}
            for user in USERS:
                try:
                    out[state.id, user] = make(world, kind, state, user)
                except Exception as error:  # reported by the case itself
                    out[state.id, user] = Answer(request=f"{test} {kind} {state.id} {user}", error=error)
            return out

        with ThreadPoolExecutor(8) as pool:
            world.answers[key] = {k: v for part in pool.map(one_state, STATES) for k, v in part.items()}
    return world.answers[key]


def _answer(response: requests.Response) -> Answer:
    return Answer(request=f"{response.request.method} {response.request.path_url}", status=response.status_code,
                  response=response)


def _check(answer: Answer, want: int, user: str) -> requests.Response:
    if answer.error is not None:
        raise answer.error
    ok = answer.status in (200, 201, 204) if want == 200 else answer.status == want
    body = answer.response.text[:300] if answer.response is not None else ""
    assert ok, f"{answer.request} as {user}: expected {'2xx' if want == 200 else want}, got {answer.status}: {body}"
    return answer.response


def _cases(kinds):
    return [pytest.param(kind, state, user, id=f"{kind}-{state.id}-{user}")
            for kind in kinds for state in STATES for user in USERS]


def _item(world: World, kind: str, state: State) -> str:
    return ITEM_PATHS[kind].format(world.id(kind, state))


# ---------------------------------------------------------------------------------------------
# The cases.

def test_propagation_within_five_seconds(world):
    """All ACLs set, every list and the last state's reads showed them within the poll."""
    assert world.unsettled is None, f"after {POLL_SECONDS} s: {world.unsettled}"


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("kind", ONE_WAY_KINDS)
def test_friendship_is_one_way(world, kind, user):
    """The owner counts the friend as a friend, not the other way round: the friend's friendly
    resources are not the owner's to read (the friend's own friend, the stranger, may)."""
    path = ITEM_PATHS[kind].format(world.ids[kind, ONE_WAY])
    _check(_answer(world.call(user, "GET", path)), _one_way_expected(user), user)


@pytest.mark.parametrize("kind,state,user", _cases(ITEM_PATHS))
def test_get(world, kind, state, user):
    answer = _answers(world, "get", kind, lambda w, k, s, u: _answer(w.call(u, "GET", _item(w, k, s))))
    want = expected(READ, user, state)
    response = _check(answer[state.id, user], want, user)
    if want == 200:
        body = response.json()
        got = body["neo_id"] if kind in ("segment", "analogsignal") else body["selected"][0]["fields"]["id"]
        assert got == world.id(kind, state)


@pytest.mark.parametrize("kind,state,user", _cases(ITEM_PATHS))
def test_list(world, kind, state, user):
    """One list request per type and user; the resource of each state is in it iff readable."""
    key = ("list", kind)
    if key not in world.answers:
        with ThreadPoolExecutor(4) as pool:
            world.answers[key] = dict(zip(USERS, pool.map(lambda u: _listed(world, kind, u), USERS)))
    status, ids, request = world.answers[key][user]
    assert status == expected(LIST, user, state), f"{request} as {user}: {status}"
    listed, readable = world.id(kind, state) in ids, can_read(user, state)
    assert listed == readable, f"{request} as {user}: {world.id(kind, state)} listed: {listed}, readable: {readable}"


UPDATES = {
    "section": "description",
    "property": "description",
    "datafile": "caption",
    "segment": "description",
    "analogsignal": "description",
}


@pytest.mark.parametrize("kind,state,user", _cases(ITEM_PATHS))
def test_update(world, kind, state, user):
    answer = _answers(world, "update", kind, lambda w, k, s, u: _answer(
        w.call(u, "POST", _item(w, k, s), json={UPDATES[k]: f"changed by {u}"})))
    _check(answer[state.id, user], expected(WRITE, user, state), user)


def _acl_path(world: World, kind: str, state: State) -> str:
    return ACL_PATHS[kind].format(world.id(kind.split("_via_")[0], state))


@pytest.mark.parametrize("kind,state,user", _cases(ACL_PATHS))
def test_acl_get(world, kind, state, user):
    answer = _answers(world, "acl_get", kind, lambda w, k, s, u: _answer(w.call(u, "GET", _acl_path(w, k, s))))
    want = expected(READ, user, state)
    response = _check(answer[state.id, user], want, user)
    if want == 200:
        body, acl = response.json(), acl_body(state, world.names)
        assert (body["safety_level"], body["shared_with"]) == (acl["safety_level"], acl["shared_with"]), body


@pytest.mark.parametrize("kind,state,user", _cases(ACL_ROLES))
def test_acl_post(world, kind, state, user):
    """Everyone posts the state's own ACL again, so that a wrong acceptance changes nothing."""
    answer = _answers(world, "acl_post", kind, lambda w, k, s, u: _answer(
        w.call(u, "POST", _acl_path(w, k, s), json=acl_body(s, w.names))))
    want = expected(OWNER, user, state)
    response = _check(answer[state.id, user], want, user)
    if want == 200:
        assert response.json()["safety_level"] == state.level, response.text


DOWNLOADS = {  # kind -> (path template, params)
    "datafile": ("/datafiles/{}/download/", None),
    "analogsignal": (NEO + "/analogsignal/{}/", {"format": "npy"}),
    "section": ("/metadata/sections/{}/export/", {"format": "json"}),
}


@pytest.mark.parametrize("kind,state,user", _cases(DOWNLOADS))
def test_download(world, kind, state, user):
    """The datafile's bytes, the signal's array (.npy), the section's odML export (its private
    subsection left out for everyone but the owner)."""
    answer = _answers(world, "download", kind, lambda w, k, s, u: _answer(
        w.call(u, "GET", DOWNLOADS[k][0].format(w.id(k, s)), params=DOWNLOADS[k][1])))
    want = expected(READ, user, state)
    response = _check(answer[state.id, user], want, user)
    if want != 200:
        return
    if kind == "datafile":
        assert response.content == world.payload[kind, state.id]
    elif kind == "analogsignal":
        np.testing.assert_array_equal(np.load(io.BytesIO(response.content)), world.payload[kind, state.id])
    else:
        assert "pm " in response.text and "colour" in response.text, response.text[:300]
        exported = "private subsection" in response.text
        assert exported == (user == "owner"), f"private subsection exported to {user}: {exported}"


@pytest.mark.parametrize("kind,state,user", _cases(("segment",)))
@pytest.mark.parametrize("how", ["cascade", "children"])
def test_cascade(world, how, kind, state, user):
    """The segment's analog signals, one with the state's ACL and one private: only readable ones appear."""
    params = {"cascade": "true"} if how == "cascade" else {"q": "children"}
    answer = _answers(world, how, kind, lambda w, k, s, u: _answer(w.call(u, "GET", _item(w, k, s), params=params)))
    want = expected(READ, user, state)
    response = _check(answer[state.id, user], want, user)
    if want != 200:
        return
    children = response.json()["analogsignal"]
    got = {child["neo_id"] if isinstance(child, dict) else child for child in children}
    signal, private = world.id("analogsignal", state), world.id("private_signal", state)
    want_ids = ({signal} if can_read(user, state) else set()) | ({private} if user == "owner" else set())
    assert got == want_ids, f"{how} of {world.id(kind, state)} as {user}: {sorted(got)}; the private one is {private}"
    if how == "cascade":
        (mine,) = [child for child in children if child["neo_id"] == signal]
        np.testing.assert_allclose(mine["signal"]["data"], world.payload["analogsignal", state.id])


CHILDREN = {  # parent kind -> (create path, body on the parent's id, delete path template)
    "section": ("/metadata/properties/", lambda parent, user: {
        "section_id": parent, "name": f"added by {user}", "dtype": "string", "values": ["y"]},
        "/metadata/properties/{}/"),
    "segment": (NEO + "/analogsignal/", lambda parent, user: {
        **SIGNAL, "name": f"added by {user}", "signal": {"units": "mV", "data": [5.0]}, "segment": parent},
        NEO + "/analogsignal/{}/"),
}


@pytest.mark.parametrize("kind,state,user", _cases(CHILDREN))
def test_add_child(world, kind, state, user):
    """Adding a child is a write ("may write (update, add children)"): a property into the section,
    an analog signal into the segment; whoever added it removes it again. A signed-in caller who
    may read but not write the parent gets 403; one who may not read a NEO parent named in the
    body gets 400 `invalid_parent`, as if it did not exist (docs/permissions.md, "Answers")."""
    def make(w, k, s, u):
        path, body, delete = CHILDREN[k]
        answer = _answer(w.call(u, "POST", path, json=body(w.id(k, s), u)))
        if answer.status == 201:
            created = answer.response.json()
            child = created["neo_id"] if k == "segment" else created["selected"][0]["fields"]["id"]
            answer.after["delete by its creator"] = w.call(u, "DELETE", delete.format(child)).status_code
        return answer

    answer = _answers(world, "add_child", kind, make)[state.id, user]
    want = expected(WRITE, user, state)
    if kind == "segment" and user != "anonymous" and not can_read(user, state):
        want = 400
    _check(answer, want, user)
    if want == 200:
        assert answer.status == 201 and answer.after == {"delete by its creator": 200}, answer.after


# Deletes: last, property deletes before the section deletes.

@pytest.mark.parametrize("kind,state,user", _cases(("property",)))
def test_delete_property(world, kind, state, user):
    """Deleting takes a property away from its section: its owner (here the section's) only; writers
    may change it but not delete it, and delete the properties they add themselves (test_add_child)."""
    def make(w, k, s, u):
        target = w.id("property" if u == "owner" else f"property_{u}", s)
        answer = _answer(w.call(u, "DELETE", f"/metadata/properties/{target}/"))
        answer.after["owner GET afterwards"] = w.call("owner", "GET", f"/metadata/properties/{target}/").status_code
        return answer

    answer = _answers(world, "delete", kind, make)[state.id, user]
    want = expected(OWNER, user, state)
    _check(answer, want, user)
    assert answer.after["owner GET afterwards"] == (404 if want == 200 else 200), answer.after


DELETES = {  # kind -> (params, what must be gone with it)
    "analogsignal": (None, ()),
    "segment": ({"cascade": "true"}, ("private_signal",)),
    "datafile": ({"force": "true"}, ()),
    "section": ({"force": "true"}, ("subsection",)),
}
GONE_PATHS = {"private_signal": NEO + "/analogsignal/{}/", "subsection": "/metadata/sections/{}/"}


@pytest.mark.parametrize("kind,state,user", _cases(DELETES))
def test_delete(world, kind, state, user):
    """Only the owner deletes; the others try first (with `force`/`cascade`, so that only ownership
    decides), then the owner deletes the resource (and what goes with it)."""
    def make(w, k, s, u):
        params, dependants = DELETES[k]
        answer = _answer(w.call(u, "DELETE", _item(w, k, s), params=params))
        answer.after[k] = w.call("owner", "GET", _item(w, k, s)).status_code
        for role in dependants:
            answer.after[role] = w.call("owner", "GET", GONE_PATHS[role].format(w.id(role, s))).status_code
        return answer

    answer = _answers(world, "delete", kind, make)[state.id, user]
    want = expected(OWNER, user, state)
    _check(answer, want, user)
    gone = {role: 404 for role in answer.after} if want == 200 else {kind: 200}
    assert {role: answer.after[role] for role in gone} == gone, f"owner GETs afterwards: {answer.after}"
