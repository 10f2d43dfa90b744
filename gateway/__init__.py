"""The gateway: one public entry point for every service (DESIGN.md sections 2 and 3).

- `routes`: the routing table, pure functions (`resolve(path) -> Route | None`).
- `auth`: public token extraction and verification, and the per-process revocation cache.
- `proxy`: header filtering and the streaming reverse proxy (constant memory both ways).
- `health`: `/healthz` (every configured service's `/readyz`, concurrently) and `/readyz`.
- `app`: `create_app(config=None)`, served by
  `gunicorn -c shared/gunicorn_conf.py 'gateway.app:create_app()'`.
"""
