"""Single writer per user: file leases (one machine) and Redis leases (several machines).

Ordering is proven with events and timestamps, never with a sleep standing in for an
assertion: a waiter is known to be waiting because the lease module's poll sleep reports
which thread tried and found the lease taken.
"""

import contextvars
import fcntl
import itertools
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
import redis

from syncstore import leases
from syncstore.leases import (
    FileLease,
    LeaseTimeout,
    LeaseUnavailable,
    RedisLease,
    held_lease,
    lease,
)

REDIS_TEST_URL = "redis://127.0.0.1:6379/15"
GENEROUS = 10  # seconds: how long a test waits for something that should happen at once

# User ids unique to this run, so Redis keys never meet another run's or another test's.
_user_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000 + os.getpid() % 1000)


def in_thread(fn, *args, name: str = "helper", **kwargs) -> Future:
    """Run ``fn`` in a new bare thread (a fresh context: no leases held there)."""
    future = Future()

    def run():
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def take(user_id, **kwargs) -> float:
    """Take and release ``user_id``'s lease; returns when it was acquired (monotonic)."""
    with lease(user_id, **kwargs):
        return time.monotonic()


def times_out(user_id, **kwargs) -> float:
    """Expect LeaseTimeout; returns how long the attempt took."""
    started = time.monotonic()
    with pytest.raises(LeaseTimeout), lease(user_id, **kwargs):
        pass
    return time.monotonic() - started


class WaitSpy:
    """Stands in for the poll sleep: records which threads found a lease taken."""

    def __init__(self):
        self._events: dict[str, threading.Event] = {}
        self._guard = threading.Lock()
        self._real_sleep = time.sleep

    def waited(self, thread_name: str) -> threading.Event:
        with self._guard:
            return self._events.setdefault(thread_name, threading.Event())

    def __call__(self, seconds):
        self.waited(threading.current_thread().name).set()
        self._real_sleep(seconds)


@pytest.fixture
def spy(monkeypatch):
    spy = WaitSpy()
    monkeypatch.setattr(leases, "_sleep", spy)
    return spy


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_TEST_URL, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_TEST_URL} ({exc}); run scripts/test-services.sh"
        )
    yield client
    client.close()


@pytest.fixture
def file_backend(settings):
    # The conftest's autouse data_dir fixture already points REELEDITOR_DATA_DIR at a
    # fresh folder; an environment's REDIS_URL must not switch these tests to Redis.
    settings.REDIS_URL = ""
    return "file"


@pytest.fixture
def redis_backend(settings, redis_client):
    settings.REDIS_URL = REDIS_TEST_URL
    return "redis"


@pytest.fixture(params=["file", "redis"])
def backend(request):
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture
def user_id(settings):
    uid = next(_user_ids)
    yield uid
    if settings.REDIS_URL == REDIS_TEST_URL:
        client = redis.Redis.from_url(REDIS_TEST_URL)
        client.delete(f"{leases.REDIS_KEY_PREFIX}{uid}")
        client.close()


# --- Both backends ------------------------------------------------------------------


def test_backend_is_chosen_from_settings_at_call_time(backend, user_id):
    with lease(user_id) as held:
        expected = RedisLease if backend == "redis" else FileLease
        assert isinstance(held, expected)
        assert held.user_id == user_id
        assert held.lost is False
        assert held_lease(user_id) is held
    assert held.released
    assert held_lease(user_id) is None


def test_second_thread_waits_until_first_releases(backend, user_id, spy):
    holding, let_go = threading.Event(), threading.Event()

    def first():
        with lease(user_id, wait=GENEROUS):
            holding.set()
            assert let_go.wait(GENEROUS)

    first_done = in_thread(first, name="first")
    assert holding.wait(GENEROUS)
    second = in_thread(take, user_id, wait=GENEROUS, name="second")
    # The second writer tried, found the lease taken, and is polling.
    assert spy.waited("second").wait(GENEROUS)
    assert not second.done()

    let_go_at = time.monotonic()
    let_go.set()
    second_acquired_at = second.result(GENEROUS)
    first_done.result(GENEROUS)
    assert second_acquired_at >= let_go_at


def test_wait_expiry_raises_lease_timeout(backend, user_id):
    with lease(user_id):
        took = in_thread(times_out, user_id, wait=0.2).result(GENEROUS)
    assert 0.2 <= took < GENEROUS


def test_wait_defaults_to_the_setting(backend, user_id, settings):
    settings.LEASE_WAIT_SECONDS = 0.1
    with lease(user_id):
        took = in_thread(times_out, user_id).result(GENEROUS)
    assert 0.1 <= took < GENEROUS


def test_reentrant_within_one_context(backend, user_id):
    with lease(user_id) as outer:
        with lease(user_id, wait=0) as inner:
            assert inner is outer
        # Leaving the nested block did not release the outer lease.
        assert not outer.released
        assert held_lease(user_id) is outer
        in_thread(times_out, user_id, wait=0).result(GENEROUS)
    assert held_lease(user_id) is None
    # Released for real: another context gets it at once.
    in_thread(take, user_id, wait=0).result(GENEROUS)


def test_another_thread_is_a_different_context_and_must_wait(backend, user_id):
    with lease(user_id) as held:
        assert in_thread(held_lease, user_id).result(GENEROUS) is None
        in_thread(times_out, user_id, wait=0.2).result(GENEROUS)
        # A context copied inside the block does see the lease (documented caveat).
        assert contextvars.copy_context().run(held_lease, user_id) is held


