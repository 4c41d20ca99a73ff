"""Schema migrations (Alembic) for both backends, run on every open of the store.

A database made by an earlier version through `metadata.create_all` has the tables but no
`alembic_version`: it is stamped at the baseline revision (the schema those versions made) and
upgraded from there, so its data is carried over rather than recreated.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"
HEAD = "head"
LEGACY_TABLES = frozenset({"stations", "events"})
"""Tables every earlier version created: their presence without a version means "baseline"."""
ADVISORY_LOCK_KEY = 0x5741_5953  # PostgreSQL: two processes opening one database migrate in turn


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = HEAD) -> None:
    """Bring the schema to `revision` (default: the newest), adopting a legacy database."""
    with engine.begin() as connection:
        if revision == HEAD and current_revision(connection) == head_revision():
            return  # the common case, without loading Alembic's machinery
        _lock(connection)
        config = _config(connection)
        if current_revision(connection) is None:
            tables = set(inspect(connection).get_table_names())
            if tables >= LEGACY_TABLES:
                command.stamp(config, BASELINE)
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` ("base" removes every table)."""
    with engine.begin() as connection:
        _lock(connection)
        command.downgrade(_config(connection), revision)


def revision_of(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return current_revision(connection)


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
