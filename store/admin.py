"""Schema administration by database URL, for the `waystation db` commands."""

from __future__ import annotations

from store import migrate
from store.database import make_engine


def upgrade_database(url: str, revision: str = migrate.HEAD) -> str | None:
    """Migrate the database at `url` up to `revision`; returns the revision it is now at."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, revision)
        return migrate.revision_of(engine)
    finally:
        engine.dispose()


def downgrade_database(url: str, revision: str) -> str | None:
    """Migrate the database at `url` down to `revision` ("base": no tables left)."""
    engine = make_engine(url)
    try:
        migrate.downgrade(engine, revision)
        return migrate.revision_of(engine)
    finally:
        engine.dispose()


def database_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return migrate.revision_of(engine)
    finally:
        engine.dispose()
