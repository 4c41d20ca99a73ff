"""The API as a process of its own, as deployed, for the benchmarks that post to it over HTTP:
started with its settings in the environment, ready once `/healthz` says so, stopped with
SIGINT (as Ctrl-C would)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

STARTUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
POLL_S = 0.2


def answers_ok(answer: httpx.Response) -> bool:
    return answer.status_code == httpx.codes.OK


@contextmanager
def running_api(
    command: Sequence[str],
    env: Mapping[str, str],
    url: str,
    *,
    log_path: Path | None = None,
    healthy: Callable[[httpx.Response], bool] = answers_ok,
) -> Iterator[subprocess.Popen[bytes]]:
    """`waystation <command>` until the block ends; its output goes to `log_path` (or
    nowhere)."""
    with (log_path or Path(os.devnull)).open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *command],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_healthy(process, url, healthy)
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(
    process: subprocess.Popen[bytes], url: str, healthy: Callable[[httpx.Response], bool]
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(base_url=url, timeout=STARTUP_TIMEOUT_S) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError("the API exited during start-up")
            try:
                if healthy(client.get("/healthz")):
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the API did not become healthy")
            time.sleep(POLL_S)
