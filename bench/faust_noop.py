"""Faust's own floor: a Faust app whose one agent reads the event topics and does nothing with
what it reads. Run as a child process by bench/stream.py (`python -m bench.faust_noop`); it
writes the wall-clock times of the first and the count-th event to a JSON file."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import faust
from faust.types import StreamT

from streams import topics as t
from streams.eager_delivery import deliver_eagerly
from streams.faust_app import cap_fetch_wait
from streams.fetch_gate import gate_fetches

RAW = "raw"


def build(bootstrap: str, count: int, out: Path, fetch_max_wait_ms: int) -> faust.App:
    app = faust.App(
        f"bench-noop-{os.getpid()}",
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        store="memory://",
        datadir=str(out.parent / "{conf.name}"),  # beside its result, not the working directory
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    cap_fetch_wait(fetch_max_wait_ms)
    deliver_eagerly(app)  # the worker's consumer: the floor of what the worker runs on
    gate_fetches(app)
    source = app.topic(*t.EVENT_TOPICS.values(), key_serializer=RAW, value_serializer=RAW)
    seen: list[float] = []

    @app.agent(source)
    async def noop(stream: StreamT) -> None:
        done = 0
        async for _ in stream.events():
            done += 1
            if done == 1:
                seen.append(time.time())
            if done == count:
                seen.append(time.time())
                out.write_text(json.dumps({"first": seen[0], "last": seen[1]}), encoding="utf-8")

    return app


def main() -> None:
    bootstrap, count, out, wait_ms = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    app = build(bootstrap, count, out, int(wait_ms))
    faust.Worker(app, loglevel="warning").execute_from_commandline()


if __name__ == "__main__":
    main()
