"""Edges: HTTP API, dashboard, ingest, simulator, CLI."""
