"""Committing: keeping each user's working copy and their committed snapshot in step.

The rules (docs/architecture.md has the picture):

* The registry row (``SyncState``) is the truth about what is committed. Reads compare
  the local ``base_version`` with it (one indexed query) and pull when behind; the
  object store is only asked for an object the registry names.
* A write happens under the user's lease (``leases``), on a copy brought up to the
  committed version first. Afterwards ``push`` uploads a new immutable object (the WAL
  frames the writes added, a segment, when the chain of them is unbroken; a whole image
  otherwise) and commits it with one compare-and-set on (version, fence). Only then is
  the write reported durable.
* Each push says what happened to *its* writes: ``ok`` (committed), ``failed`` (kept
  in this copy, dirty, retried later) or ``conflict`` (refused because another commit
  won or the lease was taken over; kept as a conflict copy, and the working copy
  follows the committed version). Nothing sticky from earlier pushes leaks into it.
* A copy that is not based on the committed version is never committed over it and
  never overwritten silently.

Operator actions (force push and pull, verify, restore) live in ``operations.py``.
"""

import logging
import os
import signal
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from reeleditor import observability

from . import (
    changecounter,
    leases,
    mediagc,
    retention,
    snapshots,
    userdb,
    walsegments,
    workingcopy,
)
from .binding import bound_to_user, current_binding_or_none
from .filelock import LockTimeout
from .keys import conflict_prefix, segment_key, snapshot_key
from .models import SnapshotVersion, SyncState
from .stores import SnapshotMissing, StoreError, get_store
from .tracking import track_writes

logger = logging.getLogger(__name__)

Status = SyncState.Status


class SyncUnavailable(Exception):
    """The working copy cannot be brought to the committed version right now."""


class CopyBusy(SyncUnavailable):
    """Another pull or push of this copy on this machine is taking too long."""


@dataclass
class SyncResult:
    """What one push did with the writes it was asked to make durable."""

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


def _registry_row_here(user_id: int) -> SyncState | None:
    """The registry row as this context knows it: the row its lease claimed, when it
    holds the lease (only the holder can commit, and its commits update that row), else
    a fresh read."""
    held = leases.held_lease(user_id)
    return held.row if held is not None else registry_row(user_id)


def _commit(user_id: int, expected: int, lease, key: str, packed) -> bool:
    """Move the committed version from ``expected`` to ``expected + 1``.

    One ``UPDATE`` that also requires the fencing number of the lease this writer holds:
    False when another writer committed first or took the lease over meanwhile. The
    version's history row is written in the same transaction. On success the lease's
    row is brought to what the statement wrote, for the holder's next push.
    """
    now = timezone.now()
    fence = lease.fence
    clears = _lease_cleared_by(lease)
    with transaction.atomic(using="default"):
        updated = SyncState.objects.filter(user_id=user_id, version=expected, fence=fence).update(
            **clears,
            version=expected + 1,
            object_key=key,
            size_bytes=packed.size_bytes,
            checksum=packed.checksum,
            committed_at=now,
            last_attempt_at=now,
            last_error="",
            failure_count=0,
            updated_at=now,
            # What _record_ok did in a statement of its own: a conflict stays visible.
            status=Case(When(status=Status.FAILED, then=Value(Status.OK)), default=F("status")),
        )
        if updated:
            image = packed.kind == SnapshotVersion.Kind.IMAGE
            SnapshotVersion.objects.create(
                user_id=user_id,
                version=expected + 1,
                kind=packed.kind,
                object_key=key,
                checksum=packed.checksum,
                size_bytes=packed.size_bytes,
                committed_at=now,
                image_key=key if image else "",
                image_checksum=packed.checksum if image else "",
                image_size_bytes=packed.size_bytes if image else 0,
            )
            _committed_into(lease.row, expected + 1, key, packed, now)
            for name, value in clears.items():
                setattr(lease.row, name, value)
    if updated and clears:
        lease.cleared_by_commit()
    return updated == 1


def _lease_cleared_by(lease) -> dict:
    """The fields that release the lease in the commit's own statement, when the holder's
    unit of work ends with this commit (``Lease.end_with_next_commit``)."""
    if not lease.ends_with_commit:
        return {}
    lease.stop_renewing()
    return {"lease_holder": "", "lease_expires_at": None}


