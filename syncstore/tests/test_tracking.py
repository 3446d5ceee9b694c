"""Write tracking: which statements are writes, which user databases a context wrote to,
and how the writes a tracker saw are pushed and attributed, user by user.

Whether a copy holds unpushed writes is the database's own change counter (kept by
SQLite triggers in the same transaction as each write), so these tests read it from the
file: a rolled-back write counts nothing, and a write that lands while a snapshot is
being committed is never marked clean.
"""

import asyncio
import contextvars
import threading

import pytest
from django.db import IntegrityError, connections, transaction

from projects.models import Project
from syncstore import keys, operations, snapshots, sync, tracking, userdb, workingcopy
from syncstore.binding import bound_to_user, current_binding
from syncstore.models import SyncState
from syncstore.tests.helpers import in_thread

pytestmark = pytest.mark.django_db

GENEROUS = 10  # seconds: how long a test waits for something that should happen at once


@pytest.mark.parametrize(
    "sql",
    [
        'INSERT INTO "projects_project" ("name") VALUES (%s)',
        'UPDATE "projects_project" SET "name" = %s',
        'DELETE FROM "projects_project"',
        "REPLACE INTO t VALUES (1)",
        'CREATE TABLE "t" ("id" integer)',
        'ALTER TABLE "t" ADD COLUMN "x" integer',
        'DROP TABLE "t"',
        "insert into t values (1)",
        "  \n\tUpdate t set x = 1",
        "delete\nfrom t",
    ],
)
def test_writes_are_writes(sql):
    assert tracking.is_write(sql)


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT "projects_project"."id" FROM "projects_project"',
        "select 1",
        "  \n SELECT 1",
        "PRAGMA foreign_keys = OFF",
        "pragma journal_mode",
        'SAVEPOINT "s1_x1"',
        'RELEASE SAVEPOINT "s1_x1"',
        'ROLLBACK TO SAVEPOINT "s1_x1"',
        "BEGIN",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        "",
        "   ",
        "\n",
        # A verb inside a word or later in the statement is not the statement's verb.
        "INSERTED",
        "SELECT 'INSERT INTO t'",
    ],
)
def test_other_statements_are_not_writes(sql):
    assert not tracking.is_write(sql)


def test_a_write_with_a_common_table_expression_is_a_write():
    assert tracking.is_write("WITH ids AS (SELECT 1 AS id) DELETE FROM t WHERE id IN ids")


def _state(user):
    return workingcopy.read_state(user.pk)


def _live(user):
    return workingcopy.live_changes(user.pk)


def _create(name, aspect_ratio="9:16"):
    """Create a project in the bound database, then close this thread's connection."""
    Project.objects.create(name=name, aspect_ratio=aspect_ratio)
    connections[current_binding().alias].close()


def _names():
    return sorted(Project.objects.values_list("name", flat=True))


def test_the_execute_wrapper_is_installed_once_on_user_connections_only(alice):
    with bound_to_user(alice.pk) as binding:
        connection = connections[binding.alias]
        connection.ensure_connection()
        assert connection.execute_wrappers == [tracking._track_writes]
        tracking.install_write_tracking(sender=type(connection), connection=connection)
        assert connection.execute_wrappers == [tracking._track_writes]
    connections["default"].ensure_connection()
    assert tracking._track_writes not in connections["default"].execute_wrappers


def test_a_write_is_noted_and_counted(alice):
    with bound_to_user(alice.pk):
        clean = _state(alice)
        assert not clean.dirty  # a new user's copy starts clean, at version 0
        with tracking.track_writes() as tracker:
            assert tracking.current_tracker() is tracker
            assert tracker.user_ids == []
            Project.objects.create(name="Cup", aspect_ratio="9:16")
            assert tracker.user_ids == [alice.pk]
        assert tracking.current_tracker() is None
    state = _state(alice)
    assert state.live_changes == clean.live_changes + 1
    assert state.dirty
    assert state.base_version == 0
    assert workingcopy.dirty_user_ids() == [alice.pk]


def test_the_counter_counts_each_write(alice):
    with bound_to_user(alice.pk), tracking.track_writes() as tracker:
        start = _live(alice)
        Project.objects.create(name="one", aspect_ratio="9:16")
        assert _live(alice) == start + 1
        Project.objects.create(name="two", aspect_ratio="9:16")
        assert _live(alice) == start + 2  # the second insert counts too
        Project.objects.update(name="renamed")  # one statement, two rows
        assert _live(alice) == start + 4
        Project.objects.filter(pk=Project.objects.order_by("pk").first().pk).delete()
        assert _live(alice) == start + 5
        assert _names() == ["renamed"]
    assert tracker.user_ids == [alice.pk]  # each user once, however many writes
    assert _state(alice).dirty


