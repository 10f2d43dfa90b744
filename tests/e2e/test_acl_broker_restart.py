"""No ACL change is lost when RabbitMQ restarts in the middle of a recursive share.

The system runs on a RabbitMQ node of this test's own (tests/private_rabbit.py), which is
stopped right after the share is accepted and started again a few seconds later; one more change
is made while it is down. Every change must arrive, through the outboxes, once it is back.
"""
from __future__ import annotations

import time
import uuid

import pymongo
import pytest
import requests

from bench.acl import build_tree, login, visible, wait_until_acl_knows
from stack.procs import free_port, wait_until
from stack.system import System
from tests import private_rabbit

pytestmark = pytest.mark.skipif(not private_rabbit.available(),
                                reason="needs rabbitmq-server installed to run a broker of the test's own")


@pytest.fixture(scope="module")
def restartable(tmp_path_factory, mongo_url):
    rabbit = private_rabbit.PrivateRabbit(tmp_path_factory.mktemp("rabbit")).start()
    tag = uuid.uuid4().hex[:10]
    db_prefix = f"gnode_e2e_{tag}_"
    system = System(var_dir=tmp_path_factory.mktemp("var"), gateway_port=free_port(), random_ports=True,
                    mongo_url=mongo_url, amqp_url=rabbit.url,
                    extra_env={"EVENT_EXCHANGE": f"gnode.e2e.{tag}", "MONGO_DB_PREFIX": db_prefix,
                               "PASSWORD_HASH_MEMORY_KIB": "8192", "PASSWORD_HASH_TIME_COST": "1",
                               "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4", "LOG_LEVEL": "WARNING"})
    try:
        system.start(say=lambda text: None)
        system.db_prefix = db_prefix
        yield system, rabbit
    finally:
        system.stop()
        rabbit.stop()
        client = pymongo.MongoClient(mongo_url)
        for name in client.list_database_names():
            if name.startswith(db_prefix):
                client.drop_database(name)


def test_recursive_share_survives_a_broker_restart(restartable):
    system, rabbit = restartable
    gateway = system.gateway_url
    owner, grantee, other = login(gateway), login(gateway), login(gateway)
    tree = build_tree(owner, gateway, sections=995, datafiles=5)
    wanted = (tree["sections"], len(tree["datafiles"]))
    wait_until_acl_knows(system.mongo_url, system.db_prefix, tree)

    response = owner.post(f"{gateway}/metadata/sections/{tree['root']}/acl/", params={"recursive": "true"},
                          json={"shared_with": {grantee.username: 1}})
    assert response.status_code == 200, response.text
    rabbit.stop()
    # a change made while the broker is down waits in the acl service's outbox
    response = owner.post(f"{gateway}/metadata/sections/{tree['root']}/acl/", json={"safety_level": 1})
    assert response.status_code == 200, response.text
    # reads go on without the broker
    assert owner.get(f"{gateway}/metadata/sections/{tree['root']}/").status_code == 200
    time.sleep(2)
    rabbit.start()

    seen = []
    assert wait_until(lambda: seen.append(visible(grantee, gateway, tree)) or seen[-1] == wanted,
                      timeout=90, interval=0.2), f"the grantee sees {seen[-1]} of {wanted}"
    anonymous = requests.Session()
    assert wait_until(lambda: anonymous.get(f"{gateway}/metadata/sections/{tree['root']}/").status_code == 200,
                      timeout=30, interval=0.2)
    # the subsections were not made public (that change was not recursive)
    assert visible(other, gateway, tree) == (0, 0)
