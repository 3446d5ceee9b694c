"""Single writer per user, across threads, processes and machines, with a fence.

A write to a user's data takes that user's lease first, so only one request or task at a
time pulls, writes, pushes and commits for them. The lease lives in the central
database, on the user's registry row, so every instance that shares that database
shares the lease, whatever else is configured:

* **claim**: ``UPDATE ... SET lease_holder = <token>, lease_expires_at = now + ttl,
  fence = fence + 1 WHERE user = ? AND (lease_holder = '' OR lease_expires_at < now)
  RETURNING *``: the claimed row comes back with it, so the holder knows the committed
  version without asking again;
* **renew**: a daemon thread extends the expiry every ttl/3 while the token is still
  ours; if it is not (expired and taken), ``lost`` turns true;
* **release**: clear the holder where the token is still ours.

Each claim increments the user's **fencing number**, and the registry's version
compare-and-set also requires it (``sync.py``), so a writer whose lease expired and was
taken can never commit: its copy is kept as a conflict copy instead.

Inside one machine a ``flock`` on ``<data dir>/leases/<user>.lock`` is taken first: a fast
path where waiters queue in the kernel instead of polling the database, and the kernel
drops it when a holder crashes. Whoever holds it may also take over a database claim
left by a crashed holder of the same machine (same host and data folder) at once,
instead of waiting for it to expire.

The leases this request or task holds live in a ``ContextVar`` (never
``threading.local``), so a nested ``lease()`` for a user already held in this context is
re-entrant, while another request, task or bare thread waits its turn. A context copied
*inside* a ``lease()`` block (``asyncio`` tasks, ``copy_context()``) sees the lease as
held too: start concurrent work that writes for the same user outside the block.

``lease()`` blocks while it waits: call it from sync code (views and tasks run in
threads), not on the event loop.
"""

import fcntl
import hashlib
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

from django.conf import settings
from django.db import DatabaseError, connections, router
from django.utils import timezone

from reeleditor import observability

from .models import SyncState

logger = logging.getLogger(__name__)

# Waiting polls with a short, growing, jittered sleep: quick hand-over when the holder
# finishes soon, and waiters that do not all knock at the same instant.
_FIRST_POLL_DELAY = 0.005
_MAX_POLL_DELAY = 0.05
# Indirection so tests can see that a waiter really tried and found the lease taken.
_sleep = time.sleep


class LeaseTimeout(Exception):
    """Could not get the user's lease within the wait time (another writer holds it)."""


class LeaseUnavailable(Exception):
    """The central database could not be asked for the lease: answer 503."""


def _poll(attempt: Callable[[], bool], wait: float) -> bool:
    """Call ``attempt`` until it returns true (True) or ``wait`` seconds pass (False).

    Always attempts at least once, so ``wait=0`` means "only if free right now".
    """
    deadline = time.monotonic() + wait
    delay = _FIRST_POLL_DELAY
    while not attempt():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        _sleep(min(delay * random.uniform(0.5, 1.0), remaining))
        delay = min(delay * 2, _MAX_POLL_DELAY)
    return True


# --- The machine-local fast path: a file lock -----------------------------------------


def _lease_file(user_id: int) -> Path:
    # Read at call time: tests (and commands) point the data folder elsewhere.
    return Path(settings.REELEDITOR_DATA_DIR) / "leases" / f"{user_id}.lock"


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class FileLock:
    """An exclusive ``flock`` on the user's lock file, held through an open descriptor.

    flock locks belong to the open file description, so two threads of one process that
    each open the file exclude each other just as two processes do. Lock files are never
    deleted: unlinking a file another process has open and is about to lock would let two
    holders lock two different files.
    """

    def __init__(self, fd: int, path: Path):
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, user_id: int, *, wait: float) -> "FileLock":
        path = _lease_file(user_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC: a subprocess started while we hold the lease must not keep it alive.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            acquired = _poll(lambda: _try_flock(fd), wait)
        except BaseException:
            os.close(fd)
            raise
        if not acquired:
            os.close(fd)
            raise LeaseTimeout(f"user {user_id}'s lease is held by another writer ({wait:g} s)")
        return cls(fd, path)

    def release(self) -> None:
        # Unlock explicitly before closing: a process forked while we held the lock
        # shares the open file description, and closing only our descriptor would leave
        # the lock held by the child.
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)


# --- The lease in the central database ----------------------------------------------


def _local_prefix() -> str:
    """Names this machine's lease files: the host and the data folder they live in."""
    folder = hashlib.sha256(str(Path(settings.REELEDITOR_DATA_DIR).resolve()).encode())
    return f"{socket.gethostname()}:{folder.hexdigest()[:8]}:"