def test_a_write_statement_that_changes_no_row_leaves_the_copy_clean(local_store, alice):
    with bound_to_user(alice.pk), tracking.track_writes() as tracker:
        start = _live(alice)
        assert Project.objects.filter(name="nothing").update(name="x") == 0
        Project.objects.filter(name="nothing").delete()
    assert tracker.user_ids == [alice.pk]  # noted: its owner pushes...
    assert _live(alice) == start
    assert not _state(alice).dirty
    # ...and the push finds nothing to commit.
    assert {uid: (r.status, r.version) for uid, r in sync.push_written(tracker).items()} == {
        alice.pk: ("ok", 0)
    }
    assert local_store.list_keys(keys.snapshot_prefix(alice.pk)) == []


def test_a_write_that_fails_leaves_the_copy_clean(alice):
    with bound_to_user(alice.pk) as binding:
        clean = _state(alice)
        with (
            tracking.track_writes() as tracker,
            pytest.raises(IntegrityError),
            connections[binding.alias].cursor() as cursor,
        ):
            cursor.execute('INSERT INTO "projects_project" ("name") VALUES (NULL)')
        assert Project.objects.count() == 0
    assert tracker.user_ids == [alice.pk]  # harmless: its push finds nothing to commit
    state = _state(alice)
    assert state.live_changes == clean.live_changes
    assert not state.dirty
    assert workingcopy.dirty_user_ids() == []


def test_a_rolled_back_transaction_leaves_the_copy_clean(alice):
    with bound_to_user(alice.pk) as binding:
        clean = _state(alice)
        with pytest.raises(RuntimeError), transaction.atomic(using=binding.alias):
            Project.objects.create(name="Cup", aspect_ratio="9:16")
            Project.objects.update(name="renamed")
            raise RuntimeError("the view failed")
        assert Project.objects.count() == 0
    # The counter was rolled back with the rows it counted.
    state = _state(alice)
    assert state.live_changes == clean.live_changes
    assert not state.dirty


def test_without_a_tracker_writes_are_still_counted(alice):
    assert tracking.current_tracker() is None
    with bound_to_user(alice.pk):
        start = _live(alice)
        for i in range(3):
            Project.objects.create(name=f"p{i}", aspect_ratio="9:16")
        Project.objects.update(name="renamed")
    assert _live(alice) == start + 6
    assert _state(alice).dirty
    assert workingcopy.dirty_user_ids() == [alice.pk]


def test_reads_are_not_noted_and_not_counted(alice):
    with bound_to_user(alice.pk):
        Project.objects.create(name="Cup", aspect_ratio="9:16")
        workingcopy.mark_pulled(alice.pk, 0, _live(alice))  # as if committed: clean again
        before = _state(alice)
        with tracking.track_writes() as tracker:
            assert list(Project.objects.values_list("name", flat=True)) == ["Cup"]
            assert Project.objects.with_status().count() == 1
            assert Project.objects.filter(name="nothing").exists() is False
        # And without a tracker too.
        list(Project.objects.all())
    assert tracker.user_ids == []
    after = _state(alice)
    assert after == before
    assert after.live_changes == before.live_changes
    assert not after.dirty


def test_statements_on_the_central_database_are_not_tracked(alice, bob):
    with tracking.track_writes() as tracker:
        SyncState.objects.create(user=bob)
        alice.first_name = "Alice"
        alice.save()
    assert tracker.user_ids == []
    assert workingcopy.dirty_user_ids() == []


def test_opening_a_new_users_database_is_not_a_write_to_push(alice):
    # The first open builds the migrated template (its own alias, writes galore) and
    # places a copy of it: none of that is the tracker owner's write.
    assert not userdb.database_path(alice.pk).exists()
    with tracking.track_writes() as tracker, bound_to_user(alice.pk):
        assert userdb.database_path(alice.pk).exists()
        assert list(Project.objects.all()) == []
    assert tracker.user_ids == []
    assert not _state(alice).dirty


