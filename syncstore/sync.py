"""Keeping each user's working copy and their committed snapshot in step.

The rules (docs/architecture.md has the picture):

* The registry row (``SyncState``) is the truth about what is committed. Reads compare
  the local ``base_version`` with it (one indexed query) and pull when behind; the
  object store is only asked for an object the registry names.
* A write happens under the user's lease, on a copy brought up to the committed
  version first. Afterwards ``push`` uploads a new immutable snapshot object and
  commits it with a compare-and-set on the version. Only then is the write reported
  durable.
* A push that cannot reach the store keeps the write locally (dirty, persistently)
  and reports ``failed``; it is retried later. A copy that is not based on the
  committed version is never committed over it and never overwritten silently: it is
  kept as a conflict copy, and the working copy follows the committed version.
"""

import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from . import leases, snapshots, userdb, workingcopy
from .binding import bound_to_user
from .models import SyncState
from .stores import SnapshotMissing, StoreError, get_store
from .tracking import track_writes

logger = logging.getLogger(__name__)

Status = SyncState.Status


class SyncUnavailable(Exception):
    """The working copy cannot be brought to the committed version right now."""


@dataclass
class SyncResult:
    user_id: int
    status: str
    version: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


# --- Registry -------------------------------------------------------------------------


def registry_row(user_id: int) -> SyncState | None:
    return SyncState.objects.filter(user_id=user_id).first()


def _ensure_row(user_id: int) -> SyncState:
    try:
        row, _ = SyncState.objects.get_or_create(user_id=user_id)
    except IntegrityError:  # created by a concurrent first push
        row = SyncState.objects.get(user_id=user_id)
    return row


def _commit(user_id: int, expected: int, key: str, packed) -> bool:
    """Move the committed version from ``expected`` to ``expected + 1``; False on conflict."""
    now = timezone.now()
    updated = SyncState.objects.filter(user_id=user_id, version=expected).update(
        version=expected + 1,
        object_key=key,
        size_bytes=packed.size_bytes,
        checksum=packed.checksum,
        committed_at=now,
        last_attempt_at=now,
        last_error="",
        failure_count=0,
        updated_at=now,
    )
    return updated == 1


def record_failure(user_id: int, message: str) -> None:
    now = timezone.now()
    SyncState.objects.filter(user_id=user_id).exclude(status=Status.CONFLICT).update(
        status=Status.FAILED, updated_at=now
    )
    SyncState.objects.filter(user_id=user_id).update(
        last_error=message[:2000],
        failure_count=F("failure_count") + 1,
        last_attempt_at=now,
        updated_at=now,
    )


def _record_ok(user_id: int) -> None:
    # A conflict stays visible until someone acknowledges it (retry endpoint, admin).
    SyncState.objects.filter(user_id=user_id, status=Status.FAILED).update(
        status=Status.OK, updated_at=timezone.now()
    )


def _record_conflict(user_id: int, message: str) -> None:
    SyncState.objects.filter(user_id=user_id).update(
        status=Status.CONFLICT, last_error=message[:2000], updated_at=timezone.now()
    )


# --- Keys -----------------------------------------------------------------------------


def snapshot_prefix(user_id: int) -> str:
    return f"snapshots/{int(user_id)}/"


def conflict_prefix(user_id: int) -> str:
    return f"conflicts/{int(user_id)}/"


def _snapshot_key(user_id: int, version: int) -> str:
    return f"{snapshot_prefix(user_id)}{version:010d}-{uuid.uuid4().hex}.sqlite3.z"


def _version_of_key(key: str) -> int | None:
    head = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _workdir(user_id: int) -> Path:
    return userdb.user_dir(user_id) / "tmp"


# --- Bringing a copy up to date ---------------------------------------------------------


