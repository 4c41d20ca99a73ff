"""Alembic migrations of the store, for SQLite and PostgreSQL + PostGIS (see store.migrate)."""
