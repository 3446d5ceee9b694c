"""Operator actions on a user's data: force push and pull, verify, conflict copies.

Used by the admin and ``manage.py resync``. Each keeps the rules of ``sync``: forcing
never overwrites someone else's committed work, and nothing is dropped without a copy.
"""

import uuid
from pathlib import Path

from . import keys, leases, snapshots, sync, userdb, workingcopy
from .binding import bound_to_user
from .models import SyncState
from .stores import SnapshotMissing, StoreError, get_store

Status = sync.Status
SyncResult = sync.SyncResult


def force_push(user_id: int) -> SyncResult:
    """Commit the working copy as the next version even if no write was recorded.

    A copy that is not based on the committed version is still refused (and kept as a
    conflict copy): forcing never overwrites someone else's committed work.
    """
    with leases.lease(user_id), bound_to_user(user_id):
        workingcopy.mark_dirty(user_id)
        return sync.push(user_id)


def force_pull(user_id: int) -> SyncResult:
    """Replace the working copy with the committed version.

    Unpushed writes are kept as a conflict copy first, never dropped.
    """
    with leases.lease(user_id), bound_to_user(user_id), workingcopy.copy_lock(user_id):
        row = sync.registry_row(user_id)
        if row is None or row.version == 0:
            return SyncResult(user_id, Status.OK, 0, "nothing committed yet")
        state = workingcopy.read_state(user_id)
        if state.dirty:
            # The operator chose this; the copy is kept, but it is no conflict to report.
            message = "Unpushed changes were replaced by a forced pull; kept as a conflict copy."
            sync._preserve_conflict(user_id, state, message)
        sync._record_ok(user_id)  # whatever failed before, this copy is now the committed one
        sync._pull(user_id, row, from_store=True)
        return SyncResult(user_id, Status.OK, row.version)


def verify(user_id: int) -> SyncResult:
    """Check that the committed snapshot downloads, matches its checksum and is sound."""
    row = sync.registry_row(user_id)
    if row is None or row.version == 0:
        return SyncResult(user_id, Status.OK, 0, "nothing committed yet")
    image = sync.workdir(user_id) / f".{uuid.uuid4().hex}.verify"
    try:
        sync._download(user_id, row, image)
    except sync.SyncUnavailable as exc:
        return SyncResult(user_id, Status.FAILED, row.version, str(exc))
    finally:
        image.unlink(missing_ok=True)
        snapshots.remove_side_files(image)
    return SyncResult(user_id, Status.OK, row.version, "snapshot verified")


def conflict_copies(user_id: int) -> list[dict]:
    """Conflict copies of a user's data: in the store and on this machine."""
    copies = {}
    local_dir = userdb.user_dir(user_id) / "conflicts"
    if local_dir.exists():
        for path in sorted(local_dir.glob("*.sqlite3.z")):
            copies[path.name] = {"name": path.name, "local": True, "stored": False}
    try:
        for key in get_store().list_keys(keys.conflict_prefix(user_id)):
            name = key.rsplit("/", 1)[-1]
            copies.setdefault(name, {"name": name, "local": False, "stored": False})["stored"] = (
                True
            )
    except StoreError as exc:
        sync.logger.warning("could not list stored conflict copies of user %s: %s", user_id, exc)
    return [copies[name] for name in sorted(copies)]


def restore_conflict_copy(user_id: int, name: str) -> SyncResult:
    """Make conflict copy ``name`` the user's data again, as a new committed version."""
    if "/" in name or not name.endswith(".sqlite3.z"):
        raise ValueError(f"not a conflict copy name: {name!r}")
    with leases.lease(user_id), bound_to_user(user_id):
        sync.ensure_fresh(user_id)
        with workingcopy.copy_lock(user_id):
            folder = sync.workdir(user_id)
            folder.mkdir(parents=True, exist_ok=True)
            packed = _conflict_file(user_id, name, folder)
            image = folder / f".{uuid.uuid4().hex}.restore"
            try:
                snapshots.unpack(packed, "", image)
                userdb.upgrade_image(image)
                snapshots.install(image, userdb.database_path(user_id))
                workingcopy.mark_dirty(user_id)
            finally:
                image.unlink(missing_ok=True)
                snapshots.remove_side_files(image)
                if packed.parent == folder:
                    packed.unlink(missing_ok=True)
        sync.acknowledge(user_id)  # restoring is the operator's answer to the conflict
        return sync.push(user_id)


def _conflict_file(user_id: int, name: str, folder: Path) -> Path:
    local = userdb.user_dir(user_id) / "conflicts" / name
    if local.exists():
        return local
    target = folder / f".{uuid.uuid4().hex}.conflict"
    try:
        get_store().get_file(f"{keys.conflict_prefix(user_id)}{name}", target)
    except (StoreError, SnapshotMissing) as exc:
        raise sync.SyncUnavailable(f"conflict copy {name} cannot be fetched: {exc}") from exc
    return target


def known_user_ids() -> list[int]:
    """Users with a registry row or a working copy on this machine."""
    ids = set(SyncState.objects.values_list("user_id", flat=True))
    root = userdb.users_dir()
    if root.exists():
        ids.update(int(p.name) for p in root.iterdir() if p.name.isdigit())
    return sorted(ids)