def materialize(user_id: int, path: Path) -> None:
    """Create the missing working copy at ``path``: the latest snapshot, or a new database.

    Called when the file does not exist (a new user, or a new machine). Only the
    registry decides which: version 0 (or no row) is a new user. A store error while
    fetching a committed snapshot raises SyncUnavailable; it never becomes an empty
    database that a later push could commit over the user's data.
    """
    with workingcopy.copy_lock(user_id):
        if path.exists():
            return
        row = registry_row(user_id)
        if row is None or row.version == 0:
            userdb.create_from_template(path)
            workingcopy.mark_pulled(user_id, 0)
            return
        _download(user_id, row, path)
        workingcopy.mark_pulled(user_id, row.version)
        logger.info("restored user %s at version %s from %s", user_id, row.version, row.object_key)


def ensure_fresh(user_id: int) -> SyncState | None:
    """Pull the committed snapshot if the working copy is behind; returns the registry row."""
    row = registry_row(user_id)
    committed = row.version if row else 0
    if workingcopy.read_state(user_id).base_version >= committed:
        return row
    with workingcopy.copy_lock(user_id):
        row = registry_row(user_id)
        state = workingcopy.read_state(user_id)
        if state.base_version >= row.version:
            return row
        if state.dirty:
            # Unpushed writes on a stale base: keep them where an operator can see
            # them, say so, then follow the committed version.
            message = (
                f"Changes made here on version {state.base_version} were not saved before "
                f"version {row.version} was saved elsewhere; they were kept as a conflict copy."
            )
            _preserve_conflict(user_id, state, message)
            _record_conflict(user_id, message)
        _pull(user_id, row)
    return registry_row(user_id)


def _pull(user_id: int, row: SyncState) -> None:
    if row.version == 0:
        raise SyncUnavailable("there is no committed version to pull")
    image = _workdir(user_id) / f".{uuid.uuid4().hex}.pulled"
    try:
        _download(user_id, row, image)
        snapshots.install(image, userdb.database_path(user_id))
    finally:
        image.unlink(missing_ok=True)
    workingcopy.mark_pulled(user_id, row.version)
    logger.info("pulled user %s version %s", user_id, row.version)


def _download(user_id: int, row: SyncState, dest: Path) -> None:
    """Fetch, verify and unpack the snapshot ``row`` names to ``dest``."""
    workdir = _workdir(user_id)
    workdir.mkdir(parents=True, exist_ok=True)
    packed = workdir / f".{uuid.uuid4().hex}.download"
    try:
        get_store().get_file(row.object_key, packed)
        snapshots.unpack(packed, row.checksum, dest)
    except SnapshotMissing:
        raise SyncUnavailable(
            f"the snapshot for version {row.version} is missing from the store"
        ) from None
    except StoreError as exc:
        raise SyncUnavailable(f"the snapshot store is unreachable: {exc}") from exc
    except snapshots.SnapshotCorrupt as exc:
        logger.error("user %s snapshot %s is corrupt: %s", user_id, row.object_key, exc)
        raise SyncUnavailable(f"the snapshot for version {row.version} is corrupt: {exc}") from exc
    finally:
        packed.unlink(missing_ok=True)


# --- Pushing ------------------------------------------------------------------------------


def push(user_id: int) -> SyncResult:
    """Snapshot the working copy and commit it as the next version, if it is dirty.

    The caller must hold the user's lease (``leases.lease``); the version check fences
    anyone who bypassed it.
    """
    with workingcopy.copy_lock(user_id):
        state = workingcopy.read_state(user_id)
        row = _ensure_row(user_id)
        if not state.dirty:
            return SyncResult(user_id, _reported_status(row, state), row.version)
        if state.base_version > row.version:
            return _refuse_ahead(user_id, state, row)
        if state.base_version != row.version:
            return _refuse_stale(user_id, state, row)
        packed = snapshots.take(userdb.database_path(user_id), _workdir(user_id))
        try:
            return _upload_and_commit(user_id, state, row, packed)
        finally:
            packed.path.unlink(missing_ok=True)