def _committed_into(row: SyncState, version: int, key: str, packed, now) -> None:
    row.version, row.object_key, row.committed_at = version, key, now
    row.size_bytes, row.checksum = packed.size_bytes, packed.checksum
    row.last_error, row.failure_count, row.last_attempt_at = "", 0, now
    if row.status == Status.FAILED:
        row.status = Status.OK


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


def acknowledge(user_id: int) -> None:
    """The user or an operator has seen the conflict: stop reporting it."""
    SyncState.objects.filter(user_id=user_id, status=Status.CONFLICT).update(
        status=Status.OK, last_error="", updated_at=timezone.now()
    )


# --- Local files and locks -------------------------------------------------------------


def workdir(user_id: int) -> Path:
    return workingcopy.scratch_dir(user_id)


@contextmanager
def _locked_copy(user_id: int):
    """The copy lock with the bounded wait every request uses: a clear 503, never a hang."""
    try:
        with workingcopy.copy_lock(user_id, timeout=settings.COPY_LOCK_WAIT_SECONDS):
            yield
    except LockTimeout as exc:
        raise CopyBusy(f"your data is busy being saved or loaded on this machine ({exc})") from exc


def _crash_point(name: str) -> None:
    """Test-only faults at a named point of a push (``SYNC_CRASH_POINT``).

    ``<point>`` dies here like a killed process (SIGKILL); ``stop_<point>`` freezes the
    whole process (SIGSTOP, as a paused VM or a long GC pause would) until the test sends
    SIGCONT, so its lease can expire and be taken meanwhile.
    """
    if name == settings.SYNC_CRASH_POINT:
        logger.error("crash point %s reached: killing this process", name)
        os.kill(os.getpid(), signal.SIGKILL)
    if f"stop_{name}" == settings.SYNC_CRASH_POINT:
        logger.error("crash point %s reached: stopping this process", name)
        os.kill(os.getpid(), signal.SIGSTOP)


# --- Preparing a copy before first use in a process -----------------------------------


def prepare_copy(user_id: int, path: Path) -> None:
    """Make ``path`` a copy that may be served to ``user_id`` (registered with userdb).

    * missing: create it from the registry's answer (``materialize``);
    * made for another account (a user id reused after the central database was
      reset or restored): set aside, never served, and created afresh;
    * lost committed writes (its change counter went backwards, as after a power cut
      with writes still in an unsynced WAL): marked behind, so the committed version
      is pulled before anything is written on top of it.
    """
    if path.exists():
        state = workingcopy.read_state(user_id)
        row = registry_row(user_id)
        if _belongs_elsewhere(state, row):
            _set_aside_foreign_copy(user_id, state, row)
        elif state.regressed:
            logger.error(
                "user %s: copy holds %s changes but %s were committed from it; "
                "pulling the committed version",
                user_id,
                state.live_changes,
                state.committed_changes,
            )
            workingcopy.mark_pulled(user_id, 0, state.live_changes)
        elif row is not None and not state.incarnation:
            workingcopy.set_incarnation(user_id, row.incarnation)  # made before we tracked it
    if not path.exists():
        materialize(user_id, path)


def _belongs_elsewhere(state, row) -> bool:
    if row is None:
        # No registry row, yet this copy was committed or pulled from one.
        return state.base_version > 0 or bool(state.incarnation)
    return bool(state.incarnation) and state.incarnation != row.incarnation


def _set_aside_foreign_copy(user_id: int, state, row) -> None:
    folder = userdb.user_dir(user_id)
    walsegments.close_keeper(userdb.database_path(user_id))
    aside = folder / "foreign" / f"{timezone.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    aside.mkdir(parents=True)
    for name in (userdb.DATABASE_FILENAME, workingcopy.STATE_FILENAME):
        for suffix in ("", *snapshots.SIDE_FILE_SUFFIXES):
            source = folder / f"{name}{suffix}"
            if source.exists():
                os.replace(source, aside / source.name)
    logger.error(
        "user %s: the local copy (incarnation %r, version %s) is not this account's "
        "(registry: %r); set aside in %s",
        user_id,
        state.incarnation,
        state.base_version,
        row.incarnation if row else None,
        aside,
    )


