"""Single writer per user, across threads, processes and machines.

A write to a user's data takes that user's lease first, so only one request or task at a
time pulls, writes, pushes and commits for them. Two backends, chosen per call from the
settings:

- ``FileLease`` (embedded default, one machine): an exclusive ``flock`` on
  ``<REELEDITOR_DATA_DIR>/leases/<user_id>.lock``. The kernel drops it when the holder
  exits or crashes, so a dead holder never blocks anyone. It never expires while held.
- ``RedisLease`` (``REDIS_URL`` set, several machines): a Redis key with a random token
  and a time to live, renewed by a background thread while held. A holder that stalls
  past the ttl (or is cut off from Redis) can lose it to another writer; ``lost`` then
  turns true and the version compare-and-set on the registry is the fence that refuses
  the stale commit.

The leases this request or task holds live in a ``ContextVar`` (never
``threading.local``), so a nested ``lease()`` for a user already held in this context is
re-entrant, while another request, task or bare thread waits its turn. A context copied
*inside* a ``lease()`` block (``asyncio`` tasks, ``copy_context()``) sees the lease as
held too: start concurrent work that writes for the same user outside the block.

``lease()`` blocks while it waits: call it from sync code (views and tasks run in
threads), not on the event loop.
"""

import fcntl
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
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import redis
from django.conf import settings
from redis.backoff import ExponentialBackoff
from redis.commands.core import Script
from redis.retry import Retry

logger = logging.getLogger(__name__)

REDIS_KEY_PREFIX = "reeleditor:lease:"

# Waiting polls with a short, growing, jittered sleep: quick hand-over when the holder
# finishes soon, and waiters that do not all knock at the same instant.
_FIRST_POLL_DELAY = 0.005
_MAX_POLL_DELAY = 0.05
# Indirection so tests can see that a waiter really tried and found the lease taken.
_sleep = time.sleep


class LeaseTimeout(Exception):
    """Could not get the user's lease within the wait time (another writer holds it)."""


class LeaseUnavailable(Exception):
    """The lease service is unreachable (Redis down or not answering): answer 503."""


class Lease:
    """One holder's claim on one user's lease; release it once (later calls do nothing).

    ``lost`` turns true if the lease expired or was taken while held (Redis only). Writes
    made after that are still fenced by the registry's version compare-and-set.
    """

    def __init__(self, user_id: int):
        self.user_id = user_id
        self.lost = False
        self._released = False
        self._release_guard = threading.Lock()

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        with self._release_guard:
            if self._released:
                return
            self._released = True
        self._let_go()
        logger.debug("released lease for user %s (%s)", self.user_id, type(self).__name__)

    def _let_go(self) -> None:
        raise NotImplementedError

    def __repr__(self):
        state = "released" if self._released else "lost" if self.lost else "held"
        return f"<{type(self).__name__} user={self.user_id} {state}>"


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


# --- File leases (one machine) ------------------------------------------------------


def _lease_file(user_id: int) -> Path:
    # Read at call time: tests (and commands) point the data folder elsewhere.
    return Path(settings.REELEDITOR_DATA_DIR) / "leases" / f"{user_id}.lock"


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class FileLease(Lease):
    """An exclusive ``flock`` on the user's lock file, held through an open descriptor.

    flock locks belong to the open file description, so two threads of one process that
    each open the file exclude each other just as two processes do. Lock files are never
    deleted: unlinking a file another process has open and is about to lock would let two
    holders lock two different files.
    """

    def __init__(self, user_id: int, fd: int, path: Path):
        super().__init__(user_id)
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, user_id: int, *, wait: float) -> "FileLease":
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
        logger.debug("acquired file lease for user %s", user_id)
        return cls(user_id, fd, path)

    def _let_go(self) -> None:
        # Unlock explicitly before closing: a process forked while we held the lease
        # shares the open file description, and closing only our descriptor would leave
        # the lock held by the child.
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)


# --- Redis leases (several machines) ------------------------------------------------