def _claim_row(user_id: int, token: str, ttl: float) -> SyncState | None:
    """Claim the lease if it is free and return the registry row so claimed, in one
    statement (``UPDATE ... RETURNING``): None when it is held or there is no row.

    Free means unheld, expired, or left by a process of this machine that crashed: the
    caller holds this machine's file lock, and a live holder here would hold it too.
    """
    alias = router.db_for_write(SyncState)
    connection = connections[alias]
    table = connection.ops.quote_name(SyncState._meta.db_table)
    columns = [field.column for field in SyncState._meta.concrete_fields]
    now = timezone.now()
    prefix = _local_prefix()
    adapt = connection.ops.adapt_datetimefield_value
    sql = (
        f"UPDATE {table} SET lease_holder = %s, lease_expires_at = %s, fence = fence + 1 "
        "WHERE user_id = %s AND (lease_holder = '' OR lease_expires_at < %s "
        "OR substr(lease_holder, 1, %s) = %s) "
        f"RETURNING {', '.join(connection.ops.quote_name(c) for c in columns)}"
    )
    params = [token, adapt(now + timedelta(seconds=ttl)), user_id, adapt(now), len(prefix), prefix]
    # raw() converts the returned values as a SELECT's would (dates on SQLite).
    rows = list(SyncState.objects.raw(sql, params, using=alias))
    return rows[0] if rows else None


def _new_token() -> str:
    # Random for safety; host, folder and pid help an operator who reads the admin, and
    # let a holder on this machine recognise a claim left by a crashed one (below).
    return f"{_local_prefix()}{os.getpid()}:{secrets.token_hex(8)}"


class Lease:
    """One holder's claim on one user's lease; release it once (later calls do nothing).

    ``fence`` is the fencing number this claim got: the commit only succeeds while the
    registry still holds it. ``lost`` turns true when a renewal finds the lease gone.

    ``row`` is the user's registry row as the claim left it. While the lease holds, only
    its holder can move the committed version (the commit requires the fence), so the
    row read by the claim is the one the holder's freshness check and push need: they
    do not ask again. A commit under the lease updates it (``sync._commit``).

    ``ends_with_commit``: the holder's unit of work ends with its next commit (set by
    ``end_with_next_commit``), so that commit's statement also clears the claim and
    ``release`` has no statement of its own left to run.
    """

    def __init__(self, user_id: int, token: str, row: SyncState, ttl: float, local: FileLock):
        self.user_id = user_id
        self.token = token
        self.row = row
        self.fence = row.fence
        self.lost = False
        self.ends_with_commit = False
        self._ttl = ttl
        self._local = local
        self._released = False
        self._cleared = False  # the claim was cleared in the registry by a commit
        self._release_guard = threading.Lock()
        self._stop = threading.Event()
        self._renewer = threading.Thread(
            target=self._renew_until_released, name=f"lease-renewal-{user_id}", daemon=True
        )

    @classmethod
    def acquire(cls, user_id: int, *, wait: float, ttl: float) -> "Lease":
        started = time.monotonic()
        with observability.LEASE_WAITERS.track_inprogress():
            local = FileLock.acquire(user_id, wait=wait)
            try:
                held = cls._claim(
                    user_id, local, wait=max(0.0, wait - (time.monotonic() - started)), ttl=ttl
                )
            except BaseException:
                local.release()
                raise
        held._renewer.start()
        observability.LEASE_WAIT_SECONDS.observe(time.monotonic() - started)
        logger.debug("acquired lease for user %s (fence %s)", user_id, held.fence)
        return held

    @classmethod
    def _claim(cls, user_id: int, local: FileLock, *, wait: float, ttl: float) -> "Lease":
        token = _new_token()
        claimed: SyncState | None = None
        try:
            ensured = False

            def attempt() -> bool:
                nonlocal ensured, claimed
                claimed = _claim_row(user_id, token, ttl)
                if claimed is not None or ensured:
                    return claimed is not None
                # Held by another writer, or no row yet (a new user): make sure of the
                # row once, then claim again. Most writes find the row there and free.
                ensured = True
                try:
                    SyncState.objects.ensure(user_id)
                except SyncState.DoesNotExist:
                    # Not "held by another writer": there is no account to hold a lease for.
                    raise LeaseUnavailable(f"user {user_id} has no account (deleted?)") from None
                return attempt()

            acquired = _poll(attempt, wait)
        except DatabaseError as exc:
            raise LeaseUnavailable(f"the central database did not answer: {exc}") from exc
        if not acquired:
            raise LeaseTimeout(f"user {user_id}'s lease is held by another writer ({wait:g} s)")
        return cls(user_id, token, claimed, ttl, local)

    @property
    def released(self) -> bool:
        return self._released

    def still_ours(self) -> bool:
        """Ask the registry whether this claim still holds (a cheap indexed read)."""
        return (
            not self.lost
            and SyncState.objects.filter(user_id=self.user_id, lease_holder=self.token).exists()
        )

    def _renew_until_released(self) -> None:
        """Extend the expiry every ttl/3 until released, or until the lease is gone."""
        last_renewed = time.monotonic()
        try:
            while not self._stop.wait(self._ttl / 3):
                try:
                    now = timezone.now()
                    ours = SyncState.objects.filter(
                        user_id=self.user_id, lease_holder=self.token
                    ).update(lease_expires_at=now + timedelta(seconds=self._ttl))
                except DatabaseError as exc:
                    if time.monotonic() - last_renewed >= self._ttl:
                        self._mark_lost(f"could not renew it for longer than its ttl ({exc})")
                        return
                    logger.warning("could not renew lease for user %s: %s", self.user_id, exc)
                    continue
                if not ours:
                    self._mark_lost("it expired and another writer took it")
                    return
                last_renewed = time.monotonic()
        finally:
            connections.close_all()  # this thread's own connection

    def end_with_next_commit(self) -> None:
        """The holder's next commit is its last write under this lease: let the commit
        clear the claim (one statement fewer on the write's path)."""
        self.ends_with_commit = True

    def stop_renewing(self) -> None:
        """Before a commit that clears the claim: a renewal after it would find the
        claim gone and call the lease lost."""
        self._stop.set()

    def cleared_by_commit(self) -> None:
        """The commit's statement cleared the claim: ``release`` gives back the local
        lock only. Until then other writers still wait on this machine's file lock, so
        the holder's bookkeeping after the commit (``working.json``) is not raced here."""
        self._cleared = True

    def _mark_lost(self, why: str) -> None:
        if self._stop.is_set():
            return  # released or ended by its commit: nobody relies on it any more
        if not self.lost:
            self.lost = True
            logger.warning("lost lease for user %s: %s", self.user_id, why)

    def release(self) -> None:
        with self._release_guard:
            if self._released:
                return
            self._released = True
        self._stop.set()
        if self._renewer.is_alive():
            self._renewer.join(timeout=5)
        if self._cleared:
            self._local.release()
            logger.debug("released lease for user %s (cleared by its commit)", self.user_id)
            return
        try:
            SyncState.objects.filter(user_id=self.user_id, lease_holder=self.token).update(
                lease_holder="", lease_expires_at=None
            )
        except DatabaseError as exc:
            # Not raised: release runs in ``finally`` blocks and must not hide the real
            # outcome of the write. The claim lapses by itself within its ttl.
            logger.warning("could not release lease for user %s: %s", self.user_id, exc)
        finally:
            self._local.release()
        logger.debug("released lease for user %s", self.user_id)

    def __repr__(self):
        state = "released" if self._released else "lost" if self.lost else "held"
        return f"<Lease user={self.user_id} fence={self.fence} {state}>"


