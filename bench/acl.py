"""Recursive sharing end to end: how long until a grantee sees a whole shared tree.

    python -m bench acl   (or python -m bench.acl [--sections 995] [--datafiles 5] [--runs 3])

Starts the whole system (as `make run` does, in a temporary var dir, on free ports, with its own
MONGO_DB_PREFIX and EVENT_EXCHANGE), registers an owner and a grantee, then per run:

  * imports one odML document: a root section with `--sections` subsections (10 branches, the
    rest spread under them) and uploads `--datafiles` small files into the last subsection, so
    the root has `sections + datafiles` descendants (1,000 by default);
  * sends `POST /metadata/sections/<root>/acl/?recursive=true` sharing it with the grantee, and
    waits (reading the last subsection and the datafiles every 50 ms) until the grantee lists every
    subsection and datafile.

Prints the time of the POST and the time until everything was visible (target: under 5 s), per
run and the median; then how long a friendship takes to open and close a friendly section to the
friend (target: under 1 s); then one final JSON line. Stops everything and removes what it made.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import odml
import requests
from odml.tools import ODMLWriter

TARGET_SECONDS = 5.0


def tree_document(sections: int, name: str) -> str:
    """An odML document: `name` with `sections` descendants (10 branches and their children)."""
    doc = odml.Document(author="bench")
    root = odml.Section(name=name, type="recording", parent=doc)
    branches = [odml.Section(name=f"branch{b}", type="group", parent=root) for b in range(min(10, sections))]
    for number in range(sections - len(branches)):
        odml.Section(name=f"leaf{number}", type="trial", parent=branches[number % len(branches)])
    return ODMLWriter("XML").to_string(doc)


def build_tree(owner: requests.Session, gateway: str, *, sections: int, datafiles: int) -> dict:
    """Import the tree and upload the datafiles; returns the root's id and the ids below it."""
    name = f"tree{uuid.uuid4().hex[:8]}"
    response = owner.post(f"{gateway}/metadata/import/",
                          files={"file": (f"{name}.odml", tree_document(sections, name).encode(), "application/xml")})
    if response.status_code != 201:
        raise RuntimeError(f"import: HTTP {response.status_code}: {response.text[:300]}")
    root = response.json()["selected"][0]["fields"]["id"]
    leaf = owner.get(f"{gateway}/metadata/sections/", params={"section_id": root, "recursive": "true",
                                                             "max_results": 1, "offset": sections - 1}).json()
    leaf_id = leaf["selected"][0]["fields"]["id"]
    files = []
    for number in range(datafiles):
        uploaded = owner.post(f"{gateway}/datafiles/", files={"raw_file": (f"note{number}.txt", b"shared notes\n")},
                              data={"section_id": leaf_id, "convert": "0"})
        if uploaded.status_code != 201:
            raise RuntimeError(f"upload: HTTP {uploaded.status_code}: {uploaded.text[:300]}")
        files.append(uploaded.json()["selected"][0]["fields"]["id"])
    listed = owner.get(f"{gateway}/metadata/sections/", params={"section_id": root, "recursive": "true",
                                                               "max_results": 10000}).json()
    section_ids = [item["fields"]["id"] for item in listed["selected"]]
    last = max(section_ids, key=lambda typed_id: int(str(typed_id).rpartition("_")[2]))
    return {"root": root, "sections": sections, "datafiles": files, "ids": [root, *section_ids, *files],
            "last_section": last}


def wait_until_acl_knows(mongo_url: str, db_prefix: str, tree: dict, timeout: float = 120.0) -> float:
    """Seconds until the acl service has heard (from the created events) of every resource of the
    tree, so that the share is measured by itself and not the creation events' lag."""
    import pymongo

    records = pymongo.MongoClient(mongo_url)[f"{db_prefix}acl"]["records"]
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        ids = tree["ids"]
        known = sum(records.count_documents({"_id": {"$in": ids[i:i + 100]}}) for i in range(0, len(ids), 100))
        if known == len(ids):
            break
        time.sleep(0.1)
    return round(time.perf_counter() - started, 3)


def visible(grantee: requests.Session, gateway: str, tree: dict) -> tuple[int, int]:
    """(subsections, datafiles of the tree) the grantee can list now."""
    listed = grantee.get(f"{gateway}/metadata/sections/", params={"section_id": tree["root"], "recursive": "true",
                                                                  "max_results": 1})
    sections = listed.json().get("object_total", 0) if listed.status_code == 200 else 0
    files = grantee.get(f"{gateway}/datafiles/", params={"max_results": 1000}).json()
    ids = {item["fields"]["id"] for item in files.get("selected", [])}
    return sections, len(ids & set(tree["datafiles"]))


