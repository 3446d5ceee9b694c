"""Throwaway PostgreSQL databases for the central database of fault tests.

The server is the one ``scripts/test-services.sh`` makes sure of: 127.0.0.1:5432, user
``postgres``, trust authentication for local TCP connections. ``TEST_POSTGRES_URL``
(an admin URL, for example ``postgres://postgres:secret@127.0.0.1:5432/postgres``)
points the tests at another server or gives them a password instead.

Every database is named ``<prefix>_<pid>_<random>``, so parallel runs never collide and
``drop_stale_databases()`` can remove what a killed run left behind (its pid is gone).
"""

from __future__ import annotations

import os
import re
import urllib.parse
import uuid

import psycopg
from psycopg import sql

DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PREFIX = "reeleditor_fault"
_CONNECT_TIMEOUT = 5


def admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL") or DEFAULT_ADMIN_URL


def url_for(name: str, base: str | None = None) -> str:
    """``base`` (the admin URL by default) with its database name replaced by ``name``."""
    parts = urllib.parse.urlsplit(base or admin_url())
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def database_name(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))


def _connect(url: str | None = None) -> psycopg.Connection:
    return psycopg.connect(url or admin_url(), autocommit=True, connect_timeout=_CONNECT_TIMEOUT)


def unavailable_reason() -> str | None:
    """None when the admin URL accepts a connection, otherwise why not."""
    try:
        with _connect() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return (
            f"PostgreSQL at {admin_url()} is not usable ({str(exc).strip()}); "
            "run scripts/test-services.sh, or set TEST_POSTGRES_URL"
        )
    return None


def fresh_database_url(*, prefix: str = PREFIX, template: str | None = None) -> str:
    """Create a new, uniquely named database; returns its ``postgres://`` URL.

    ``template`` (a database name or URL) makes it a copy of that database, which must
    have no open connections (PostgreSQL's rule for templates).
    """
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        template_name = database_name(template) if "://" in template else template
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template_name))
    with _connect() as conn:
        conn.execute(statement)
    return url_for(name)


def drop_database(url_or_name: str) -> None:
    """Drop the database (if it exists), ending the sessions still connected to it.

    App processes killed with SIGKILL leave no sessions behind (the kernel closes their
    sockets), but a process still running when a test ends may.
    """
    name = database_name(url_or_name) if "://" in url_or_name else url_or_name
    with _connect() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def drop_stale_databases(prefix: str = PREFIX) -> list[str]:
    """Drop databases ``<prefix>_<pid>_...`` whose process is gone; returns their names."""
    pattern = re.compile(rf"{re.escape(prefix)}(?:_[a-z]+)?_(\d+)_[0-9a-f]+")
    with _connect() as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                (prefix.replace("_", r"\_") + "%",),
            )
        ]
    stale = []
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _pid_alive(int(match[1])):
            drop_database(name)
            stale.append(name)
    return stale


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
