"""Edges: HTTP API, status page, CLI."""
