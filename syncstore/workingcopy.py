"""What this machine knows about its copy of a user's database, kept next to the file.

``users/<id>/working.json`` records:

* ``base_version``: the committed version the local file was pulled or pushed at;
* ``committed_changes``: the file's change counter (``changecounter``) at that moment.
  The copy holds unpushed writes ("dirty") exactly when its live counter differs; None
  means unknown, which counts as dirty (pushing is safe, the version check refuses a
  stale copy; dropping is not);
* ``incarnation``: which account's data this is (the registry row's incarnation);
* ``pending``: the version, object key and count of a commit in flight, written before
  the registry's compare-and-set, so a machine that crashed right after committing
  recognises the commit as its own instead of calling it a conflict;
* ``clean_at``: when the copy was last committed or pulled (``dirty_since``);
* ``conflict_kept``: the (base, count) a conflict copy was already kept for, so a copy
  that cannot be brought up to date is kept once, not once per request;
* ``wal_position``: where in the WAL the frames after ``base_version`` start
  (``walsegments``), so the next push can ship only them; None pushes a full image.

It is written atomically and synced to disk, so a restart keeps it.
"""

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.utils import timezone

from . import changecounter, userdb
from .durablefiles import write_bytes_atomically
from .filelock import file_lock

STATE_FILENAME = "working.json"


@dataclass(frozen=True)
class CopyState:
    base_version: int = 0
    committed_changes: int | None = 0
    incarnation: str = ""
    pending: dict | None = None
    conflict_kept: list | None = None
    clean_at: str | None = None  # when the copy was last committed or pulled
    wal_position: dict | None = None  # walsegments.WalPosition.as_dict()
    updated_at: str | None = None
    # Not stored: read from the database file when the state is read.
    live_changes: int | None = field(default=None, compare=False)

    @property
    def dirty(self) -> bool:
        """The local file holds writes that no committed snapshot has."""
        if self.live_changes is None and self.committed_changes == 0:
            return False  # no file yet, or an empty one
        return self.committed_changes is None or self.live_changes != self.committed_changes

    @property
    def dirty_since(self) -> str | None:
        """When the copy was last known clean (its last commit or pull), if dirty now."""
        return (self.clean_at or self.updated_at) if self.dirty else None

    @property
    def regressed(self) -> bool:
        """The file holds fewer changes than were committed from it: it lost some."""
        return (
            self.committed_changes is not None
            and self.live_changes is not None
            and self.live_changes < self.committed_changes
        )


_STORED_FIELDS = (
    "base_version",
    "committed_changes",
    "incarnation",
    "pending",
    "conflict_kept",
    "clean_at",
    "wal_position",
)


def scratch_dir(user_id: int) -> Path:
    """Where snapshots, segments and downloads are made (never served)."""
    return userdb.user_dir(user_id) / "tmp"


def state_path(user_id: int) -> Path:
    return userdb.user_dir(user_id) / STATE_FILENAME


def _state_lock(user_id: int):
    return file_lock(userdb.user_dir(user_id) / ".state.lock")


def copy_lock(user_id: int, *, timeout: float | None = None):
    """Excludes pulls, pushes and restores of one user's copy on this machine.

    ``timeout`` bounds the wait (``filelock.LockTimeout``), so a request never hangs
    behind a slow pull; None waits as long as it takes (background work).
    """
    return file_lock(userdb.user_dir(user_id) / ".copy.lock", timeout=timeout)


def live_changes(user_id: int) -> int | None:
    path = userdb.database_path(user_id)
    return changecounter.read_file(path) if path.exists() else None


def _read_stored(user_id: int) -> CopyState | None:
    try:
        data = json.loads(state_path(user_id).read_text())
    except FileNotFoundError:
        return None
    if "committed_changes" not in data:  # written before the change counter existed
        data["committed_changes"] = None if data.get("dirty") else 0
    return CopyState(**{k: data[k] for k in (*_STORED_FIELDS, "updated_at") if k in data})


def recorded_state(user_id: int) -> CopyState:
    """What ``working.json`` records (base version, pending commit...), without reading
    the database's live counter: ``dirty`` is not known from it (use ``read_state``)."""
    return _read_stored(user_id) or CopyState()


