"""A light HTTP/1.1 client on asyncio streams, for the load generators.

The load runs on the same two cores as the server it measures. A request through httpx costs
the client more CPU than a small request costs the server (in the QR burst, the phones took
0.8 s of interpreter time to the server's 0.5 s), and whatever the client spends is missing
from the server and shows up in the latencies. This client writes the request head itself and
reads back only the status, the headers and a body of known length: all the benchmarks'
servers send `Content-Length`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]  # names in lower case, in the order sent
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


class Connection:
    """One keep-alive connection to 127.0.0.1; requests on it go one after another."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Answer:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self._writer.drain()
        status_line = await self._reader.readline()
        received: list[tuple[str, str]] = []
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            received.append((name.strip().lower(), value.strip()))
        length = next((int(v) for k, v in received if k == "content-length"), None)
        if length is None:
            raise RuntimeError(f"{method} {path}: the answer has no Content-Length")
        return Answer(int(status_line.split()[1]), received, await self._reader.readexactly(length))

    def close(self) -> None:
        self._writer.close()