def _upload_and_commit(user_id, state, row, packed) -> SyncResult:
    key = _snapshot_key(user_id, row.version + 1)
    try:
        _upload_with_backoff(key, packed.path)
    except StoreError as exc:
        message = f"Could not save to the snapshot store: {exc}"
        record_failure(user_id, message)
        logger.warning("push of user %s failed: %s", user_id, exc)
        return SyncResult(user_id, Status.FAILED, row.version, message)
    if not _commit(user_id, row.version, key, packed):
        # Someone committed this version first: our upload becomes a conflict copy.
        return _refuse_stale(user_id, state, registry_row(user_id), uploaded_key=key)
    _record_ok(user_id)
    workingcopy.mark_committed(user_id, row.version + 1, state.generation)
    _collect_garbage(user_id, row.version + 1)
    logger.info(
        "committed user %s version %s (%s bytes)", user_id, row.version + 1, packed.size_bytes
    )
    return SyncResult(user_id, _reported_status(registry_row(user_id), None), row.version + 1)


def _upload_with_backoff(key: str, path: Path) -> None:
    store = get_store()
    for delay in [*settings.SYNC_PUSH_BACKOFF, None]:
        try:
            store.put_file(key, path)
            return
        except StoreError:
            if delay is None:
                raise
            time.sleep(delay)


def _refuse_stale(user_id, state, row, uploaded_key=None) -> SyncResult:
    """The copy is not based on the committed version: keep it aside, then follow."""
    message = (
        f"Your changes were based on version {state.base_version} but version "
        f"{row.version} was saved elsewhere first; they were kept as a conflict copy."
    )
    _preserve_conflict(user_id, state, message, uploaded_key=uploaded_key)
    try:
        _pull(user_id, row)
    except SyncUnavailable as exc:
        message += f" Loading the saved version failed: {exc}"
    _record_conflict(user_id, message)
    return SyncResult(user_id, Status.CONFLICT, row.version, message)


def _refuse_ahead(user_id, state, row) -> SyncResult:
    """The copy claims a version the registry never reached (registry restored from an
    older backup?). Neither side can be trusted to win: keep the copy, push nothing,
    pull nothing, and say so until an operator decides (force push, force pull)."""
    message = (
        f"This copy is at version {state.base_version} but the registry says "
        f"{row.version}; nothing was saved. An operator must resolve it."
    )
    record_failure(user_id, message)
    logger.error("user %s: %s", user_id, message)
    return SyncResult(user_id, Status.FAILED, row.version, message)


def _collect_garbage(user_id: int, committed: int) -> None:
    oldest_kept = committed - settings.SNAPSHOT_RETENTION + 1
    store = get_store()
    try:
        for key in store.list_keys(snapshot_prefix(user_id)):
            version = _version_of_key(key)
            if version is not None and version < oldest_kept:
                store.delete(key)
    except StoreError as exc:  # old versions wait for the next commit
        logger.warning("garbage collection for user %s postponed: %s", user_id, exc)


# --- Conflict copies ----------------------------------------------------------------------


def _preserve_conflict(user_id, state, reason, uploaded_key=None) -> None:
    """Keep the current working copy as a conflict copy, locally and (if possible) in the store."""
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    name = f"{stamp}-base{state.base_version}-{uuid.uuid4().hex[:8]}"
    local_dir = userdb.user_dir(user_id) / "conflicts"
    local_dir.mkdir(parents=True, exist_ok=True)
    packed = snapshots.take(userdb.database_path(user_id), _workdir(user_id))
    try:
        packed.path.replace(local_dir / f"{name}.sqlite3.z")
        try:
            get_store().put_file(
                f"{conflict_prefix(user_id)}{name}.sqlite3.z", local_dir / f"{name}.sqlite3.z"
            )
            if uploaded_key:
                get_store().delete(uploaded_key)
        except StoreError as exc:
            logger.warning("conflict copy of user %s kept locally only: %s", user_id, exc)
    finally:
        packed.path.unlink(missing_ok=True)
    logger.warning("user %s: kept conflict copy %s (%s)", user_id, name, reason)