def share_and_wait(owner: requests.Session, grantee: requests.Session, gateway: str, tree: dict, *,
                   level: int = 1, timeout: float = 30.0) -> dict:
    """Share the tree recursively; seconds until the POST answered and until all of it was visible."""
    wanted = (tree["sections"], len(tree["datafiles"]))
    started = time.perf_counter()
    response = owner.post(f"{gateway}/metadata/sections/{tree['root']}/acl/", params={"recursive": "true"},
                          json={"shared_with": {grantee.username: level}})
    answered = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"share: HTTP {response.status_code}: {response.text[:300]}")
    # While waiting, look only at the resources changed last (single reads); a full listing each
    # time would load the database the change is being written to. The full listing decides.
    probes = [f"{gateway}/metadata/sections/{tree['last_section']}/",
              *(f"{gateway}/datafiles/{d}/" for d in tree["datafiles"])]
    seen = (0, 0)
    while time.perf_counter() - started < timeout:
        if all(grantee.get(url).status_code == 200 for url in probes):
            seen = visible(grantee, gateway, tree)
            if seen == wanted:
                break
        time.sleep(0.05)
    return {"post_s": round(answered, 3), "visible_s": round(time.perf_counter() - started, 3),
            "seen": list(seen), "wanted": list(wanted)}


def friendship_latency(owner: requests.Session, friend: requests.Session, gateway: str, *,
                       timeout: float = 30.0) -> dict:
    """Seconds from adding / removing a friend until the friend can / cannot read a friendly section."""
    made = owner.post(f"{gateway}/metadata/sections/", json={"name": f"friendly{uuid.uuid4().hex[:6]}"})
    section = made.json()["selected"][0]["fields"]["id"]
    owner.post(f"{gateway}/metadata/sections/{section}/acl/", json={"safety_level": 2})
    url = f"{gateway}/metadata/sections/{section}/"
    figures = {}
    for label, change, status in (
        ("added_s", lambda: owner.post(f"{gateway}/account/friends/", json={"username": friend.username}), 200),
        ("removed_s", lambda: owner.delete(f"{gateway}/account/friends/{friend.username}/"), 403),
    ):
        started = time.perf_counter()
        change()
        while friend.get(url).status_code != status and time.perf_counter() - started < timeout:
            time.sleep(0.02)
        figures[label] = round(time.perf_counter() - started, 3)
    return figures


def login(gateway: str) -> requests.Session:
    from bench.neo import register_and_login

    session = register_and_login(gateway)
    session.username = session.get(f"{gateway}/account/me/").json()["logged_in_as"]
    return session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", type=int, default=995)
    parser.add_argument("--datafiles", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args, _ignored = parser.parse_known_args(argv)

    import pymongo

    from bench.neo import verdict
    from stack.procs import free_port
    from stack.system import System

    tag = uuid.uuid4().hex[:10]
    exchange, db_prefix = f"gnode.bench.{tag}", f"gnode_bench_{tag}_"
    results: dict = {"bench": "acl", "descendants": args.sections + args.datafiles, "runs": []}
    system = None
    with tempfile.TemporaryDirectory(prefix="bench-acl-") as tmp:
        try:
            system = System(var_dir=Path(tmp), gateway_port=free_port(), random_ports=True,
                            mongo_url=os.environ.get("MONGO_URL") or None, mongo_port=free_port(),
                            extra_env={"EVENT_EXCHANGE": exchange, "MONGO_DB_PREFIX": db_prefix,
                                       "LOG_LEVEL": "WARNING"})
            system.start(say=lambda text: None)
            gateway = system.gateway_url
            for run in range(args.runs):
                owner, grantee = login(gateway), login(gateway)
                tree = build_tree(owner, gateway, sections=args.sections, datafiles=args.datafiles)
                learned = wait_until_acl_knows(system.mongo_url, db_prefix, tree)
                figures = share_and_wait(owner, grantee, gateway, tree)
                figures["tree_learned_s"] = learned
                results["runs"].append(figures)
                ok = figures["seen"] == figures["wanted"] and figures["visible_s"] < TARGET_SECONDS
                print(f"run {run + 1}: the acl service knew the new tree {learned:.1f} s after it was made; "
                      f"POST answered in {figures['post_s']:.3f} s; all "
                      f"{results['descendants']} descendants visible to the grantee after "
                      f"{figures['visible_s']:.3f} s  {verdict(ok)} (target < {TARGET_SECONDS:.0f} s)", flush=True)
            owner, friend = login(gateway), login(gateway)
            friendship = friendship_latency(owner, friend, gateway)
            results["friendship"] = friendship
            print(f"a friend can read a friendly section {friendship['added_s']:.3f} s after being added, and no "
                  f"longer {friendship['removed_s']:.3f} s after being removed  "
                  f"{verdict(max(friendship.values()) < 1.0)} (target < 1 s)", flush=True)
            median = statistics.median(r["visible_s"] for r in results["runs"])
            results["median_visible_s"] = median
            print(f"median time until visible: {median:.3f} s  {verdict(median < TARGET_SECONDS)}")
        finally:
            if system is not None:
                system.stop()
                try:
                    system.delete_broker_topology(exchange)
                except Exception:
                    pass
                if os.environ.get("MONGO_URL"):  # else the stand-in went away with its temporary directory
                    client = pymongo.MongoClient(os.environ["MONGO_URL"])
                    for name in client.list_database_names():
                        if name.startswith(db_prefix):
                            client.drop_database(name)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
