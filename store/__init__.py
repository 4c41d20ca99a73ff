"""Persistence: tables and repositories. Nothing above this package writes SQL."""