def conflict_copies(user_id: int) -> list[dict]:
    """Conflict copies of a user's data: in the store and on this machine."""
    copies = {}
    local_dir = userdb.user_dir(user_id) / "conflicts"
    if local_dir.exists():
        for path in sorted(local_dir.glob("*.sqlite3.z")):
            copies[path.name] = {"name": path.name, "local": True, "stored": False}
    try:
        for key in get_store().list_keys(conflict_prefix(user_id)):
            name = key.rsplit("/", 1)[-1]
            copies.setdefault(name, {"name": name, "local": False, "stored": False})["stored"] = (
                True
            )
    except StoreError as exc:
        logger.warning("could not list stored conflict copies of user %s: %s", user_id, exc)
    return [copies[name] for name in sorted(copies)]


def restore_conflict_copy(user_id: int, name: str) -> SyncResult:
    """Make conflict copy ``name`` the user's data again, as a new committed version."""
    if "/" in name or not name.endswith(".sqlite3.z"):
        raise ValueError(f"not a conflict copy name: {name!r}")
    with leases.lease(user_id), bound_to_user(user_id):
        ensure_fresh(user_id)
        with workingcopy.copy_lock(user_id):
            workdir = _workdir(user_id)
            workdir.mkdir(parents=True, exist_ok=True)
            packed = _conflict_file(user_id, name, workdir)
            image = workdir / f".{uuid.uuid4().hex}.restore"
            try:
                snapshots.unpack(packed, "", image)
                workingcopy.mark_dirty(user_id)
                snapshots.install(image, userdb.database_path(user_id))
            finally:
                image.unlink(missing_ok=True)
                if packed.parent == workdir:
                    packed.unlink(missing_ok=True)
        acknowledge(user_id)  # restoring is the operator's answer to the conflict
        return push(user_id)


def _conflict_file(user_id: int, name: str, workdir: Path) -> Path:
    local = userdb.user_dir(user_id) / "conflicts" / name
    if local.exists():
        return local
    target = workdir / f".{uuid.uuid4().hex}.conflict"
    try:
        get_store().get_file(f"{conflict_prefix(user_id)}{name}", target)
    except (StoreError, SnapshotMissing) as exc:
        raise SyncUnavailable(f"conflict copy {name} cannot be fetched: {exc}") from exc
    return target


def acknowledge(user_id: int) -> None:
    """The user or an operator has seen the conflict: stop reporting it."""
    SyncState.objects.filter(user_id=user_id, status=Status.CONFLICT).update(
        status=Status.OK, last_error="", updated_at=timezone.now()
    )


# --- Status -------------------------------------------------------------------------------


def _reported_status(row: SyncState | None, state: workingcopy.CopyState | None) -> str:
    if row is not None and row.status in (Status.FAILED, Status.CONFLICT):
        return row.status
    if state is not None and state.dirty:
        return Status.PENDING
    return Status.OK


def status_of(user_id: int, row: SyncState | None = None) -> dict:
    """The shape of ``GET /api/sync/status``."""
    row = row if row is not None else registry_row(user_id)
    state = workingcopy.read_state(user_id)
    return {
        "status": _reported_status(row, state),
        "version": row.version if row else 0,
        "dirty": state.dirty,
        "last_error": row.last_error if row else "",
        "last_synced_at": row.committed_at.isoformat() if row and row.committed_at else None,
    }


# --- Units of work ------------------------------------------------------------------------


@dataclass
class WriteOutcome:
    """Filled in when a ``writing()`` block ends: one result per user written to."""

    results: dict[int, SyncResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())


def push_written(tracker, *, also=()) -> dict[int, SyncResult]:
    """Push every user database ``tracker`` saw written (and ``also``), each under its own lease."""
    results = {}
    for user_id in sorted({*tracker.user_ids, *also}):
        try:
            with leases.lease(user_id):  # re-entrant: usually already held
                results[user_id] = push(user_id)
        except (leases.LeaseTimeout, leases.LeaseUnavailable) as exc:
            record_failure(user_id, f"Could not take the write lease: {exc}")
            results[user_id] = SyncResult(user_id, Status.FAILED, 0, str(exc))
        except Exception as exc:  # one user's failure is theirs alone; the write stays dirty
            logger.exception("push of user %s failed", user_id)
            record_failure(user_id, f"Saving failed: {exc}")
            results[user_id] = SyncResult(user_id, Status.FAILED, 0, str(exc))
    return results


