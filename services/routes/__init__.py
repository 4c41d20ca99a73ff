"""The HTTP API's routers, one module per resource; `services.app` includes each of them."""
