"""The API as ``relieflink serve`` runs it, plus a count of the SQL round trips each worker
makes (statements, commits and the pool's pings), written to ``$BENCH_STATEMENTS_DIR/<pid>``
twice a second so the load script can report round trips per event. Nothing else differs from
the real app.

    uvicorn --factory benchmarks.dispatch._server:create_app
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event

from relieflink.app import create_app as _create_app
from relieflink.db import get_engine


def create_app() -> FastAPI:
    app = _create_app()
    out = Path(os.environ["BENCH_STATEMENTS_DIR"]) / str(os.getpid())
    lock = threading.Lock()
    count = [0]

    def seen(*_: Any) -> None:
        with lock:
            count[0] += 1

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", seen)
    event.listen(engine, "commit", seen)
    ping = engine.dialect.do_ping  # the pool's liveness checks are round trips too

    def counted_ping(dbapi_connection: Any) -> bool:
        seen()
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]

    def write() -> None:
        while True:
            out.write_text(str(count[0]))
            time.sleep(0.5)

    threading.Thread(target=write, daemon=True).start()
    return app