def read_state(user_id: int, *, live: int | None = None) -> CopyState:
    """The stored record with the file's live change counter (read here, or ``live`` as
    the caller read it through a connection it already has open)."""
    stored = _read_stored(user_id)
    live = live_changes(user_id) if live is None else live
    if stored is None:
        # A database with no record of where it came from (made before sync existed,
        # or the record was lost) is treated as holding unpushed writes.
        stored = CopyState(committed_changes=None if live is not None else 0)
    return replace(stored, live_changes=live)


def write_state(user_id: int, state: CopyState, *, clean: bool = False) -> CopyState:
    """Store ``state`` stamped with the time (and as clean now, with ``clean``)."""
    path = state_path(user_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = timezone.now().isoformat()
    state = replace(state, updated_at=now, clean_at=now if clean else state.clean_at)
    data = {k: getattr(state, k) for k in (*_STORED_FIELDS, "updated_at")}
    write_bytes_atomically(path, json.dumps(data).encode())
    return state


def _stored_for_update(user_id: int) -> CopyState:
    """What an update starts from: the stored record. The live counter is not stored, so
    it is not read (a new SQLite connection), except where there is no record yet and it
    decides whether the file counts as holding unpushed writes."""
    return _read_stored(user_id) or read_state(user_id)


def _update(user_id: int, **changes) -> None:
    with _state_lock(user_id):
        write_state(user_id, replace(_stored_for_update(user_id), **changes))


def mark_dirty(user_id: int) -> None:
    """Count the copy as holding unpushed writes whatever its counter says (force push,
    an installed conflict copy); its next push is a full image."""
    _update(user_id, committed_changes=None, wal_position=None)


def mark_pending(
    user_id: int, version: int, key: str, changes: int | None, wal_position=None
) -> None:
    """A commit of ``key`` as ``version`` is about to be attempted (and, for a segment,
    where the WAL position will be once it is committed)."""
    pending = {"version": version, "key": key, "changes": changes}
    if wal_position is not None:
        pending["wal_position"] = wal_position
    _update(user_id, pending=pending)


def set_wal_position(user_id: int, wal_position: dict | None) -> None:
    _update(user_id, wal_position=wal_position)


def clear_pending(user_id: int) -> None:
    _update(user_id, pending=None)


def _mark_in_step(user_id: int, version: int, changes, incarnation: str, wal_position):
    with _state_lock(user_id):
        state = _stored_for_update(user_id)
        write_state(
            user_id,
            replace(
                state,
                base_version=version,
                committed_changes=changes,
                incarnation=incarnation or state.incarnation,
                pending=None,
                conflict_kept=None,
                wal_position=wal_position,
            ),
            clean=True,
        )


def mark_committed(
    user_id: int,
    version: int,
    changes: int | None,
    incarnation: str = "",
    wal_position: dict | None = None,
) -> None:
    """The snapshot holding ``changes`` changes is committed as ``version``.

    The copy stays dirty if its counter has moved on since the snapshot: a write that
    landed meanwhile is never marked clean. ``wal_position``: where the frames the
    commit did not hold start (None: unknown, the next push is a full image).
    """
    _mark_in_step(user_id, version, changes, incarnation, wal_position)


def mark_pulled(
    user_id: int,
    version: int,
    changes: int | None,
    incarnation: str = "",
    wal_position: dict | None = None,
) -> None:
    """The local file now holds exactly committed ``version`` (with ``changes``)."""
    _mark_in_step(user_id, version, changes, incarnation, wal_position)


def mark_conflict_kept(user_id: int, state: CopyState) -> None:
    _update(user_id, conflict_kept=[state.base_version, state.live_changes])


def conflict_already_kept(state: CopyState) -> bool:
    return state.conflict_kept == [state.base_version, state.live_changes]


def set_incarnation(user_id: int, incarnation: str) -> None:
    _update(user_id, incarnation=incarnation)


def dirty_user_ids() -> list[int]:
    """Users whose copy on this machine holds unpushed writes (for the periodic retry)."""
    root = userdb.users_dir()
    if not root.exists():
        return []
    ids = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
    return sorted(uid for uid in ids if read_state(uid).dirty)
