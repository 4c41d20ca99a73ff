"""Engines, connection settings and the one dialect-specific statement the repositories need.

SQLite is set up so that an acknowledged write survives power loss (WAL with synchronous=FULL)
and so that several threads can each use their own Session on one engine. Transactions begin
with `BEGIN IMMEDIATE`: a unit of work reads and then writes (the event archive looks up ids,
then inserts), and taking the write lock up front means two writers queue on the busy timeout
instead of one failing when it tries to upgrade its read lock. Read-only units of work (see
`READONLY_OPTION`) begin a plain deferred transaction: a consistent snapshot that never waits
for writers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Executable, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeEngine

from store.migrate import upgrade

SQLITE_BUSY_TIMEOUT_MS = 30_000
PRIVATE_FILE_MODE = 0o600
# Connections kept open per engine: the API's worker threads each read with their own (WAL
# readers do not block each other); SQLAlchemy's default of 5 made requests queue for one.
SQLITE_POOL_SIZE = 40
SQLITE_POOL_OVERFLOW = 10
READONLY_OPTION = "waystation_readonly"
"""Execution option: set on an engine view to make its transactions read-only snapshots."""


def held_in_memory(url: str) -> bool:
    """An SQLite database in memory: no other process (nor connection) can open it."""
    parsed = make_url(url)
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database
    )


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their directory, WAL, full sync and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    database = parsed.database or ""
    in_memory = held_in_memory(url)
    if in_memory:
        # One connection shared by every Session: in-memory databases are per connection.
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        if not database.startswith("file:"):
            create_private_file(Path(database).expanduser())
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_POOL_OVERFLOW,
        )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        readonly = connection.get_execution_options().get(READONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def create_private_file(path: Path) -> None:
    """Create the database file readable only by its owner (like the keys and secret files:
    it holds key hashes and events), before SQLite creates it with the umask's permissions.
    SQLite gives its -wal and -shm files the same permissions. An existing file is left as
    it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


def create_schema(engine: Engine) -> None:
    """Bring the schema up to date: every migration not yet applied (see store.migrate)."""
    upgrade(engine)


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
) -> int:
    """Insert `rows` into `table`, replacing the non-key columns of rows whose `key` exists.

    Rows repeating a key within `rows` collapse to the last one (PostgreSQL refuses to update
    one row twice in a statement). Returns the number of distinct keys written.
    """
    unique = list({tuple(row[k] for k in key): row for row in rows}.values())
    if not unique:
        return 0
    stmt = dialect_insert(session, table)
    updates = {
        column.name: stmt.excluded[column.name]
        for column in table.columns
        if column.name not in key
    }
    if updates:
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=updates)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    session.execute(stmt, unique)
    return len(unique)


def executemany_direct(
    session: Session,
    stmt: Executable,
    names: Sequence[str],
    types: Mapping[str, TypeEngine[Any]],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Run `stmt` once per row through the driver's own executemany. `rows` hold the values of
    the bind parameters `names`, in that order; a value whose parameter is in `types` is
    converted by that type's bind processor, the rest go to the driver as they are.

    Compiled once for the session's dialect, and none of SQLAlchemy's per-row work: for tens
    of thousands of small rows that work costs several times what the database's does, and
    all of it holds the interpreter the runtime's other threads are waiting for. Rows that
    need no conversion, for parameters already in the SQL's order, go as they are."""
    dialect = session.get_bind().dialect
    compiled = stmt.compile(dialect=dialect)
    order = compiled.positiontup  # a positional paramstyle (SQLite's): names in SQL order
    params: Iterable[Sequence[Any]] | list[dict[str, Any]]
    if not types and order == list(names):
        params = rows  # nothing to convert or reorder: the rows go as they are
    else:
        processors = [
            _remembering(types[name].dialect_impl(dialect).bind_processor(dialect))
            if name in types
            else None
            for name in names
        ]
        converted = (
            [
                value if process is None else process(value)
                for value, process in zip(row, processors, strict=True)
            ]
            for row in rows
        )
        if order is None:
            params = [dict(zip(names, row, strict=True)) for row in converted]
        else:
            at = [list(names).index(name) for name in order]
            params = [tuple(row[i] for i in at) for row in converted]
    params = params if isinstance(params, list) else list(params)
    if params:
        session.connection().exec_driver_sql(compiled.string, params)


def _remembering(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """A bind processor that converts each distinct value once: the rows of one write tend
    to share values (one time stamps a whole snapshot update)."""
    if process is None:
        return None
    seen: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            converted = seen[value] = process(value)
            return converted
        except TypeError:  # not hashable
            return process(value)

    return remembered


def dialect_insert(session: Session, table: Table) -> sqlite.Insert | postgresql.Insert:
    """The INSERT construct of the session's dialect, which has `on_conflict_do_*`."""
    bind = session.get_bind()
    name = bind.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"no upsert for the {name} dialect: use SQLite or PostgreSQL")