def materialize(user_id: int, path: Path) -> None:
    """Create the missing working copy at ``path``: the latest snapshot, or a new database.

    Only the registry decides which: version 0 is a new user. A store error while
    fetching a committed snapshot raises SyncUnavailable; it never becomes an empty
    database that a later push could commit over the user's data.
    """
    with _locked_copy(user_id):
        if path.exists():
            return
        row = registry_row(user_id)
        if row is None or row.version == 0:
            userdb.create_from_template(path)
            incarnation = row.incarnation if row else ""
            workingcopy.mark_pulled(user_id, 0, workingcopy.live_changes(user_id), incarnation)
            return
        image = workdir(user_id) / f".{uuid.uuid4().hex}.restored"
        try:
            downloaded = _download(user_id, row, image)
            userdb.place_new_database(image, path)
        finally:
            image.unlink(missing_ok=True)
            snapshots.remove_side_files(image)
        changes = downloaded.changes
        position = _establish(user_id, row.version, changes) if downloaded.exact else None
        workingcopy.mark_pulled(user_id, row.version, changes, row.incarnation, position)
        logger.info("restored user %s at version %s from %s", user_id, row.version, row.object_key)


# --- Bringing a copy up to date ---------------------------------------------------------


def ensure_fresh(user_id: int) -> SyncState | None:
    """Pull the committed snapshot if the working copy is behind; returns the registry row."""
    row = _registry_row_here(user_id)
    committed = row.version if row else 0
    recorded = workingcopy.recorded_state(user_id)  # no need to read the live counter yet
    if recorded.base_version >= committed and not recorded.pending:
        return row
    with _locked_copy(user_id):
        row = registry_row(user_id)
        state = _resolve_pending(user_id, workingcopy.read_state(user_id))
        if row is None or state.base_version >= row.version:
            return row
        if state.dirty:
            _keep_unpushed_writes(user_id, state, row)
        _pull(user_id, row)
    return registry_row(user_id)


def _keep_unpushed_writes(user_id, state, row) -> None:
    """Unpushed writes on a stale base: keep them (once) where an operator can see them."""
    if workingcopy.conflict_already_kept(state):
        return  # a pull that failed before already kept this very copy
    message = (
        f"Changes made here on version {state.base_version} were not saved before "
        f"version {row.version} was saved elsewhere; they were kept as a conflict copy."
    )
    _preserve_conflict(user_id, state, message)
    workingcopy.mark_conflict_kept(user_id, state)
    _record_conflict(user_id, message)


def _resolve_pending(user_id: int, state):
    """A commit was in flight when this machine last stopped: was it ours? (copy lock held)"""
    if not state.pending:
        return state
    pending = state.pending
    ours = SnapshotVersion.objects.filter(
        user_id=user_id, version=pending["version"], object_key=pending["key"]
    ).exists()
    if ours:
        logger.warning(
            "user %s: recognised version %s as our own commit", user_id, pending["version"]
        )
        workingcopy.mark_committed(
            user_id,
            pending["version"],
            pending["changes"],
            wal_position=pending.get("wal_position"),
        )
    else:
        workingcopy.clear_pending(user_id)
    return workingcopy.read_state(user_id)


def _pull(user_id: int, row: SyncState, *, from_store: bool = False) -> None:
    """Make the working copy exactly committed version ``row.version`` (copy lock held).

    ``from_store``: never start from what the local copy holds (an operator's forced
    pull: the copy itself may be what they distrust).
    """
    image = workdir(user_id) / f".{uuid.uuid4().hex}.pulled"
    try:
        if row.version == 0:
            userdb.create_from_template(image)
            downloaded = None  # an empty database: whatever it holds
        else:  # as committed, before any upgrade
            have = None if from_store else _exact_local_version(user_id)
            downloaded = _download(user_id, row, image, have=have)
        installed = snapshots.install(image, userdb.database_path(user_id))
    except snapshots.SnapshotCorrupt as exc:
        raise SyncUnavailable(f"loading version {row.version} failed: {exc}") from exc
    finally:
        image.unlink(missing_ok=True)
        snapshots.remove_side_files(image)
    changes = installed if downloaded is None else downloaded.changes
    exact = downloaded is not None and downloaded.exact
    position = _establish(user_id, row.version, installed) if exact else None
    workingcopy.mark_pulled(user_id, row.version, changes, row.incarnation, position)
    logger.info("pulled user %s version %s", user_id, row.version)