def test_holding_one_user_does_not_block_another(backend, user_id):
    other_user = next(_user_ids)
    with lease(user_id), lease(other_user, wait=0) as other:
        assert other.user_id == other_user
        assert held_lease(user_id).user_id == user_id
    assert held_lease(other_user) is None


def test_early_release_frees_the_lease_and_the_block_still_exits(backend, user_id):
    with lease(user_id) as held:
        held.release()
        held.release()  # a second release does nothing
        assert held_lease(user_id) is None
        in_thread(take, user_id, wait=0).result(GENEROUS)


def test_exception_in_block_releases(backend, user_id):
    with pytest.raises(RuntimeError), lease(user_id):
        raise RuntimeError("write failed")
    assert held_lease(user_id) is None
    in_thread(take, user_id, wait=0).result(GENEROUS)


# --- File leases --------------------------------------------------------------------


def _lock_path(settings, user_id) -> Path:
    return Path(settings.REELEDITOR_DATA_DIR) / "leases" / f"{user_id}.lock"


def test_file_lease_locks_the_users_file_in_the_data_dir(file_backend, user_id, settings):
    path = _lock_path(settings, user_id)
    with lease(user_id) as held:
        assert held.path == path
        assert path.exists()
        # The kernel fact the file lease relies on: flock belongs to the open file
        # description, so a second open of the same file in this process is excluded.
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    assert held.lost is False


HOLDER_SCRIPT = """
import fcntl, os, sys
path = sys.argv[1]
os.makedirs(os.path.dirname(path), exist_ok=True)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()  # hold until the test closes our stdin, or kills us
"""


def _start_holder_process(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "locked\n"
    return proc


def _stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.kill()
    proc.wait(GENEROUS)
    proc.stdin.close()
    proc.stdout.close()


def test_holder_in_another_process_blocks_until_it_exits(file_backend, user_id, settings, spy):
    proc = _start_holder_process(_lock_path(settings, user_id))
    try:
        times_out(user_id, wait=0.2)
        waiter = in_thread(take, user_id, wait=GENEROUS, name="waiter")
        assert spy.waited("waiter").wait(GENEROUS)
        assert not waiter.done()

        exit_asked_at = time.monotonic()
        proc.stdin.close()
        assert proc.wait(GENEROUS) == 0
        assert waiter.result(GENEROUS) >= exit_asked_at
    finally:
        _stop(proc)


def test_killed_holder_process_releases_the_lease(file_backend, user_id, settings):
    proc = _start_holder_process(_lock_path(settings, user_id))
    try:
        times_out(user_id, wait=0.2)
        proc.kill()
        proc.wait(GENEROUS)
        # The holder never released anything: the kernel dropped its lock on exit.
        take(user_id, wait=GENEROUS)
    finally:
        _stop(proc)


# --- Redis leases -------------------------------------------------------------------


def _key(user_id) -> str:
    return f"{leases.REDIS_KEY_PREFIX}{user_id}"


def _wait_until(condition, timeout=GENEROUS) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_redis_lease_key_holds_a_token_with_a_ttl(redis_backend, user_id, redis_client):
    with lease(user_id, ttl=5):
        token = redis_client.get(_key(user_id))
        assert token and str(os.getpid()) in token
        assert 0 < redis_client.pttl(_key(user_id)) <= 5000
    assert redis_client.exists(_key(user_id)) == 0


def test_renewal_keeps_the_lease_past_its_ttl(redis_backend, user_id, redis_client):
    with lease(user_id, ttl=0.6) as held:
        time.sleep(2)  # more than three ttls: only renewal keeps the key alive
        in_thread(times_out, user_id, wait=0.2).result(GENEROUS)
        assert redis_client.pttl(_key(user_id)) > 0
        assert held.lost is False
    assert held.lost is False


def test_overwritten_lease_is_lost_and_release_spares_the_new_holder(
    redis_backend, user_id, redis_client, caplog
):
    caplog.set_level(logging.INFO, logger="syncstore.leases")
    with lease(user_id, ttl=0.6) as held:
        redis_client.set(_key(user_id), "another-writer")
        assert _wait_until(lambda: held.lost)
        # Still this context's lease: the caller decides, the version CAS fences.
        assert held_lease(user_id) is held
    assert redis_client.get(_key(user_id)) == "another-writer"
    assert any("lost lease" in r.getMessage() for r in caplog.records)


def test_deleted_lease_is_lost(redis_backend, user_id, redis_client):
    with lease(user_id, ttl=0.6) as held:
        redis_client.delete(_key(user_id))
        assert _wait_until(lambda: held.lost)
        # Renewal must not have revived the key.
        assert redis_client.exists(_key(user_id)) == 0


def test_expired_lease_taken_by_another_is_not_deleted_on_release(
    redis_backend, user_id, redis_client
):
    stalled = RedisLease.acquire(user_id, url=REDIS_TEST_URL, wait=0, ttl=0.3)
    # Stall the holder: stop its renewal, as a long pause or a partition would.
    stalled._stop.set()
    stalled._renewer.join(GENEROUS)
    assert _wait_until(lambda: redis_client.exists(_key(user_id)) == 0)

    with lease(user_id, wait=0) as successor:
        successor_token = redis_client.get(_key(user_id))
        stalled.release()
        assert stalled.lost is True
        assert redis_client.get(_key(user_id)) == successor_token
        assert successor.lost is False


def test_unreachable_redis_raises_lease_unavailable_quickly(settings, user_id):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    started = time.monotonic()
    with pytest.raises(LeaseUnavailable), lease(user_id, wait=GENEROUS):
        pass
    assert time.monotonic() - started < 3
    assert held_lease(user_id) is None
