"""Gunicorn settings shared by every service and the gateway; override with GUNICORN_* variables."""
import os

from shared.bodies import remember_server_request
from shared.metrics import mark_process_dead

workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = 10
keepalive = 5  # the gateway drops pooled connections idle for 2.5 s (gateway/proxy.py), before this closes them
accesslog = None  # the apps log one structured line per request themselves
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def child_exit(server, worker):
    mark_process_dead(worker.pid)

control_socket_disable = True  # gunicorn 27 would otherwise share ~/.gunicorn/gunicorn.ctl between all


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)  # what gunicorn's default hook does
    remember_server_request(req)  # so that a refused request body closes the connection
