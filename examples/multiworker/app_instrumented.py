"""``app.py`` instrumented in code: ``otel_llm.instrument()`` at import, before the first call.

    gunicorn --workers 4 --bind 127.0.0.1:8080 app_instrumented:wsgi
    uvicorn --workers 4 --port 8080 app_instrumented:asgi

No post-fork hook is needed. gunicorn imports the app in each worker after the fork (unless ``--preload``), and
uvicorn's workers are fresh interpreters, so each worker sets up its own SDK providers from the ``OTEL_*``
variables. With ``--preload`` the providers are made once in the arbiter: the SDK restarts its export threads and
draws a new ``service.instance.id`` in each forked worker. Make no LLM call in the arbiter before it forks: the
SDK copies what it has counted so far into every worker.
"""

from __future__ import annotations

import otel_llm

otel_llm.instrument()

from app import asgi, wsgi  # noqa: E402

__all__ = ["asgi", "wsgi"]
