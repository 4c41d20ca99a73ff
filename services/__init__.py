"""Edges: HTTP API, dashboard, ingest, CLI."""
