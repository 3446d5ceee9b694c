"""Write tracking: which statements are writes, when the working copy is marked dirty,
and how the writes a tracker saw are pushed and attributed, user by user."""

import contextvars

import pytest
from django.db import IntegrityError, connections

from projects.models import Project
from syncstore import sync, tracking, workingcopy
from syncstore.binding import bound_to_user
from syncstore.models import SyncState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_periodic_retry(settings):
    # The background retry must not push (and clean) the copies these tests inspect.
    settings.SYNC_RETRY_INTERVAL = 0


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


def test_a_write_marks_the_copy_dirty_before_the_statement_runs(alice):
    """An inner execute wrapper sees the statement just before SQLite does."""
    with bound_to_user(alice.pk) as binding:
        clean = _state(alice)
        assert not clean.dirty  # a new user's copy starts clean, at version 0
        seen = []

        def just_before_sqlite(execute, sql, params, many, context):
            if tracking.is_write(sql):
                seen.append((sql.split()[0], _state(alice)))
            return execute(sql, params, many, context)

        connection = connections[binding.alias]
        connection.ensure_connection()
        assert connection.execute_wrappers == [tracking._track_writes]
        with tracking.track_writes() as tracker, connection.execute_wrapper(just_before_sqlite):
            Project.objects.create(name="Cup", aspect_ratio="9:16")

    assert tracker.user_ids == [alice.pk]
    [(verb, state)] = seen
    assert verb == "INSERT"
    assert state.dirty
    assert state.generation == clean.generation + 1
    assert state.dirty_since is not None


def test_a_write_that_fails_still_marks_the_copy_dirty(alice):
    # Harmless (one extra snapshot), and the only safe order: marked before it runs.
    with bound_to_user(alice.pk) as binding:
        generation = _state(alice).generation
        with (
            tracking.track_writes() as tracker,
            pytest.raises(IntegrityError),
            connections[binding.alias].cursor() as cursor,
        ):
            cursor.execute('INSERT INTO "projects_project" ("name") VALUES (NULL)')
        assert Project.objects.count() == 0
    assert tracker.user_ids == [alice.pk]
    assert _state(alice).dirty
    assert _state(alice).generation == generation + 1


def test_a_tracker_records_each_user_once(alice):
    with bound_to_user(alice.pk):
        generation = _state(alice).generation
        with tracking.track_writes() as tracker:
            for i in range(3):
                Project.objects.create(name=f"p{i}", aspect_ratio="9:16")
            Project.objects.update(name="renamed")
            Project.objects.filter(pk=Project.objects.first().pk).delete()
    assert tracker.user_ids == [alice.pk]
    # Its owner pushes once at the end, so the first write is the one that counts.
    assert _state(alice).generation == generation + 1
    assert _state(alice).dirty


def test_without_a_tracker_every_write_marks_the_copy_dirty(alice):
    assert tracking.current_tracker() is None
    with bound_to_user(alice.pk):
        generation = _state(alice).generation
        for i in range(3):
            Project.objects.create(name=f"p{i}", aspect_ratio="9:16")
        Project.objects.update(name="renamed")
    assert _state(alice).generation == generation + 4
    assert _state(alice).dirty


def test_reads_do_not_mark_the_copy_dirty(alice):
    with bound_to_user(alice.pk):
        Project.objects.create(name="Cup", aspect_ratio="9:16")
        workingcopy.mark_pulled(alice.pk, 0)  # pretend it was committed: clean again
        before = _state(alice)
        with tracking.track_writes() as tracker:
            assert list(Project.objects.values_list("name", flat=True)) == ["Cup"]
            assert Project.objects.with_status().count() == 1
            assert Project.objects.filter(name="nothing").exists() is False
        # And without a tracker too.
        list(Project.objects.all())
    assert tracker.user_ids == []
    assert _state(alice) == before
    assert not before.dirty


def test_statements_on_the_central_database_are_not_tracked(alice, bob):
    with tracking.track_writes() as tracker:
        SyncState.objects.create(user=bob)
        alice.first_name = "Alice"
        alice.save()
    assert tracker.user_ids == []
    assert workingcopy.dirty_user_ids() == []


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
        assert row.object_key.startswith(sync.snapshot_prefix(user.pk))
        assert (_state(user).base_version, _state(user).dirty) == (1, False)


def test_a_store_failure_is_attributed_to_the_user_whose_push_failed(
    local_store, settings, alice, bob
):
    settings.SYNC_PUSH_BACKOFF = []
    # A real failure of bob's uploads only: a file sits where his snapshot folder goes.
    blocker = local_store.root / sync.snapshot_prefix(bob.pk).rstrip("/")
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
    assert len(sync.conflict_copies(bob.pk)) == 1
    assert sync.conflict_copies(alice.pk) == []
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