def _establish(user_id: int, version: int, changes: int | None) -> dict | None:
    """Start the WAL chain of a copy that holds exactly ``version``; its position or None."""
    if not settings.SYNC_SEGMENTS:
        return None
    try:
        position = walsegments.establish(userdb.database_path(user_id), version, changes)
    except (sqlite3.Error, OSError, walsegments.ChainBroken) as exc:
        logger.warning("user %s: no WAL chain now, the next push is an image: %s", user_id, exc)
        return None
    return position.as_dict() if position else None


@dataclass(frozen=True)
class Downloaded:
    changes: int | None  # the change counter as committed (before any schema upgrade)
    exact: bool  # page for page the committed version (no upgrade changed it)


def _exact_local_version(user_id: int) -> int | None:
    """The committed version the local copy holds page for page, if it is known to.

    A copy with a WAL position for its base version and nothing unpushed is exactly
    that version: a pull then needs only the segments after it.
    """
    state = workingcopy.read_state(user_id)
    position = walsegments.WalPosition.from_dict(state.wal_position)
    if position is None or position.version != state.base_version:
        return None
    if state.dirty or state.pending or not settings.SYNC_SEGMENTS:
        return None
    return state.base_version


def _download(user_id: int, row: SyncState, dest: Path, *, have: int | None = None) -> Downloaded:
    """Fetch, verify, assemble and upgrade committed version ``row.version`` at ``dest``.

    A starting image (the latest whole image at or before the version, or the local
    copy when it is exactly version ``have`` and nearer), then the segments after it,
    applied in order; SQLite's integrity check on the result. The change counter is the
    one as committed (before any schema upgrade, so a data migration counts as a change
    to push).
    """
    folder = workdir(user_id)
    folder.mkdir(parents=True, exist_ok=True)
    name = row.object_key
    try:
        chain = snapshot_chain(user_id, row, have=have)
        for kind, name, checksum in chain:
            if kind == LOCAL_COPY:
                snapshots.copy_image(userdb.database_path(user_id), dest)
            else:
                _fetch_into(dest, kind, name, checksum, folder)
        snapshots.check_integrity(dest)
        changes = changecounter.read_file(dest)
        upgraded = userdb.upgrade_image(dest)
    except SnapshotMissing as exc:
        logger.error("user %s: %s of version %s is missing: %s", user_id, name, row.version, exc)
        raise SyncUnavailable(
            f"the snapshot for version {row.version} is missing from the store"
        ) from None
    except StoreError as exc:
        raise SyncUnavailable(f"the snapshot store is unreachable: {exc}") from exc
    except (snapshots.SnapshotCorrupt, walsegments.SegmentCorrupt) as exc:
        logger.error("user %s snapshot %s is corrupt: %s", user_id, name, exc)
        raise SyncUnavailable(f"the snapshot for version {row.version} is corrupt: {exc}") from exc
    if changes is None:  # a snapshot from before the change counter: its count is now 0
        changes = changecounter.read_file(dest)
    return Downloaded(changes, exact=not upgraded)


LOCAL_COPY = "local copy"


def snapshot_chain(user_id: int, row: SyncState, *, have: int | None = None) -> list[tuple]:
    """The objects that make committed version ``row.version``, in the order to apply.

    ``(kind, key, checksum)``: where to start (the nearest whole image at or before the
    version, or ``LOCAL_COPY`` when the local copy is exactly version ``have`` and no
    image is nearer), then each segment after it. A version committed before history
    rows were kept is its registry object alone.
    """
    segments = []
    expected = row.version
    versions = SnapshotVersion.objects.filter(user_id=user_id, version__lte=row.version)
    for version in versions.order_by("-version").iterator(chunk_size=32):
        if version.version != expected:
            break  # a gap: the versions before it cannot be reached from here
        if version.version == have:
            return [(LOCAL_COPY, "", ""), *reversed(segments)]
        if version.image_key:
            start = (SnapshotVersion.Kind.IMAGE, version.image_key, version.image_checksum)
            return [start, *reversed(segments)]
        if version.kind != SnapshotVersion.Kind.SEGMENT:  # an image with no image_key
            raise SnapshotMissing(f"{version.object_key} is neither a segment nor an image")
        segments.append((version.kind, version.object_key, version.checksum))
        expected -= 1
    if expected == row.version:  # no history row at all: committed before they existed
        return [(SnapshotVersion.Kind.IMAGE, row.object_key, row.checksum)]
    raise SnapshotMissing(f"no image or history row for version {expected} of the chain")


