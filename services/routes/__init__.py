"""HTTP endpoints, one module per area, each exposing `router`."""
