"""Single writer per user: the lease on the registry row, with a machine-local flock first.

Every test runs against the real central test database (a SQLite file) with committed
rows (``transaction=True``), so the other threads and processes involved see the same
registry row. "Another machine" is another data folder: its own lock files and its own
token prefix, so the only thing it shares with this one is the central database, as on
a real second host.

Ordering is proven with events and timestamps, never with a sleep standing in for an
assertion: a waiter is known to be waiting because the lease module's poll sleep reports
which thread tried and found the lease taken.
"""

import contextvars
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from syncstore import leases
from syncstore.leases import (
    FileLock,
    Lease,
    LeaseTimeout,
    LeaseUnavailable,
    adopted,
    held_lease,
    lease,
)
from syncstore.models import SyncState
from syncstore.tests.helpers import LineProcess, in_thread, registry

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
GENEROUS = 10  # seconds: how long a test waits for something that should happen at once
STARTUP = 60  # seconds: how long a holder process may take to start Django
FOREIGN_TOKEN = "another-host:0badf00d:4242:0123456789abcdef"


def take(user_id, **kwargs) -> float:
    """Take and release ``user_id``'s lease; returns when it was acquired (monotonic)."""
    with lease(user_id, **kwargs):
        return time.monotonic()


def take_fence(user_id, **kwargs) -> int:
    with lease(user_id, **kwargs) as held:
        return held.fence


def times_out(user_id, **kwargs) -> float:
    """Expect LeaseTimeout; returns how long the attempt took."""
    started = time.monotonic()
    with pytest.raises(LeaseTimeout), lease(user_id, **kwargs):
        pass
    return time.monotonic() - started


def wait_until(condition, timeout=GENEROUS) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def flock_is_free(user_id) -> bool:
    try:
        FileLock.acquire(user_id, wait=0).release()
    except LeaseTimeout:
        return False
    return True


def write_claim(user_id, holder: str, expires_in: float, fence: int = 5) -> None:
    """Put a claim in the registry row directly, as another holder would have left it."""
    SyncState.objects.update_or_create(
        user_id=user_id,
        defaults={
            "lease_holder": holder,
            "lease_expires_at": timezone.now() + timedelta(seconds=expires_in),
            "fence": fence,
        },
    )


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
def user_id(alice):
    return alice.pk


@pytest.fixture
def another_machine(settings, tmp_path):
    """A context manager: inside it, this process is a second machine.

    Another data folder means other lock files and another token prefix, so the two
    "machines" share only the central database.
    """

    @contextmanager
    def machine(name="machine-b"):
        saved = settings.REELEDITOR_DATA_DIR
        settings.REELEDITOR_DATA_DIR = tmp_path / name
        settings.REELEDITOR_DATA_DIR.mkdir(exist_ok=True)
        try:
            yield
        finally:
            settings.REELEDITOR_DATA_DIR = saved

    return machine


# --- One machine: threads -------------------------------------------------------------


def test_a_lease_is_a_claim_on_the_registry_row(user_id, settings):
    assert not SyncState.objects.filter(user_id=user_id).exists()
    before = timezone.now()
    with lease(user_id, ttl=5) as held:
        assert isinstance(held, Lease)
        assert (held.user_id, held.lost, held.released) == (user_id, False, False)
        assert held_lease(user_id) is held
        assert held.still_ours()
        row = registry(user_id)  # created by the first lease, at version 0
        assert row.version == 0
        assert row.lease_holder == held.token
        assert held.token.startswith(leases._local_prefix())
        assert f":{os.getpid()}:" in held.token
        assert before + timedelta(seconds=5) <= row.lease_expires_at
        assert row.lease_expires_at <= timezone.now() + timedelta(seconds=5)
        assert row.fence == held.fence == 1
        # The machine-local fast path: the user's lock file in the data folder.
        assert (Path(settings.REELEDITOR_DATA_DIR) / "leases" / f"{user_id}.lock").exists()
        assert not flock_is_free(user_id)
        assert "held" in repr(held)
    assert held.released
    assert "released" in repr(held)
    assert held_lease(user_id) is None
    row = registry(user_id)
    assert (row.lease_holder, row.lease_expires_at, row.fence) == ("", None, 1)
    assert flock_is_free(user_id)


def test_each_acquisition_increments_the_fence(user_id):
    tokens = set()
    for expected in (1, 2, 3):
        with lease(user_id) as held:
            assert held.fence == expected
            assert registry(user_id).fence == expected
            tokens.add(held.token)
        assert registry(user_id).fence == expected
    assert len(tokens) == 3  # a fresh random token for every claim
    # Another thread's acquisition moves the same number.
    assert in_thread(take_fence, user_id).result(GENEROUS) == 4