# --- Per-context holding ------------------------------------------------------------

# user id -> Lease held by this request or task. Each change sets a new read-only
# mapping (never mutated in place), so a copied context never sees or makes changes
# through a shared object.
_held: ContextVar[Mapping[int, Lease]] = ContextVar(
    "reeleditor_held_leases", default=MappingProxyType({})
)


def held_lease(user_id: int) -> Lease | None:
    """The lease this context holds for ``user_id``, if any (released ones excluded)."""
    held = _held.get().get(int(user_id))
    if held is None or held.released:
        return None
    return held


@contextmanager
def adopted(held: Lease):
    """Count ``held`` (acquired elsewhere, not yet released) as held by this context."""
    token = _held.set(MappingProxyType({**_held.get(), held.user_id: held}))
    try:
        yield held
    finally:
        _held.reset(token)


@contextmanager
def lease(user_id: int, *, wait: float | None = None, ttl: float | None = None):
    """Hold ``user_id``'s lease for the block; yields the ``Lease``.

    Re-entrant within one context: a nested ``lease()`` for a user this context already
    holds yields the held ``Lease`` and leaves releasing it to the outer block.

    ``wait`` (default ``settings.LEASE_WAIT_SECONDS``) is how long to wait for another
    writer; ``ttl`` (default ``settings.LEASE_TTL_SECONDS``) is how long a claim lives
    without renewal. Raises ``LeaseTimeout`` when another writer keeps it past ``wait``
    and ``LeaseUnavailable`` when the central database cannot be asked.
    """
    user_id = int(user_id)
    wait = float(settings.LEASE_WAIT_SECONDS if wait is None else wait)
    ttl = float(settings.LEASE_TTL_SECONDS if ttl is None else ttl)
    if wait < 0:
        raise ValueError(f"wait must be >= 0, got {wait}")
    if ttl <= 0:
        raise ValueError(f"ttl must be > 0, got {ttl}")

    already = held_lease(user_id)
    if already is not None:
        yield already
        return

    acquired = Lease.acquire(user_id, wait=wait, ttl=ttl)
    token = _held.set(MappingProxyType({**_held.get(), user_id: acquired}))
    try:
        yield acquired
    finally:
        try:
            _held.reset(token)
        finally:
            acquired.release()
