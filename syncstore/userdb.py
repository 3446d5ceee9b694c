"""Per-user SQLite databases: files, runtime database aliases and schema migrations.

Each user's ``projects`` data lives in ``<data dir>/users/<user id>/projects.sqlite3``.
The file is registered with Django as the alias ``userdb_<user id>`` the first time this
process needs it. New files are copies of a pre-migrated template (about 1 ms instead
of 12-50 ms for a migrate); existing files get any missing migrations when opened.

Nothing here decides *which* user a query is for: that is the binding
(``syncstore.binding``), read by the router.
"""

import hashlib
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from .filelock import file_lock

ALIAS_PREFIX = "userdb_"
DATABASE_FILENAME = "projects.sqlite3"


@dataclass
class _OpenDatabase:
    alias: str
    in_use: int = 0
    last_used: float = field(default_factory=time.monotonic)
    # Set once the file exists, is registered and migrated (or opening failed).
    ready: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None


# Guards _open and every replacement of connections.settings. Django iterates
# connections.settings on every request (ATOMIC_REQUESTS, closing connections), so the
# dict is replaced whole, never mutated: mutating it while other threads iterated it
# raised "dictionary changed size during iteration" under load.
_lock = threading.Lock()
_open: dict[int, _OpenDatabase] = {}


def is_user_alias(alias: str) -> bool:
    return alias.startswith(ALIAS_PREFIX)


def alias_for(user_id: int) -> str:
    return f"{ALIAS_PREFIX}{int(user_id)}"


def user_id_for(alias: str) -> int | None:
    """The user whose database ``alias`` is, or None (the template, other databases)."""
    suffix = alias.removeprefix(ALIAS_PREFIX)
    return int(suffix) if alias != suffix and suffix.isdigit() else None


def users_dir() -> Path:
    return Path(settings.REELEDITOR_DATA_DIR) / "users"


def user_dir(user_id: int) -> Path:
    return users_dir() / str(int(user_id))


def database_path(user_id: int) -> Path:
    return user_dir(user_id) / DATABASE_FILENAME


def acquire(user_id: int) -> str:
    """Make the user's database usable in this process; return its alias.

    The first caller creates the file (migrated) or migrates an existing one while
    later callers wait for it, so nobody queries a half-migrated database. Every
    ``acquire`` must be paired with a ``release``.
    """
    user_id = int(user_id)
    with _lock:
        entry = _open.get(user_id)
        opener = entry is None
        if opener:
            entry = _open[user_id] = _OpenDatabase(alias_for(user_id))
        entry.in_use += 1
        entry.last_used = time.monotonic()
    if opener:
        _open_file(user_id, entry)
    else:
        entry.ready.wait()
        if entry.failure is not None:
            release(entry.alias, close_connection=False)
            raise RuntimeError(f"could not open the database of user {user_id}") from entry.failure
    return entry.alias


def _open_file(user_id: int, entry: "_OpenDatabase") -> None:
    path = database_path(user_id)
    try:
        if not path.exists():
            # The sync layer decides between a fresh database and the user's latest
            # snapshot (a new machine); imported here because it builds on this module.
            from .sync import materialize

            materialize(user_id, path)
        with _lock:
            _register_alias_locked(entry.alias, path)
        _ensure_migrated(entry.alias, user_dir(user_id))
    except BaseException as exc:
        entry.failure = exc
        with _lock:
            _open.pop(user_id, None)
            _drop_aliases_locked({entry.alias})
        _close_in_this_thread(entry.alias)
        raise
    finally:
        entry.ready.set()
    with _lock:
        _evict_idle_locked()


def release(alias: str, *, close_connection: bool = True) -> None:
    """Undo one ``acquire``; by default close this thread's connection to the database."""
    if close_connection:
        _close_in_this_thread(alias)
    with _lock:
        for entry in _open.values():
            if entry.alias == alias:
                entry.in_use = max(0, entry.in_use - 1)
                entry.last_used = time.monotonic()
                break


def open_aliases() -> list[str]:
    with _lock:
        return [entry.alias for entry in _open.values()]


def forget_all() -> None:
    """Close and unregister every user alias (tests switch data folders with this)."""
    with _lock:
        aliases = [entry.alias for entry in _open.values()]
        _open.clear()
        for alias in aliases:
            _close_in_this_thread(alias)
        _drop_aliases_locked({a for a in connections.settings if is_user_alias(a)})


