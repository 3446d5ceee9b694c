"""Per-user SQLite databases: files, runtime database aliases and schema migrations.

Each user's ``projects`` data lives in ``<data dir>/users/<user id>/projects.sqlite3``.
The file is registered with Django as the alias ``userdb_<user id>`` the first time this
process needs it. New files are copies of a pre-migrated template (about 1 ms instead
of 12-50 ms for a migrate); existing files get any missing migrations when opened.

Nothing here decides *which* user a query is for: that is the binding
(``syncstore.binding``), read by the router. Nothing here decides what a missing file
is replaced with either: the sync layer registers that (``set_copy_preparer``), so this
module never imports it.
"""

import hashlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from . import changecounter, walsegments
from .filelock import file_lock
from .snapshots import SIDE_FILE_SUFFIXES, remove_side_files

logger = logging.getLogger(__name__)

ALIAS_PREFIX = "userdb_"
DATABASE_FILENAME = "projects.sqlite3"
# Called with (user_id, path) before a process first uses a user's database: the sync
# layer creates a missing file (new user, or the latest snapshot on a new machine) and
# checks an existing one against what this machine recorded about it.
_prepare_copy: Callable[[int, Path], None] | None = None


def set_copy_preparer(prepare: Callable[[int, Path], None]) -> None:
    global _prepare_copy
    _prepare_copy = prepare


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
        if _prepare_copy is None:
            raise RuntimeError("the sync layer has not registered how to prepare a copy")
        _prepare_copy(user_id, path)
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
        evicted = _evict_idle_locked()
    for evicted_id in evicted:
        walsegments.close_keeper(database_path(evicted_id))


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


def forget(user_id: int) -> None:
    """Close and unregister one user's alias (their copy is about to be removed)."""
    alias = alias_for(user_id)
    with _lock:
        _open.pop(int(user_id), None)
        _close_in_this_thread(alias)
        _drop_aliases_locked({alias})
    walsegments.close_keeper(database_path(user_id))


def forget_all() -> None:
    """Close and unregister every user alias (tests switch data folders with this)."""
    with _lock:
        aliases = [entry.alias for entry in _open.values()]
        _open.clear()
        for alias in aliases:
            _close_in_this_thread(alias)
        _drop_aliases_locked({a for a in connections.settings if is_user_alias(a)})
    walsegments.close_all_keepers()


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
        "OPTIONS": dict(settings.USER_SQLITE_OPTIONS),
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


def _evict_idle_locked() -> list[int]:
    """Forget the least recently used idle aliases beyond the limit; returns their users
    (whose WAL keepers the caller closes outside the lock: closing may checkpoint)."""
    excess = len(_open) - settings.USER_DATABASE_MAX_OPEN
    if excess <= 0:
        return []
    idle = sorted(
        (entry.last_used, user_id) for user_id, entry in _open.items() if entry.in_use == 0
    )
    evicted = [user_id for _, user_id in idle[:excess]]
    _drop_aliases_locked({_open.pop(user_id).alias for user_id in evicted})
    return evicted


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


def _ensure_migrated(alias: str, lock_dir: Path) -> bool:
    """Apply missing migrations, then make sure the change counter covers every table.

    Returns whether anything had to be changed.
    """
    leaves, required = _user_schema()
    conn = connections[alias]
    with conn.cursor() as cursor:
        current = required <= set(MigrationRecorder(conn).applied_migrations())
        if current and not changecounter.missing_triggers(cursor):
            return False
    # Two processes opening an old file at once must not both migrate it.
    with file_lock(lock_dir / ".migrate.lock"):
        executor = MigrationExecutor(conn)
        plan = executor.migration_plan(list(leaves))
        if plan:
            executor.migrate(list(leaves), plan=plan)
        with conn.cursor() as cursor:
            changecounter.install(cursor)
    return True


def _migrate_standalone(path: Path, lock_dir: Path) -> bool:
    """Migrate and checkpoint a database file outside any user's alias (an image, the
    template), under a throwaway alias; the WAL is folded into the file at the end."""
    alias = f"{ALIAS_PREFIX}file_{uuid.uuid4().hex[:8]}"
    with _lock:
        _register_alias_locked(alias, path)
    try:
        changed = _ensure_migrated(alias, lock_dir)
        with connections[alias].cursor() as cursor:
            # A plain copy of the file is then complete. The file stays in WAL mode, so
            # copies need no journal-mode switch (a write).
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        _close_in_this_thread(alias)
        with _lock:
            _drop_aliases_locked({alias})
    return changed


def upgrade_image(image: Path) -> bool:
    """Bring a standalone database file (a downloaded snapshot) to the current schema.

    Run before the image is installed, so no request ever sees a database from an older
    schema (a snapshot committed by a machine that had not been upgraded yet). The file
    is left checkpointed, with no -wal or -shm beside it. Returns whether the schema
    had to change (then the image is no longer page for page the committed one).
    """
    try:
        return _migrate_standalone(image, image.parent)
    finally:
        remove_side_files(image)


def _template_path() -> Path:
    return users_dir() / "_template" / f"{schema_fingerprint()}.sqlite3"


def _build_template(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{uuid.uuid4().hex}.building")
    try:
        _migrate_standalone(tmp, path.parent)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        remove_side_files(tmp)


def set_aside_stale_side_files(path: Path) -> list[Path]:
    """Move -wal/-shm/-journal files that lie where no database ``path`` is.

    They cannot be the database's own (it does not exist): a crash left them, and an
    operator then removed the database. They are kept in ``stale/`` for inspection,
    never replayed onto the file that will be placed there.
    """
    moved = []
    for suffix in SIDE_FILE_SUFFIXES:
        side = Path(f"{path}{suffix}")
        if side.exists():
            stale = path.parent / "stale"
            stale.mkdir(exist_ok=True)
            target = stale / f"{side.name}.{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            os.replace(side, target)
            moved.append(target)
            logger.warning("set aside %s: no database of its own beside it", side)
    return moved


def place_new_database(image: Path, path: Path) -> None:
    """Put the database file ``image`` at ``path``, where no database is yet.

    ``link()`` fails if the name exists: when two first requests race, exactly one file
    wins and nobody overwrites a database that is already in use. Side files left by an
    earlier database are set aside first, and the placed file is checked to be the one
    we meant (its change counter) before anyone uses it.
    """
    expected = changecounter.read_file(image)
    set_aside_stale_side_files(path)
    try:
        os.link(image, path)
    except FileExistsError:
        return
    found = changecounter.read_file(path)
    if found != expected:
        raise RuntimeError(
            f"the database placed at {path} reads {found} changes instead of {expected}"
        )


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
        place_new_database(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        remove_side_files(tmp)