def test_a_write_in_a_copied_context_marks_the_same_tracker(alice):
    with bound_to_user(alice.pk), tracking.track_writes() as tracker:
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(_create, "copied context"))
        worker.start()
        worker.join(GENEROUS)
        assert not worker.is_alive()
        assert tracker.user_ids == [alice.pk]
        assert _names() == ["copied context"]
    assert _state(alice).dirty


def test_a_write_through_asyncio_to_thread_marks_the_same_tracker(alice):
    async def handler():
        await asyncio.to_thread(_create, "to_thread")

    with bound_to_user(alice.pk), tracking.track_writes() as tracker:
        asyncio.run(handler())
        assert _names() == ["to_thread"]
    assert tracker.user_ids == [alice.pk]
    assert _state(alice).dirty


def test_a_bare_thread_is_not_the_trackers_but_its_write_still_counts(alice):
    def bare():
        assert tracking.current_tracker() is None
        with bound_to_user(alice.pk):
            Project.objects.create(name="bare thread", aspect_ratio="9:16")

    with tracking.track_writes() as tracker:
        in_thread(bare).result(GENEROUS)
    assert tracker.user_ids == []
    assert _state(alice).dirty  # the counter saw it, whoever wrote it


def test_concurrent_contexts_have_their_own_trackers(alice, bob):
    started = threading.Barrier(2)

    def write_as(user, name):
        with tracking.track_writes() as tracker, bound_to_user(user.pk):
            started.wait(GENEROUS)  # both trackers exist at once
            Project.objects.create(name=name, aspect_ratio="9:16")
            return tracker.user_ids

    first, second = in_thread(write_as, alice, "a"), in_thread(write_as, bob, "b")
    assert first.result(GENEROUS) == [alice.pk]
    assert second.result(GENEROUS) == [bob.pk]


def _write_both(alice, bob, label):
    """One unit of work writing to two users' databases (an operator's tool, a task)."""
    with tracking.track_writes() as tracker, bound_to_user(alice.pk):
        Project.objects.create(name=f"alice {label}", aspect_ratio="9:16")
        with bound_to_user(bob.pk):
            Project.objects.create(name=f"bob {label}", aspect_ratio="1:1")
    return tracker


def test_writes_to_two_users_are_both_recorded_and_pushed(local_store, alice, bob):
    tracker = _write_both(alice, bob, "one")
    assert tracker.user_ids == sorted([alice.pk, bob.pk])

    results = sync.push_written(tracker)

    assert {uid: (r.status, r.version) for uid, r in results.items()} == {
        alice.pk: ("ok", 1),
        bob.pk: ("ok", 1),
    }
    for user in (alice, bob):
        row = SyncState.objects.get(user=user)
        assert (row.version, row.status) == (1, "ok")
        assert row.object_key.startswith(keys.snapshot_prefix(user.pk))
        assert (_state(user).base_version, _state(user).dirty) == (1, False)


def test_a_store_failure_is_attributed_to_the_user_whose_push_failed(
    local_store, settings, alice, bob
):
    settings.SYNC_PUSH_BACKOFF = []
    # A real failure of bob's uploads only: a file sits where his snapshot folder goes.
    blocker = local_store.root / keys.snapshot_prefix(bob.pk).rstrip("/")
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"")

    results = sync.push_written(_write_both(alice, bob, "one"))

    assert results[alice.pk].ok
    assert results[alice.pk].version == 1
    assert results[bob.pk].status == "failed"
    assert "snapshot store" in results[bob.pk].error
    alice_row, bob_row = (SyncState.objects.get(user=u) for u in (alice, bob))
    assert (alice_row.version, alice_row.status, alice_row.last_error) == (1, "ok", "")
    assert (bob_row.version, bob_row.status) == (0, "failed")
    assert "snapshot store" in bob_row.last_error
    assert bob_row.failure_count == 1
    assert not _state(alice).dirty
    assert _state(bob).dirty  # kept, to be retried
    assert workingcopy.dirty_user_ids() == [bob.pk]

    blocker.unlink()
    [retried] = sync.retry_dirty_copies()
    assert (retried.user_id, retried.status, retried.version) == (bob.pk, "ok", 1)
    assert SyncState.objects.get(user=bob).status == "ok"
    assert SyncState.objects.get(user=alice).version == 1