def test_the_lock_file_excludes_a_second_open_in_this_process(user_id, settings):
    path = Path(settings.REELEDITOR_DATA_DIR) / "leases" / f"{user_id}.lock"
    with lease(user_id):
        # The kernel fact the local fast path relies on: flock belongs to the open file
        # description, so a second open of the same file in this process is excluded.
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_second_thread_waits_until_first_releases(user_id, spy):
    holding, let_go = threading.Event(), threading.Event()
    fences = {}

    def first():
        with lease(user_id, wait=GENEROUS) as held:
            fences["first"] = held.fence
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
    assert registry(user_id).fence == fences["first"] + 1


def test_wait_expiry_raises_lease_timeout(user_id):
    with lease(user_id) as held:
        took = in_thread(times_out, user_id, wait=0.2).result(GENEROUS)
        assert registry(user_id).lease_holder == held.token  # the waiter changed nothing
    assert 0.2 <= took < GENEROUS
    assert registry(user_id).fence == 1  # a failed attempt takes no fencing number


def test_wait_defaults_to_the_setting(user_id, settings):
    settings.LEASE_WAIT_SECONDS = 0.1
    with lease(user_id):
        took = in_thread(times_out, user_id).result(GENEROUS)
    assert 0.1 <= took < GENEROUS


def test_ttl_defaults_to_the_setting(user_id, settings):
    settings.LEASE_TTL_SECONDS = 7
    before = timezone.now()
    with lease(user_id):
        expires = registry(user_id).lease_expires_at
    assert before + timedelta(seconds=7) <= expires <= timezone.now() + timedelta(seconds=7)


@pytest.mark.parametrize("kwargs", [{"wait": -1}, {"ttl": 0}, {"ttl": -1}])
def test_nonsense_wait_or_ttl_is_refused(user_id, kwargs):
    with pytest.raises(ValueError), lease(user_id, **kwargs):
        pass
    assert not SyncState.objects.filter(user_id=user_id).exists()
    assert flock_is_free(user_id)


def test_reentrant_within_one_context(user_id):
    with lease(user_id) as outer:
        with lease(user_id, wait=0) as inner:
            assert inner is outer
        # Leaving the nested block did not release the outer lease.
        assert not outer.released
        assert held_lease(user_id) is outer
        assert registry(user_id).lease_holder == outer.token
        assert registry(user_id).fence == 1  # the nested block took no new claim
        in_thread(times_out, user_id, wait=0).result(GENEROUS)
    assert held_lease(user_id) is None
    # Released for real: another context gets it at once.
    in_thread(take, user_id, wait=0).result(GENEROUS)


def test_another_thread_is_a_different_context_and_must_wait(user_id):
    with lease(user_id) as held:
        assert in_thread(held_lease, user_id).result(GENEROUS) is None
        in_thread(times_out, user_id, wait=0.2).result(GENEROUS)
        # A context copied inside the block does see the lease (documented caveat).
        assert contextvars.copy_context().run(held_lease, user_id) is held


def test_holding_one_user_does_not_block_another(alice, bob):
    with lease(alice.pk) as mine, lease(bob.pk, wait=0) as other:
        assert other.user_id == bob.pk
        assert held_lease(alice.pk) is mine
        # And another thread takes bob's once we let go, while we still hold alice's.
        other.release()
        in_thread(take, bob.pk, wait=0).result(GENEROUS)
        in_thread(times_out, alice.pk, wait=0).result(GENEROUS)
        assert registry(alice.pk).lease_holder == mine.token
    assert held_lease(bob.pk) is None


def test_early_release_frees_the_lease_and_the_block_still_exits(user_id):
    with lease(user_id) as held:
        held.release()
        held.release()  # a second release does nothing
        assert held_lease(user_id) is None
        assert registry(user_id).lease_holder == ""
        in_thread(take, user_id, wait=0).result(GENEROUS)


def test_exception_in_block_releases(user_id):
    with pytest.raises(RuntimeError), lease(user_id):
        raise RuntimeError("write failed")
    assert held_lease(user_id) is None
    row = registry(user_id)
    assert (row.lease_holder, row.lease_expires_at) == ("", None)
    in_thread(take, user_id, wait=0).result(GENEROUS)


