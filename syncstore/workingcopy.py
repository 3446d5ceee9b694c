"""What this machine knows about its copy of a user's database, kept next to the file.

``users/<id>/working.json`` records the committed version the local file was pulled
or pushed at (``base_version``) and whether it holds writes no snapshot has yet
(``dirty``). It is written atomically and synced to disk, so a restart keeps it: a
dirty copy is pushed later, never overwritten by a pull.

Writes bump ``generation`` *before* they reach the database (see tracking.py). A push
remembers the generation its snapshot saw and clears ``dirty`` only if nothing was
written since, so a write that lands while a snapshot is taken is never forgotten.
"""

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from django.utils import timezone

from . import userdb
from .filelock import file_lock

STATE_FILENAME = "working.json"


@dataclass(frozen=True)
class CopyState:
    base_version: int = 0
    dirty: bool = False
    generation: int = 0
    dirty_since: str | None = None


def state_path(user_id: int) -> Path:
    return userdb.user_dir(user_id) / STATE_FILENAME


def _state_lock(user_id: int):
    return file_lock(userdb.user_dir(user_id) / ".state.lock")


def copy_lock(user_id: int):
    """Excludes pulls, pushes and restores of one user's copy on this machine."""
    return file_lock(userdb.user_dir(user_id) / ".copy.lock")


def read_state(user_id: int) -> CopyState:
    try:
        data = json.loads(state_path(user_id).read_text())
    except FileNotFoundError:
        # A database with no record of where it came from (made before sync existed,
        # or the record was lost) is treated as holding unpushed writes: pushing it is
        # safe (the version check refuses it if it is stale), dropping it is not.
        if userdb.database_path(user_id).exists():
            return CopyState(dirty=True, generation=1)
        return CopyState()
    return CopyState(**{k: data[k] for k in CopyState.__dataclass_fields__ if k in data})


def write_state(user_id: int, state: CopyState) -> None:
    path = state_path(user_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATE_FILENAME}.tmp")
    with open(tmp, "w") as handle:
        json.dump(asdict(state), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mark_dirty(user_id: int) -> int:
    """Record that a write is about to reach the database; returns the new generation."""
    with _state_lock(user_id):
        state = read_state(user_id)
        state = replace(
            state,
            dirty=True,
            generation=state.generation + 1,
            dirty_since=state.dirty_since or timezone.now().isoformat(),
        )
        write_state(user_id, state)
        return state.generation


def mark_committed(user_id: int, version: int, generation: int) -> CopyState:
    """The snapshot taken at ``generation`` is committed as ``version``."""
    with _state_lock(user_id):
        state = read_state(user_id)
        clean = state.generation == generation
        state = replace(
            state,
            base_version=version,
            dirty=not clean,
            dirty_since=None if clean else state.dirty_since,
        )
        write_state(user_id, state)
        return state


def mark_pulled(user_id: int, version: int) -> None:
    """The local file now holds exactly committed ``version``."""
    with _state_lock(user_id):
        state = read_state(user_id)
        write_state(user_id, replace(state, base_version=version, dirty=False, dirty_since=None))


def dirty_user_ids() -> list[int]:
    """Users whose copy on this machine holds unpushed writes (for the periodic retry)."""
    root = userdb.users_dir()
    if not root.exists():
        return []
    ids = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
    return sorted(uid for uid in ids if read_state(uid).dirty)