def _fetch_into(dest: Path, kind: str, key: str, checksum: str, folder: Path) -> None:
    packed = folder / f".{uuid.uuid4().hex}.download"
    try:
        get_store().get_file(key, packed)
        if kind == SnapshotVersion.Kind.IMAGE:
            snapshots.unpack(packed, checksum, dest, check=False)
        else:
            walsegments.apply(dest, packed, checksum)
    finally:
        packed.unlink(missing_ok=True)


# --- Pushing ------------------------------------------------------------------------------


def push(user_id: int) -> SyncResult:
    """Make this copy's writes durable: snapshot, upload, commit; say what happened.

    Runs under the user's lease (taken here unless this context holds it, as a writer
    does from before its write until after its push): the lease's fencing number is
    part of the commit, so a writer whose lease was taken over can never commit.
    """
    started = time.perf_counter()
    outer = _deferred_cleanup.get()
    with cleanup_later() as pending:
        result = _push(user_id)
    observability.record_push(result.status, time.perf_counter() - started)
    if outer is not None:  # the request (or push_written) runs it later
        outer.extend(pending)
    else:  # after the copy lock is released: making an image takes it again
        retention.after_commits(pending)
    return result


def _push(user_id: int) -> SyncResult:
    with leases.lease(user_id) as lease, _locked_copy(user_id):
        state = _resolve_pending(user_id, workingcopy.read_state(user_id))
        row = lease.row  # as claimed; the registry has it as this, only we can move it
        if not state.dirty:
            # Every write this copy holds is in the committed version (the change
            # counter says so exactly, whoever pushed it).
            return SyncResult(user_id, Status.OK, row.version)
        if state.base_version > row.version:
            return _refuse_ahead(user_id, state, row)
        if state.base_version != row.version:
            return _refuse_stale(user_id, state, row)
        packed = _pack(user_id, state, row)
        try:
            return _upload_and_commit(user_id, lease, row, state, packed)
        finally:
            packed.path.unlink(missing_ok=True)


def _pack(user_id: int, state, row: SyncState):
    """The frames written since the committed version (a segment) when the recorded WAL
    position proves the chain unbroken; a whole image otherwise."""
    db_path = userdb.database_path(user_id)
    position = walsegments.WalPosition.from_dict(state.wal_position)
    if settings.SYNC_SEGMENTS and position is not None and position.version == row.version:
        try:
            return walsegments.take(db_path, position, workdir(user_id))
        except (walsegments.ChainBroken, sqlite3.OperationalError) as exc:
            # OperationalError: the write lock stayed taken; an image needs no lock.
            logger.info("user %s: pushing a whole image (%s)", user_id, exc)
    return snapshots.take(db_path, workdir(user_id))


def _upload_and_commit(user_id, lease, row, state, packed) -> SyncResult:
    # Read once: a successful commit moves ``row`` (the lease's row) to the new version.
    base = row.version
    version = base + 1
    segment = packed.kind == SnapshotVersion.Kind.SEGMENT
    key = (segment_key if segment else snapshot_key)(user_id, version)
    # Where the next segment starts once this one is committed (None after an image).
    end = packed.end.at_version(version).as_dict() if packed.end else None
    _crash_point("before_upload")
    try:
        _upload_recording_pending(user_id, key, packed, version, end)
    except StoreError as exc:
        workingcopy.clear_pending(user_id)
        message = f"Could not save to the snapshot store: {exc}"
        record_failure(user_id, message)
        logger.warning("push of user %s failed: %s", user_id, exc)
        return SyncResult(user_id, Status.FAILED, base, message)
    _crash_point("after_upload")
    if not _commit(user_id, base, lease, key, packed):
        workingcopy.clear_pending(user_id)
        # Another writer committed first or took the lease over: our upload is not the
        # committed version, and this copy's writes are kept as a conflict copy.
        return _refuse_stale(user_id, state, registry_row(user_id), uploaded_key=key)
    _crash_point("after_commit")
    workingcopy.mark_committed(user_id, version, packed.changes, row.incarnation, end)
    _restart_wal_if_due(user_id, version, packed)
    _cleanup(user_id, version)
    logger.info(
        "committed user %s version %s (%s, %s bytes)",
        user_id,
        version,
        packed.kind,
        packed.size_bytes,
    )
    return SyncResult(user_id, Status.OK, version)


