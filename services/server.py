"""The HTTP server. uvicorn stops only once every open response has ended, and a dashboard's
live stream never ends on its own: so the streams are told to end first."""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from services.live import LiveHub


class Server(uvicorn.Server):
    def __init__(self, app: FastAPI, *, host: str, port: int, log_level: str = "info") -> None:
        super().__init__(uvicorn.Config(app, host=host, port=port, log_level=log_level))
        self.hub: LiveHub = app.state.live

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.hub.close()
        await super().shutdown(sockets=sockets)