def test_an_adopted_lease_counts_as_held_in_the_adopting_context(user_id):
    held = Lease.acquire(user_id, wait=0, ttl=30)
    try:

        def in_worker():
            assert held_lease(user_id) is None
            with adopted(held):
                assert held_lease(user_id) is held
                # Re-entrant through the adoption: no deadlock on our own lease.
                with lease(user_id, wait=0) as inner:
                    assert inner is held
            assert held_lease(user_id) is None
            return held.released

        assert in_thread(in_worker).result(GENEROUS) is False  # adopting never releases
        assert registry(user_id).lease_holder == held.token
        in_thread(times_out, user_id, wait=0).result(GENEROUS)
    finally:
        held.release()
    assert held.released
    assert registry(user_id).lease_holder == ""


def test_the_wait_covers_the_local_queue_and_the_database_claim_together(
    user_id, spy, another_machine
):
    """A waiter that spends part of its wait in the local queue gets only the rest for
    the claim: the whole attempt never takes longer than ``wait``."""
    with another_machine():
        elsewhere = Lease.acquire(user_id, wait=0, ttl=30)  # a live claim, another host
    local_holder = FileLock.acquire(user_id, wait=0)  # and a local writer in the queue
    try:
        waiter = in_thread(times_out, user_id, wait=1.0, name="waiter")
        assert spy.waited("waiter").wait(GENEROUS)
        time.sleep(0.6)  # the local writer keeps the flock for a while (not an assertion)
        local_holder.release()
        local_holder = None
        took = waiter.result(GENEROUS)
    finally:
        if local_holder is not None:
            local_holder.release()
        elsewhere.release()
    assert 1.0 <= took < 1.5, f"the attempt took {took:.2f} s for a wait of 1 s"
    # The waiter let go of the local lock when it gave up on the claim.
    assert flock_is_free(user_id)


# --- Claims left in the registry ------------------------------------------------------


def test_an_expired_claim_from_another_machine_is_taken_over(user_id):
    write_claim(user_id, FOREIGN_TOKEN, expires_in=-1, fence=5)
    with lease(user_id, wait=0) as held:
        row = registry(user_id)
        assert row.lease_holder == held.token != FOREIGN_TOKEN
        assert row.lease_expires_at > timezone.now()
        assert held.fence == row.fence == 6


def test_a_live_claim_from_another_machine_makes_the_waiter_time_out(user_id, settings):
    write_claim(user_id, FOREIGN_TOKEN, expires_in=60, fence=5)
    took = times_out(user_id, wait=0.3)
    assert 0.3 <= took < GENEROUS
    settings.LEASE_WAIT_SECONDS = 0.1  # the default wait applies to the claim too
    assert 0.1 <= times_out(user_id) < GENEROUS
    row = registry(user_id)
    assert (row.lease_holder, row.fence) == (FOREIGN_TOKEN, 5)  # untouched
    # The waiter let go of the local lock when it gave up.
    assert flock_is_free(user_id)


def test_a_claim_left_by_a_crashed_process_of_this_machine_is_taken_over_at_once(user_id):
    # A token this machine made (same host, same data folder), still "live" for an hour,
    # and nobody holds the local flock: its holder is dead.
    crashed = f"{leases._local_prefix()}99999:feedfacecafebeef"
    write_claim(user_id, crashed, expires_in=3600, fence=5)
    started = time.monotonic()
    with lease(user_id, wait=0) as held:
        assert time.monotonic() - started < GENEROUS
        row = registry(user_id)
        assert row.lease_holder == held.token != crashed
        assert held.fence == row.fence == 6


def test_a_claim_from_another_data_folder_of_this_host_is_not_taken_for_crashed(
    user_id, another_machine
):
    """Same host, another data folder: another instance, with its own lock files, so
    holding our flock says nothing about it."""
    with another_machine():
        other = f"{leases._local_prefix()}99999:feedfacecafebeef"
    assert not other.startswith(leases._local_prefix())
    write_claim(user_id, other, expires_in=60, fence=5)
    times_out(user_id, wait=0.2)
    assert registry(user_id).lease_holder == other


def test_renewal_keeps_the_lease_past_its_ttl(user_id):
    with lease(user_id, ttl=0.6) as held:
        acquired = timezone.now()
        expiries = {registry(user_id).lease_expires_at}
        deadline = time.monotonic() + 2  # more than three ttls
        while time.monotonic() < deadline:
            expiries.add(registry(user_id).lease_expires_at)
            time.sleep(0.05)
        row = registry(user_id)
        # Only renewal keeps the claim alive this long after it was taken.
        assert row.lease_expires_at > timezone.now()
        assert row.lease_expires_at > acquired + timedelta(seconds=2)
        assert len(expiries) >= 4, sorted(expiries)
        assert row.lease_holder == held.token
        assert row.fence == held.fence  # renewing is not a new claim
        assert held.lost is False
        assert held.still_ours()
    assert held.lost is False
    assert registry(user_id).lease_holder == ""