def _close_in_this_thread(alias: str) -> None:
    """Close this thread's connection to ``alias`` and drop its wrapper.

    Dropping the wrapper matters: Django caches one per alias per thread, holding the
    settings it was made with, and long-lived threads would otherwise collect one for
    every user they ever served.
    """
    for conn in connections.all(initialized_only=True):
        if conn.alias == alias:
            conn.close()
            del connections[alias]


def _register_alias_locked(alias: str, path: Path) -> None:
    cfg = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": dict(settings.SQLITE_OPTIONS),
        # Connections close at the end of each request or task: per-request threads
        # would otherwise leave dozens of open file handles until garbage collection.
        "CONN_MAX_AGE": 0,
        "TEST": {"NAME": str(path)},
    }
    # configure_settings fills in every key Django expects on an alias
    # (ATOMIC_REQUESTS, AUTOCOMMIT, TIME_ZONE, ...); a partial dict breaks requests.
    filled = connections.configure_settings(
        {"default": connections.settings["default"], alias: cfg}
    )
    connections.settings = {**connections.settings, alias: filled[alias]}


def _evict_idle_locked() -> None:
    excess = len(_open) - settings.USER_DATABASE_MAX_OPEN
    if excess <= 0:
        return
    idle = sorted(
        (entry.last_used, user_id) for user_id, entry in _open.items() if entry.in_use == 0
    )
    _drop_aliases_locked({_open.pop(user_id).alias for _, user_id in idle[:excess]})


def _drop_aliases_locked(aliases: set[str]) -> None:
    if aliases:
        connections.settings = {
            name: cfg for name, cfg in connections.settings.items() if name not in aliases
        }


# --- Schema ------------------------------------------------------------------------


@cache
def _user_schema():
    """The migration graph's leaves and full node set for the user apps.

    Built once per process (reading migration files is the expensive part); checking a
    database against it is then a single query on its django_migrations table.
    """
    loader = MigrationLoader(None, ignore_no_migrations=True)
    leaves = sorted(
        node for app in settings.USER_DATABASE_APPS for node in loader.graph.leaf_nodes(app)
    )
    required = set()
    for leaf in leaves:
        required.update(
            n for n in loader.graph.forwards_plan(leaf) if n[0] in settings.USER_DATABASE_APPS
        )
    return tuple(leaves), frozenset(required)


def schema_fingerprint() -> str:
    leaves, _ = _user_schema()
    return hashlib.sha256(repr(leaves).encode()).hexdigest()[:16]


def _ensure_migrated(alias: str, lock_dir: Path) -> None:
    leaves, required = _user_schema()
    conn = connections[alias]
    if required <= set(MigrationRecorder(conn).applied_migrations()):
        return
    # Two processes opening an old file at once must not both migrate it.
    with file_lock(lock_dir / ".migrate.lock"):
        executor = MigrationExecutor(conn)
        plan = executor.migration_plan(list(leaves))
        if plan:
            executor.migrate(list(leaves), plan=plan)


def _template_path() -> Path:
    return users_dir() / "_template" / f"{schema_fingerprint()}.sqlite3"


def _build_template(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{uuid.uuid4().hex}.building")
    alias = f"{ALIAS_PREFIX}template_{uuid.uuid4().hex[:8]}"
    with _lock:
        _register_alias_locked(alias, tmp)
    try:
        _ensure_migrated(alias, path.parent)
        with connections[alias].cursor() as cursor:
            # Fold the WAL into the main file so a plain file copy is complete. The
            # file stays in WAL mode, so copies need no journal-mode switch (a write).
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _close_in_this_thread(alias)
        os.replace(tmp, path)
    finally:
        _close_in_this_thread(alias)
        with _lock:
            _drop_aliases_locked({alias})
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def create_from_template(path: Path) -> None:
    """Create a new, migrated, empty user database at ``path`` (never overwrites)."""
    template = _template_path()
    if not template.exists():
        with file_lock(template.parent / ".build.lock"):
            if not template.exists():
                _build_template(template)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{uuid.uuid4().hex}.new")
    shutil.copyfile(template, tmp)
    try:
        # link() fails if the name exists: when two first requests race, exactly one
        # file wins and nobody overwrites a database that is already in use.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
