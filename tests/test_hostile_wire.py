"""Bodies on the wire, against the real server (uvicorn on 127.0.0.1) with a raw socket: a
chunked body is read only up to the limit and answered 413 while the client is still sending
(the terminating chunk is never sent, so a server that waited for the whole body would never
answer); a declared length over the limit is answered before any of the body is sent."""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from schemas.auth import Role
from streams.clock import ManualClock
from tests.conftest import (
    T0,
    LiveServer,
    issue,
    served_tiny_city,
    settings_for,
)

BODY_MAX_BYTES = 16_384
IMPORT_BODY_MAX_BYTES = 65_536
CHUNK_BYTES = 4096
# Far more than any limit plus what the server's socket buffers could hold: a server that
# read on would not answer before the client stopped.
MOST_SENT_BYTES = 64 * 1024 * 1024
ANSWER_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = settings_for(
        Path(tmp_path_factory.mktemp("wire")),
        body_max_bytes=BODY_MAX_BYTES,
        import_body_max_bytes=IMPORT_BODY_MAX_BYTES,
    )
    with served_tiny_city(settings, ManualClock(T0)) as server:
        yield server


def connect(live: LiveServer) -> socket.socket:
    parts = urlsplit(live.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=ANSWER_TIMEOUT_S)


def head(method: str, path: str, key: str, extra: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def read_answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """Status and JSON body of one answer (Content-Length framed, as the API answers)."""
    data = b""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while b"\r\n\r\n" not in data or len(data) < _framed_length(data):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no complete answer: {data[:200]!r}")
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    headers, _, body = data.partition(b"\r\n\r\n")
    status = int(headers.split(b" ", 2)[1])
    return status, json.loads(body)


def _framed_length(data: bytes) -> int:
    headers, _, _ = data.partition(b"\r\n\r\n")
    for line in headers.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(headers) + 4 + int(value)
    return len(data) + 1


def send_chunks_until_answered(sock: socket.socket) -> int:
    """Send chunk after chunk (never the last one) until the server answers; returns the
    body bytes sent by then."""
    chunk = b"[" + b" " * (CHUNK_BYTES - 1)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    sock.setblocking(False)
    try:
        while sent < MOST_SENT_BYTES:
            readable, writable, _ = select.select([sock], [sock], [], ANSWER_TIMEOUT_S)
            if readable:
                return sent
            if writable:
                try:
                    sock.sendall(framed)
                except BlockingIOError:
                    continue
                sent += len(chunk)
    finally:
        sock.setblocking(True)
    raise AssertionError(f"sent {sent} bytes without an answer")


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/v1/events", BODY_MAX_BYTES),
        ("POST", "/v1/stations", IMPORT_BODY_MAX_BYTES),
        ("PUT", "/v1/boundaries", IMPORT_BODY_MAX_BYTES),
        ("PUT", "/v1/demand", IMPORT_BODY_MAX_BYTES),
    ],
)
def test_a_chunked_body_over_the_limit_is_refused_while_it_is_still_coming(
    live: LiveServer, method: str, path: str, limit: int
) -> None:
    key = issue(live.system, Role.admin)
    with connect(live) as sock:
        sock.sendall(head(method, path, key, "Transfer-Encoding: chunked\r\n"))
        sent = send_chunks_until_answered(sock)
        status, problem = read_answer(sock)
    assert status == 413
    assert problem["title"] == "Body too large"
    assert str(limit) in str(problem["detail"])
    assert sent < MOST_SENT_BYTES


@pytest.mark.parametrize("path", ["/v1/events", "/v1/stations"])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    live: LiveServer, path: str
) -> None:
    key = issue(live.system, Role.admin)
    with connect(live) as sock:
        sock.sendall(head("POST", path, key, f"Content-Length: {10**12}\r\n"))
        status, problem = read_answer(sock)
    assert status == 413
    assert problem["errors"]


def test_a_chunked_body_within_the_limit_is_read_whole(live: LiveServer) -> None:
    key = issue(live.system, Role.operator, stations=["T-0001"])
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "check_in",
        "schema_version": 1,
        "station_id": "T-0001",
        "occurred_at": T0.isoformat(),
        "payload": {"status": "open"},
    }
    body = json.dumps([event]).encode()
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    framed = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
    with connect(live) as sock:
        sock.sendall(head("POST", "/v1/events", key, "Transfer-Encoding: chunked\r\n") + framed)
        status, answer = read_answer(sock)
    assert status == 200
    assert answer["accepted"] == 1
    with live.system.store.transaction() as tx:
        assert tx.events.get(event["event_id"]) is not None