# Extend the ttl only while the key still holds our token: never revive or extend a
# lease that expired and now belongs to someone else.
_RENEW_LUA = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
"""
# Delete only our own lease: after an expiry the key may be another writer's.
_RELEASE_LUA = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class _RedisService:
    client: redis.Redis
    renew: Script
    release: Script


_services: dict[str, _RedisService] = {}
_services_guard = threading.Lock()


def _redis_service(url: str) -> _RedisService:
    """One shared client per URL: redis-py clients are thread-safe (a connection pool)."""
    with _services_guard:
        service = _services.get(url)
        if service is None:
            client = redis.Redis.from_url(
                url,
                # Short timeouts: a write waiting on a dead Redis should fail fast with
                # 503, and a renewal must notice trouble well within the ttl.
                socket_connect_timeout=1.0,
                socket_timeout=2.0,
                # One quick retry rides over a pooled connection that went stale (Redis
                # restarted); an unreachable server still fails within a second or two.
                retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 1),
            )
            service = _RedisService(
                client,
                client.register_script(_RENEW_LUA),
                client.register_script(_RELEASE_LUA),
            )
            _services[url] = service
        return service


def _new_token() -> str:
    # Random for safety; host and pid only help an operator who looks at the key.
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(16)}"


class RedisLease(Lease):
    """A Redis key holding our random token, kept alive by a daemon renewal thread."""

    def __init__(
        self,
        user_id: int,
        service: _RedisService,
        key: str,
        token: str,
        ttl: float,
        set_at: float,
    ):
        super().__init__(user_id)
        self.key = key
        self._service = service
        self._token = token
        self._ttl = ttl
        self._stop = threading.Event()
        self._renewer = threading.Thread(
            target=self._renew_until_released,
            args=(set_at,),
            name=f"lease-renewal-{user_id}",
            daemon=True,
        )

    @classmethod
    def acquire(cls, user_id: int, *, url: str, wait: float, ttl: float) -> "RedisLease":
        service = _redis_service(url)
        key = f"{REDIS_KEY_PREFIX}{user_id}"
        token = _new_token()
        ttl_ms = _milliseconds(ttl)
        sent = time.monotonic()

        def attempt() -> bool:
            nonlocal sent
            sent = time.monotonic()
            return bool(service.client.set(key, token, nx=True, px=ttl_ms))

        try:
            acquired = _poll(attempt, wait)
        except redis.RedisError as exc:
            # If a SET landed before the error, the key simply expires after ttl.
            raise LeaseUnavailable(f"the lease service is unreachable: {exc}") from exc
        if not acquired:
            raise LeaseTimeout(f"user {user_id}'s lease is held by another writer ({wait:g} s)")
        # The key's ttl started after the SET was sent: count from the send time.
        held = cls(user_id, service, key, token, ttl, set_at=sent)
        held._renewer.start()
        logger.debug("acquired redis lease for user %s (ttl %g s)", user_id, ttl)
        return held

    def _renew_until_released(self, last_renewed: float) -> None:
        """Extend the ttl every ttl/3 until released, or until the lease is gone."""
        ttl_ms = _milliseconds(self._ttl)
        while not self._stop.wait(self._ttl / 3):
            sent = time.monotonic()
            try:
                ours = self._service.renew(keys=[self.key], args=[self._token, ttl_ms])
            except redis.RedisError as exc:
                if time.monotonic() - last_renewed >= self._ttl:
                    self._mark_lost(f"could not renew it for longer than its ttl ({exc})")
                    return
                logger.warning("could not renew lease for user %s: %s", self.user_id, exc)
                continue
            if not ours:
                self._mark_lost("it expired or another writer took it")
                return
            # The server started the new ttl after we sent: count from the send time.
            last_renewed = sent

    def _mark_lost(self, why: str) -> None:
        if not self.lost:
            self.lost = True
            logger.info("lost lease for user %s: %s", self.user_id, why)

    def _let_go(self) -> None:
        self._stop.set()
        if self._renewer.is_alive():
            # Wait out a renewal in flight so it cannot race the delete (harmless anyway:
            # renewal only extends a key that still holds our token).
            self._renewer.join(timeout=5)
        try:
            deleted = self._service.release(keys=[self.key], args=[self._token])
        except redis.RedisError as exc:
            # Not raised: release runs in ``finally`` blocks and must not hide the real
            # outcome of the write. The key expires by itself within its ttl.
            logger.warning(
                "could not release lease for user %s (expires in %g s): %s",
                self.user_id,
                self._ttl,
                exc,
            )
            return
        if not deleted:
            self._mark_lost("it was gone or held by another writer at release")


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


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


def _acquire(user_id: int, wait: float, ttl: float) -> Lease:
    url = getattr(settings, "REDIS_URL", "")
    if url:
        return RedisLease.acquire(user_id, url=url, wait=wait, ttl=ttl)
    return FileLease.acquire(user_id, wait=wait)


@contextmanager
def lease(user_id: int, *, wait: float | None = None, ttl: float | None = None):
    """Hold ``user_id``'s lease for the block; yields the ``Lease``.

    Re-entrant within one context: a nested ``lease()`` for a user this context already
    holds yields the held ``Lease`` and leaves releasing it to the outer block.

    ``wait`` (default ``settings.LEASE_WAIT_SECONDS``) is how long to wait for another
    writer; ``ttl`` (default ``settings.LEASE_TTL_SECONDS``) is the Redis key's time to
    live, renewed while held. Raises ``LeaseTimeout`` when another writer keeps it past
    ``wait`` and ``LeaseUnavailable`` when Redis cannot be reached.
    """
    user_id = int(user_id)
    wait = float(getattr(settings, "LEASE_WAIT_SECONDS", 30) if wait is None else wait)
    ttl = float(getattr(settings, "LEASE_TTL_SECONDS", 30) if ttl is None else ttl)
    if wait < 0:
        raise ValueError(f"wait must be >= 0, got {wait}")
    if ttl <= 0:
        raise ValueError(f"ttl must be > 0, got {ttl}")

    already = held_lease(user_id)
    if already is not None:
        yield already
        return

    acquired = _acquire(user_id, wait, ttl)
    token = _held.set(MappingProxyType({**_held.get(), user_id: acquired}))
    try:
        yield acquired
    finally:
        try:
            _held.reset(token)
        finally:
            acquired.release()
