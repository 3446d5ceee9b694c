"""A change counter inside each user database, kept by SQLite triggers.

Every row inserted, updated or deleted in a user table adds one to
``syncstore_changes.n``, in the same transaction as the change. So the counter is
exactly as durable and as consistent as the data: a snapshot image carries the count of
the changes it holds, a rolled-back write counts nothing, and a write committed by any
thread or process counts, whatever context it ran in.

That makes "does the working copy hold writes no snapshot has?" a comparison of two
numbers: the live counter and the one recorded when the copy was last committed or
pulled (``workingcopy``). A push clears the dirty state only for the count its snapshot
saw, so a write that lands while a snapshot is taken can never be marked clean, and a
copy whose counter went *backwards* (a power cut took committed transactions with it)
is noticed before anything is written on top of it.
"""

import sqlite3
from pathlib import Path

from django.db import OperationalError

TABLE = "syncstore_changes"
# Written by the sync layer to start a new WAL (``walsegments.establish``): not user data.
WAL_MARKER_TABLE = "syncstore_wal_marker"
_TRIGGER_PREFIX = "syncstore_count_"
_OPERATIONS = ("INSERT", "UPDATE", "DELETE")
# Tables that are not user data: migrations bookkeeping and the counter itself.
_NOT_COUNTED = ("django_migrations", TABLE, WAL_MARKER_TABLE)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def install(cursor) -> None:
    """Create the counter and a trigger per table and operation where missing.

    Idempotent and cheap when everything is there (one query on ``sqlite_master``), so
    it runs whenever a database is opened or migrated: a migration that rebuilds a
    table drops that table's triggers, and new tables need theirs.
    """
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} "
        "(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)"
    )
    cursor.execute(f"INSERT OR IGNORE INTO {TABLE} (id, n) VALUES (1, 0)")
    create_wal_marker(cursor)
    for table, operation in missing_triggers(cursor):
        cursor.execute(
            f"CREATE TRIGGER IF NOT EXISTS {_quote(_trigger_name(table, operation))} "
            f"AFTER {operation} ON {_quote(table)} "
            f"BEGIN UPDATE {TABLE} SET n = n + 1 WHERE id = 1; END"
        )


def create_wal_marker(cursor) -> None:
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {WAL_MARKER_TABLE} "
        "(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)"
    )


def _trigger_name(table: str, operation: str) -> str:
    return f"{_TRIGGER_PREFIX}{table}_{operation.lower()}"


def missing_triggers(cursor) -> list[tuple[str, str]]:
    cursor.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger')")
    rows = cursor.fetchall()
    tables = [
        name
        for kind, name in rows
        if kind == "table" and not name.startswith("sqlite_") and name not in _NOT_COUNTED
    ]
    triggers = {name for kind, name in rows if kind == "trigger"}
    return [
        (table, operation)
        for table in tables
        for operation in _OPERATIONS
        if _trigger_name(table, operation) not in triggers
    ]


def read(cursor) -> int | None:
    """The counter, or None when the database has none (made before it existed)."""
    try:
        cursor.execute(f"SELECT n FROM {TABLE} WHERE id = 1")
    except (sqlite3.OperationalError, OperationalError):
        return None
    row = cursor.fetchone()
    return int(row[0]) if row else None


def read_file(path: Path) -> int | None:
    """The counter of the existing database file at ``path`` (its committed state).

    ``mode=rw``: never creates a file where there is none.
    """
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        return read(conn.cursor())
    finally:
        conn.close()