# Writes working.json's pending record while the request's thread uploads.
_beside_upload = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pending-record")


def _upload_recording_pending(user_id: int, key: str, packed, version: int, end) -> None:
    """Upload the object and, at the same time, record the commit about to be attempted.

    The record (``working.json``, fsynced) lets a machine that dies right after the
    compare-and-set recognise the commit as its own. Both must be done before the
    compare-and-set and neither needs the other, so the fsyncs overlap the PUT instead
    of following it. A record left by a failed upload names no committed version and
    is cleared (here, or by ``_resolve_pending`` after a crash).
    """
    recording = _beside_upload.submit(
        workingcopy.mark_pending, user_id, version, key, packed.changes, end
    )
    try:
        _upload_with_backoff(key, packed.path)
    finally:
        recording.result()


def _restart_wal_if_due(user_id: int, version: int, packed) -> None:
    """Start a WAL chain after an image push, or fold a WAL grown large into the file.

    Only the committed frames are folded (the copy holds ``packed.changes`` exactly, or
    ``establish`` does nothing), so no frame a push has not shipped is ever lost.
    """
    db_path = userdb.database_path(user_id)
    if packed.end is not None and walsegments.wal_bytes(db_path) < settings.WAL_CHECKPOINT_BYTES:
        return
    position = _establish(user_id, version, packed.changes)
    if position is not None:
        workingcopy.set_wal_position(user_id, position)


# Where a request collects the cleanups its pushes leave (run after its answer is
# sent); outside a request, cleanup runs at once.
_deferred_cleanup: ContextVar[list | None] = ContextVar("reeleditor_deferred_cleanup", default=None)


@contextmanager
def cleanup_later():
    """Collect the retention cleanups of the pushes in the block; yields their list."""
    pending = []
    token = _deferred_cleanup.set(pending)
    try:
        yield pending
    finally:
        _deferred_cleanup.reset(token)


def _cleanup(user_id: int, committed: int) -> None:
    _deferred_cleanup.get().append((user_id, committed))  # push() always collects


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
    """The copy's writes cannot be committed: keep them aside, then follow the registry."""
    if state.base_version == row.version:
        message = (
            f"Your changes were based on version {state.base_version} but another writer "
            "took over saving your data before they were saved; they were kept as a "
            "conflict copy."
        )
    else:
        message = (
            f"Your changes were based on version {state.base_version} but version "
            f"{row.version} was saved elsewhere first; they were kept as a conflict copy."
        )
    if not workingcopy.conflict_already_kept(state):  # kept when a pull failed before?
        _preserve_conflict(user_id, state, message)
    _forget_upload(uploaded_key)
    try:
        _pull(user_id, row)
    except SyncUnavailable as exc:
        workingcopy.mark_conflict_kept(user_id, workingcopy.read_state(user_id))
        message += f" Loading the saved version failed: {exc}"
    _record_conflict(user_id, message)
    return SyncResult(user_id, Status.CONFLICT, row.version, message)


def _forget_upload(key: str | None) -> None:
    """Delete an uploaded snapshot that was never committed (no registry row names it)."""
    if key:
        try:
            get_store().delete(key)
        except StoreError as exc:  # an object no registry row names: garbage, not data
            logger.warning("could not delete refused upload %s: %s", key, exc)


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


# --- Conflict copies ----------------------------------------------------------------------


def _preserve_conflict(user_id, state, reason) -> None:
    """Keep the current working copy as a conflict copy, locally and (if possible) in the store."""
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    name = f"{stamp}-base{state.base_version}-{uuid.uuid4().hex[:8]}"
    local_dir = userdb.user_dir(user_id) / "conflicts"
    local_dir.mkdir(parents=True, exist_ok=True)
    packed = snapshots.take(userdb.database_path(user_id), workdir(user_id), keep=True)
    try:
        packed.path.replace(local_dir / f"{name}.sqlite3.z")
        try:
            get_store().put_file(
                f"{conflict_prefix(user_id)}{name}.sqlite3.z", local_dir / f"{name}.sqlite3.z"
            )
        except StoreError as exc:
            logger.warning("conflict copy of user %s kept locally only: %s", user_id, exc)
    finally:
        packed.path.unlink(missing_ok=True)
    logger.warning("user %s: kept conflict copy %s (%s)", user_id, name, reason)