def test_a_claim_taken_over_while_held_is_lost_and_release_spares_the_new_holder(user_id, caplog):
    caplog.set_level(logging.INFO, logger="syncstore.leases")
    with lease(user_id, ttl=0.6) as held:
        # Another writer took the claim (it saw ours expired): new token, new fence.
        write_claim(user_id, FOREIGN_TOKEN, expires_in=60, fence=held.fence + 1)
        assert wait_until(lambda: held.lost)
        assert not held.still_ours()
        assert "lost" in repr(held)
        # Still this context's lease: the caller decides, the fence refuses its commit.
        assert held_lease(user_id) is held
    row = registry(user_id)
    assert (row.lease_holder, row.fence) == (FOREIGN_TOKEN, held.fence + 1)
    assert row.lease_expires_at > timezone.now() + timedelta(seconds=30)  # not revived
    assert any("lost lease" in r.getMessage() for r in caplog.records)


def test_a_cleared_claim_is_lost_and_renewal_does_not_revive_it(user_id):
    with lease(user_id, ttl=0.6) as held:
        SyncState.objects.filter(user_id=user_id).update(lease_holder="", lease_expires_at=None)
        assert wait_until(lambda: held.lost)
        row = registry(user_id)
        assert (row.lease_holder, row.lease_expires_at) == ("", None)


def test_a_stalled_holder_whose_claim_expired_cannot_clear_its_successors(user_id, another_machine):
    stalled = Lease.acquire(user_id, wait=0, ttl=0.3)
    # Stall the holder: stop its renewal, as a long pause or a partition would.
    stalled._stop.set()
    stalled._renewer.join(GENEROUS)
    assert wait_until(lambda: registry(user_id).lease_expires_at < timezone.now())

    with another_machine(), lease(user_id, wait=0) as successor:
        assert successor.fence == stalled.fence + 1
        assert not stalled.still_ours()
        stalled.release()
        row = registry(user_id)
        assert (row.lease_holder, row.fence) == (successor.token, successor.fence)
        assert successor.lost is False
        assert successor.still_ours()
    assert registry(user_id).lease_holder == ""


# --- The central database failing ----------------------------------------------------


@contextmanager
def registry_table_gone():
    """Make every query on the registry fail for real, then put the table back."""
    with connection.cursor() as cursor:
        cursor.execute('ALTER TABLE "syncstore_syncstate" RENAME TO "syncstore_syncstate_away"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute('ALTER TABLE "syncstore_syncstate_away" RENAME TO "syncstore_syncstate"')


def test_an_unanswering_central_database_raises_lease_unavailable(user_id):
    with registry_table_gone():
        started = time.monotonic()
        with pytest.raises(LeaseUnavailable), lease(user_id, wait=GENEROUS):
            pass
        assert time.monotonic() - started < GENEROUS / 2  # at once, not after the wait
        assert held_lease(user_id) is None
        assert flock_is_free(user_id)  # the local lock was given back
    # Nothing sticky: with the database back, the lease works.
    with lease(user_id, wait=0) as held:
        assert registry(user_id).lease_holder == held.token


def test_a_holder_that_cannot_renew_for_its_ttl_counts_the_lease_lost(user_id, caplog):
    caplog.set_level(logging.WARNING, logger="syncstore.leases")
    held = Lease.acquire(user_id, wait=0, ttl=0.6)
    try:
        with registry_table_gone():
            assert wait_until(lambda: held.lost)
            # Release cannot reach the database either: it must not raise, and it
            # still gives back the local lock.
            held.release()
            assert flock_is_free(user_id)
    finally:
        held.release()
    assert any("could not renew" in r.getMessage() for r in caplog.records)
    assert any("could not release" in r.getMessage() for r in caplog.records)
    # The claim it could not clear does not block the next writer of this machine.
    with lease(user_id, wait=0) as successor:
        assert successor.fence == held.fence + 1


# --- Other processes ------------------------------------------------------------------

HOLDER_SCRIPT = """
import sys

import django

django.setup()

from syncstore import leases

user_id, ttl = int(sys.argv[1]), float(sys.argv[2])
with leases.lease(user_id, wait=30, ttl=ttl) as held:
    print("held", held.fence, held.token, flush=True)
    sys.stdin.readline()  # hold until the test closes our stdin, or kills us
print("released", flush=True)
"""


class HolderProcess(LineProcess):
    """A separate Django process that takes a user's lease and holds it."""

    def __init__(self, user_id, *, data_dir, central_database, ttl, log_path):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
            "REELEDITOR_DATA_DIR": str(data_dir),
            "DATABASE_URL": central_database,
            "LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-c", HOLDER_SCRIPT, str(user_id), str(ttl)]
        super().__init__(command, env=env, cwd=ROOT, log_path=log_path)
        words = self.expect("held", STARTUP)
        self.fence, self.token = int(words[1]), words[2]

    def expect(self, word, timeout=GENEROUS) -> list[str]:
        line = self.next_line(timeout)
        assert line is not None and line.split()[0] == word, (
            f"holder process said {line!r}, expected {word!r}:\n{self.log()}"
        )
        return line.split()

    def let_go(self):
        self.process.stdin.close()
        self.expect("released")
        assert self.process.wait(GENEROUS) == 0, self.log()

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(GENEROUS) == -signal.SIGKILL

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(GENEROUS)
        self.close()