def test_a_conflict_is_attributed_to_the_user_whose_copy_was_stale(local_store, alice, bob):
    sync.push_written(_write_both(alice, bob, "one"))  # both at version 1
    tracker = _write_both(alice, bob, "two")
    # Bob's copy claims an older base than the committed one: his push must be refused.
    workingcopy.write_state(
        bob.pk,
        workingcopy.CopyState(**{**_state(bob).__dict__, "base_version": 0}),
    )

    results = sync.push_written(tracker)

    assert (results[alice.pk].status, results[alice.pk].version) == ("ok", 2)
    assert (results[bob.pk].status, results[bob.pk].version) == ("conflict", 1)
    assert SyncState.objects.get(user=alice).status == "ok"
    bob_row = SyncState.objects.get(user=bob)
    assert (bob_row.version, bob_row.status) == (1, "conflict")
    assert len(operations.conflict_copies(bob.pk)) == 1
    assert operations.conflict_copies(alice.pk) == []
    # Bob's copy follows the committed version; his refused write is in the conflict copy.
    with bound_to_user(bob.pk):
        assert list(Project.objects.values_list("name", flat=True)) == ["bob one"]
    assert (_state(bob).base_version, _state(bob).dirty) == (1, False)


def test_a_write_through_a_tracker_whose_owner_already_pushed_still_marks_dirty(local_store, alice):
    with bound_to_user(alice.pk):
        with tracking.track_writes() as tracker:
            Project.objects.create(name="in the request", aspect_ratio="9:16")
            worker_context = contextvars.copy_context()  # e.g. work handed to a thread
        assert sync.push_written(tracker)[alice.pk].version == 1
        assert not _state(alice).dirty

        # The worker writes after the request's push: same tracker, already "seen".
        worker_context.run(Project.objects.create, name="late", aspect_ratio="9:16")

    assert _state(alice).dirty, "a write no snapshot holds, on a copy marked clean"
    [retried] = sync.retry_dirty_copies()
    assert (retried.user_id, retried.status, retried.version) == (alice.pk, "ok", 2)


@pytest.fixture
def machines(settings, tmp_path):
    """``machines(name)`` makes this process another machine: its own data folder, the
    same central database and snapshot store."""
    home = settings.REELEDITOR_DATA_DIR

    def switch(name=None):
        userdb.forget_all()
        folder = home if name is None else tmp_path / name
        folder.mkdir(exist_ok=True)
        settings.REELEDITOR_DATA_DIR = folder

    yield switch
    switch()


def test_a_write_landing_after_the_snapshot_is_never_marked_clean(
    local_store, alice, monkeypatch, machines
):
    """The race the change counter closes: a write committed to the file after the
    push's snapshot was taken, before its commit is recorded, stays dirty."""
    real_take = snapshots.take
    landed = []

    def late_write():
        # Another request's thread: its own binding, no lease, no copy lock.
        assert tracking.current_tracker() is None
        with bound_to_user(alice.pk):
            Project.objects.create(name="late", aspect_ratio="9:16")
        return _live(alice)

    def take_then_write(db_path, workdir):
        packed = real_take(db_path, workdir)
        if not landed:
            # The push holds the lease and the copy lock here; a plain write needs
            # neither, so it lands before the commit is recorded.
            landed.append(in_thread(late_write).result(GENEROUS))
        return packed

    monkeypatch.setattr(snapshots, "take", take_then_write)

    with bound_to_user(alice.pk):
        with tracking.track_writes() as tracker:
            Project.objects.create(name="early", aspect_ratio="9:16")
        first = sync.push_written(tracker)[alice.pk]
    assert (first.status, first.version) == ("ok", 1)
    assert landed, "the late write did not run"

    state = _state(alice)
    assert state.base_version == 1  # the snapshot was committed...
    assert state.live_changes == landed[0] == state.committed_changes + 1
    assert state.dirty, "a write no snapshot holds, on a copy marked clean"
    assert workingcopy.dirty_user_ids() == [alice.pk]

    # What version 1 holds, seen from another machine: the early write only.
    machines("machine-b")
    with bound_to_user(alice.pk):
        assert _names() == ["early"]

    # Back home, the next push commits the late write.
    machines()
    with bound_to_user(alice.pk):
        second = sync.push(alice.pk)
    assert (second.status, second.version) == ("ok", 2)
    assert not _state(alice).dirty
    assert workingcopy.dirty_user_ids() == []

    machines("machine-c")
    with bound_to_user(alice.pk):
        assert _names() == ["early", "late"]
    assert (_state(alice).base_version, _state(alice).dirty) == (2, False)