# --- Status -------------------------------------------------------------------------------


def request_status(user_id: int, *, stale: bool = False) -> str:
    """``X-Sync-Status`` of a request that wrote nothing: the state of the copy it read.

    ``failed`` when the copy could not be brought up to date, or holds writes whose last
    push failed (as ``status_of`` says: a read must not turn the badge from "failed" to
    "saving"); ``pending`` when it holds writes not committed yet; else ``ok``. An
    unacknowledged conflict is an account-level fact reported by ``status_of``, not by
    unrelated requests. Only a dirty copy costs the registry query.
    """
    if stale:
        return Status.FAILED
    if not _state_as_bound(user_id).dirty:
        return Status.OK
    row = registry_row(user_id)
    return Status.FAILED if row is not None and row.status == Status.FAILED else Status.PENDING


def _state_as_bound(user_id: int):
    """The copy's state, its live counter read through the user's database connection
    when this context has it bound (the request's own: no new connection per answer)."""
    binding = current_binding_or_none()
    if binding is None or binding.user_id != user_id:
        return workingcopy.read_state(user_id)
    with connections[binding.alias].cursor() as cursor:
        return workingcopy.read_state(user_id, live=changecounter.read(cursor))


def status_of(user_id: int, row: SyncState | None = None) -> dict:
    """The shape of ``GET /api/sync/status``: the account as a whole."""
    row = row if row is not None else registry_row(user_id)
    state = workingcopy.read_state(user_id)
    if row is not None and row.status == Status.CONFLICT:
        status = Status.CONFLICT
    elif state.dirty:
        failed = row is not None and row.status == Status.FAILED
        status = Status.FAILED if failed else Status.PENDING
    else:
        status = Status.OK
    return {
        "status": status,
        "version": row.version if row else 0,
        "dirty": state.dirty,
        "last_error": row.last_error if row and status != Status.OK else "",
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
    """Push every user database ``tracker`` saw written (and ``also``), each under its own lease.

    Retention cleanup waits until the media these writes dropped are recorded as dropped
    (then it can remove them), and past the answer when the caller defers it.
    """
    outer = _deferred_cleanup.get()
    with cleanup_later() as pending:
        results = _push_each(tracker, also)
    if outer is not None:
        outer.extend(pending)
    else:
        retention.after_commits(pending)
    return results


def _push_each(tracker, also) -> dict[int, SyncResult]:
    results = {}
    for user_id in sorted({*tracker.user_ids, *also}):
        try:
            with leases.lease(user_id) as held, bound_to_user(user_id):  # usually already held
                held.end_with_next_commit()  # this push ends the unit of work
                results[user_id] = push(user_id)
        except (leases.LeaseTimeout, leases.LeaseUnavailable, CopyBusy) as exc:
            record_failure(user_id, f"Could not save yet: {exc}")
            results[user_id] = SyncResult(user_id, Status.FAILED, 0, str(exc))
        except Exception as exc:  # one user's failure is theirs alone; the write stays dirty
            logger.exception("push of user %s failed", user_id)
            record_failure(user_id, f"Saving failed: {exc}")
            results[user_id] = SyncResult(user_id, Status.FAILED, 0, str(exc))
    for user_id, names in tracker.dropped_media.items():
        result = results.get(user_id)
        if result is not None and result.ok:  # the deletion is in this committed version
            mediagc.record_dropped(user_id, names, result.version)
    return results


@contextmanager
def writing(user_id: int):
    """A unit of work that writes to ``user_id``'s database, durably.

    Takes the lease, brings the copy up to date, binds the database, tracks writes and
    pushes a snapshot of every user written to when the block ends; a copy still
    holding writes from an earlier attempt whose push failed is pushed too. The yielded
    ``WriteOutcome`` holds the results after the block.
    """
    outcome = WriteOutcome()
    with leases.lease(user_id), bound_to_user(user_id):
        ensure_fresh(user_id)
        with track_writes() as tracker:
            yield outcome
        outcome.results = push_written(tracker, also=[user_id])


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