@contextmanager
def writing(user_id: int):
    """A unit of work that writes to ``user_id``'s database, durably.

    Takes the lease, brings the copy up to date, binds the database, tracks writes and
    pushes a snapshot of every user written to when the block ends. The yielded
    ``WriteOutcome`` holds the results after the block.
    """
    outcome = WriteOutcome()
    with leases.lease(user_id), bound_to_user(user_id):
        ensure_fresh(user_id)
        with track_writes() as tracker:
            yield outcome
        # A unit of work ends durable: if the copy still holds writes from an earlier
        # attempt whose push failed (a retried export finds its row already there and
        # writes nothing), they are pushed now too.
        pending = [user_id] if workingcopy.read_state(user_id).dirty else []
        outcome.results = push_written(tracker, also=pending)


def retry_dirty_copies() -> list[SyncResult]:
    """Push every dirty working copy on this machine (the periodic retry)."""
    results = []
    for user_id in workingcopy.dirty_user_ids():
        try:
            with leases.lease(user_id, wait=1), bound_to_user(user_id):
                results.append(push(user_id))
        except (leases.LeaseTimeout, leases.LeaseUnavailable, SyncUnavailable) as exc:
            logger.info("retry of user %s postponed: %s", user_id, exc)
        except Exception as exc:  # never let one broken copy stop the others' retry
            logger.exception("retry of user %s failed", user_id)
            record_failure(user_id, f"Saving failed: {exc}")
            results.append(SyncResult(user_id, Status.FAILED, 0, str(exc)))
    return results


# --- Operations (admin actions, the resync command) ---------------------------------------


def force_push(user_id: int) -> SyncResult:
    """Commit the working copy as the next version even if no write was recorded.

    A copy that is not based on the committed version is still refused (and kept as a
    conflict copy): forcing never overwrites someone else's committed work.
    """
    with leases.lease(user_id), bound_to_user(user_id):
        workingcopy.mark_dirty(user_id)
        return push(user_id)


def force_pull(user_id: int) -> SyncResult:
    """Replace the working copy with the committed version.

    Unpushed writes are kept as a conflict copy first, never dropped.
    """
    with leases.lease(user_id), bound_to_user(user_id), workingcopy.copy_lock(user_id):
        row = registry_row(user_id)
        if row is None or row.version == 0:
            return SyncResult(user_id, Status.OK, 0, "nothing committed yet")
        state = workingcopy.read_state(user_id)
        if state.dirty:
            # The operator chose this; the copy is kept, but it is no conflict to report.
            message = "Unpushed changes were replaced by a forced pull; kept as a conflict copy."
            _preserve_conflict(user_id, state, message)
        _record_ok(user_id)  # whatever failed before, this copy is now the committed one
        _pull(user_id, row)
        return SyncResult(user_id, _reported_status(registry_row(user_id), None), row.version)


def verify(user_id: int) -> SyncResult:
    """Check that the committed snapshot downloads, matches its checksum and is sound."""
    row = registry_row(user_id)
    if row is None or row.version == 0:
        return SyncResult(user_id, Status.OK, 0, "nothing committed yet")
    image = _workdir(user_id) / f".{uuid.uuid4().hex}.verify"
    try:
        _download(user_id, row, image)
    except SyncUnavailable as exc:
        return SyncResult(user_id, Status.FAILED, row.version, str(exc))
    finally:
        image.unlink(missing_ok=True)
    return SyncResult(user_id, Status.OK, row.version, "snapshot verified")


def known_user_ids() -> list[int]:
    """Users with a registry row or a working copy on this machine."""
    ids = set(SyncState.objects.values_list("user_id", flat=True))
    root = userdb.users_dir()
    if root.exists():
        ids.update(int(p.name) for p in root.iterdir() if p.name.isdigit())
    return sorted(ids)