@pytest.fixture
def holder_process(central_database_url, data_dir, tmp_path):
    """Start holder processes: ``holder_process(user_id, ttl=, data_dir=)``."""
    started = []

    def start(user_id, *, ttl=30, data_dir=data_dir):
        holder = HolderProcess(
            user_id,
            data_dir=data_dir,
            central_database=central_database_url,
            ttl=ttl,
            log_path=tmp_path / f"holder-{len(started)}.log",
        )
        started.append(holder)
        return holder

    yield start
    for holder in started:
        holder.stop()


def test_holder_in_another_process_blocks_until_it_exits(user_id, spy, holder_process):
    holder = holder_process(user_id)
    row = registry(user_id)
    assert (row.lease_holder, row.fence) == (holder.token, holder.fence)
    assert holder.token.startswith(leases._local_prefix())  # same machine, same folder

    times_out(user_id, wait=0.2)
    waiter = in_thread(take_fence, user_id, wait=GENEROUS, name="waiter")
    assert spy.waited("waiter").wait(GENEROUS)
    assert not waiter.done()

    holder.let_go()
    assert waiter.result(GENEROUS) == holder.fence + 1


def test_a_killed_holder_process_releases_the_lease_quickly(user_id, holder_process):
    holder = holder_process(user_id, ttl=30)
    times_out(user_id, wait=0.2)
    assert registry(user_id).lease_expires_at > timezone.now() + timedelta(seconds=20)

    holder.kill()  # it never released anything
    killed_at = time.monotonic()
    # The kernel dropped its flock; its claim is recognised as left by a crashed process
    # of this machine, so nobody waits out the 30 s ttl.
    with lease(user_id, wait=GENEROUS, ttl=30) as held:
        took = time.monotonic() - killed_at
        row = registry(user_id)
        assert row.lease_holder == held.token != holder.token
        assert held.fence == row.fence == holder.fence + 1
    assert took < 5, f"took {took:.1f} s to take over a crashed holder's lease"


def test_a_holder_on_another_machine_excludes_us_through_the_database(
    user_id, spy, holder_process, tmp_path
):
    holder = holder_process(user_id, data_dir=tmp_path / "machine-b")
    assert not holder.token.startswith(leases._local_prefix())

    # Our own flock is free: only the registry row keeps us out.
    assert flock_is_free(user_id)
    times_out(user_id, wait=0.3)
    waiter = in_thread(take_fence, user_id, wait=GENEROUS, name="waiter")
    assert spy.waited("waiter").wait(GENEROUS)
    assert not waiter.done()

    holder.let_go()
    assert waiter.result(GENEROUS) == holder.fence + 1


def test_a_killed_holder_on_another_machine_is_waited_out_until_its_ttl(
    user_id, holder_process, tmp_path
):
    holder = holder_process(user_id, ttl=2, data_dir=tmp_path / "machine-b")
    holder.kill()
    expires = registry(user_id).lease_expires_at  # final: nobody renews it any more
    with lease(user_id, wait=GENEROUS) as held:
        acquired = timezone.now()
        assert held.fence == holder.fence + 1
    # Not taken while the dead holder's claim was live, and not waited for longer.
    assert acquired >= expires
    assert acquired - expires < timedelta(seconds=GENEROUS / 2)
