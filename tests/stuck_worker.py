"""`waystation worker` with one more service, whose stop never ends: a worker stuck stopping
(as one waiting on a vanished broker can be), on demand. Run as `python -m tests.stuck_worker
worker` by tests/test_worker_shutdown.py."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import mode

from services import cli
from streams import faust_app

_build_app = faust_app.build_app


def build_stuck_app(*args: Any, **kwargs: Any) -> faust.App:
    app = _build_app(*args, **kwargs)

    @app.service
    class NeverStops(mode.Service):  # type: ignore[misc]
        async def on_stop(self) -> None:
            await asyncio.Event().wait()

    return app


if __name__ == "__main__":
    faust_app.build_app = build_stuck_app  # the worker command looks it up when it runs
    cli.app()
