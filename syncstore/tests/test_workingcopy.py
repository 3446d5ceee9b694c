"""The working copy's persistent state (``working.json``) against the database's own
change counter: base version, committed count, pending commit, conflict kept.

The databases here are real SQLite files with the real counter and triggers
(``changecounter.install``), written to by plain ``sqlite3`` connections as any process
could, or by the ORM through a real binding.
"""

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import closing
from dataclasses import asdict
from datetime import datetime

import pytest
from django.utils import timezone

from projects.models import Project
from syncstore import changecounter, snapshots, sync, userdb, workingcopy
from syncstore.binding import bound_to_user
from syncstore.filelock import LockTimeout
from syncstore.tests.helpers import in_thread
from syncstore.workingcopy import CopyState

GENEROUS = 10  # seconds


def _restart():
    """Forget everything this process holds in memory; only files remain."""
    userdb.forget_all()


def _create_database(user_id, *, counter=True):
    """A real user database file; with the change counter, as every copy now has."""
    path = userdb.database_path(user_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        if counter:
            changecounter.install(conn.cursor())
        conn.commit()
    return path


def _write(user_id, rows=1):
    """Commit ``rows`` inserts, one statement each, from a connection of our own."""
    with closing(sqlite3.connect(userdb.database_path(user_id))) as conn, conn:
        for i in range(rows):
            conn.execute("INSERT INTO notes (body) VALUES (?)", (f"note {i}",))


def _clean_at(user_id, version):
    """Record the copy as holding exactly committed ``version`` (as a pull would)."""
    workingcopy.mark_pulled(user_id, version, workingcopy.live_changes(user_id))
    assert not workingcopy.read_state(user_id).dirty


def _stored(state):
    """The fields ``working.json`` stores, less the time it was written."""
    return {k: v for k, v in asdict(state).items() if k not in ("updated_at", "live_changes")}


# --- No copy, new copies, the counter --------------------------------------------------


def test_a_user_with_no_copy_is_clean_at_version_0():
    state = workingcopy.read_state(7)
    assert state == CopyState()
    assert (state.base_version, state.committed_changes, state.live_changes) == (0, 0, None)
    assert not state.dirty
    assert not state.regressed
    assert state.dirty_since is None
    assert not workingcopy.state_path(7).exists()
    assert workingcopy.dirty_user_ids() == []


def test_a_database_without_state_counts_as_holding_unpushed_writes():
    _create_database(7)
    state = workingcopy.read_state(7)
    assert state.live_changes == 0
    assert state.committed_changes is None  # unknown: pushing is safe, dropping is not
    assert state.dirty
    assert state.base_version == 0
    assert workingcopy.dirty_user_ids() == [7]


def test_live_changes_reads_the_counter_of_the_file():
    assert workingcopy.live_changes(7) is None  # no file
    _create_database(7)
    assert workingcopy.live_changes(7) == 0
    _write(7, rows=3)
    assert workingcopy.live_changes(7) == 3
    # A file made before the counter existed has none.
    _create_database(8, counter=False)
    assert workingcopy.live_changes(8) is None
    # Reading never creates a database where there is none.
    assert not userdb.database_path(9).exists()
    workingcopy.read_state(9)
    assert not userdb.database_path(9).exists()


def test_dirty_follows_the_live_counter():
    _create_database(7)
    _clean_at(7, 1)

    _write(7)  # any connection, any process: the trigger counts it
    state = workingcopy.read_state(7)
    assert (state.live_changes, state.committed_changes) == (1, 0)
    assert state.dirty
    assert state.dirty_since == state.updated_at  # last known clean at the pull
    assert workingcopy.dirty_user_ids() == [7]

    workingcopy.mark_committed(7, 2, 1)
    state = workingcopy.read_state(7)
    assert (state.base_version, state.dirty, state.dirty_since) == (2, False, None)
    assert workingcopy.dirty_user_ids() == []


def test_a_write_by_another_process_makes_the_copy_dirty():
    path = _create_database(7)
    _clean_at(7, 1)
    script = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1])\n"
        "conn.execute(\"INSERT INTO notes (body) VALUES ('from elsewhere')\")\n"
        "conn.commit()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=GENEROUS)
    state = workingcopy.read_state(7)
    assert state.live_changes == 1
    assert state.dirty


def test_a_rolled_back_write_leaves_the_copy_clean():
    _create_database(7)
    _clean_at(7, 1)
    with closing(sqlite3.connect(userdb.database_path(7))) as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('never mind')")
        conn.execute("UPDATE notes SET body = 'again'")
        conn.rollback()
    state = workingcopy.read_state(7)
    assert state.live_changes == 0
    assert not state.dirty


def test_an_uncommitted_write_does_not_count_until_it_commits():
    _create_database(7)
    _clean_at(7, 1)
    with closing(sqlite3.connect(userdb.database_path(7))) as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('in flight')")
        # Another connection (the state reader) sees the committed file only.
        assert not workingcopy.read_state(7).dirty
        conn.commit()
    assert workingcopy.read_state(7).dirty


# --- Committing, pulling ------------------------------------------------------------------


def test_mark_committed_clears_dirty_when_nothing_was_written_since(tmp_path):
    path = _create_database(7)
    _write(7, rows=2)
    packed = snapshots.take(path, tmp_path / "work")
    assert packed.changes == 2

    workingcopy.mark_committed(7, 1, packed.changes, "inc-1")
    written = workingcopy.read_state(7)
    _restart()
    state = workingcopy.read_state(7)
    assert _stored(state) == _stored(written)
    assert (state.base_version, state.committed_changes, state.incarnation) == (1, 2, "inc-1")
    assert (state.dirty, state.dirty_since) == (False, None)


def test_mark_committed_keeps_dirty_when_a_write_came_after_the_snapshot(tmp_path):
    path = _create_database(7)
    _clean_at(7, 0)
    _write(7)
    packed = snapshots.take(path, tmp_path / "work")  # the snapshot sees one change
    _write(7)  # a write lands while the snapshot is uploaded

    workingcopy.mark_committed(7, 1, packed.changes)

    state = workingcopy.read_state(7)
    assert state.base_version == 1  # the snapshot is committed...
    assert state.committed_changes == 1
    assert state.live_changes == 2
    assert state.dirty  # ...but the later write still has to be pushed
    assert _stored(workingcopy.read_state(7)) == _stored(state)
    assert workingcopy.read_state(7).dirty
    assert workingcopy.dirty_user_ids() == [7]

    # The next snapshot holds it: clean.
    again = snapshots.take(path, tmp_path / "work")
    workingcopy.mark_committed(7, 2, again.changes)
    assert not workingcopy.read_state(7).dirty


def test_mark_committed_clears_pending_and_conflict_and_keeps_the_incarnation():
    _create_database(7)
    workingcopy.set_incarnation(7, "inc-1")
    workingcopy.mark_pending(7, 1, "snapshots/7/1.z", 0)
    workingcopy.mark_conflict_kept(7, workingcopy.read_state(7))

    workingcopy.mark_committed(7, 1, 0)  # no incarnation given: kept

    state = workingcopy.read_state(7)
    assert (state.pending, state.conflict_kept, state.incarnation) == (None, None, "inc-1")
    workingcopy.mark_committed(7, 2, 0, "inc-2")
    assert workingcopy.read_state(7).incarnation == "inc-2"


def test_mark_pulled_sets_the_version_and_the_count_it_holds():
    _create_database(7)
    _write(7, rows=3)
    workingcopy.set_incarnation(7, "inc-1")
    workingcopy.mark_pending(7, 4, "snapshots/7/4.z", 3)
    workingcopy.mark_conflict_kept(7, workingcopy.read_state(7))

    workingcopy.mark_pulled(7, 5, 3)

    state = workingcopy.read_state(7)
    assert (state.base_version, state.committed_changes, state.live_changes) == (5, 3, 3)
    assert (state.dirty, state.dirty_since) == (False, None)
    assert (state.pending, state.conflict_kept, state.incarnation) == (None, None, "inc-1")
    workingcopy.mark_pulled(7, 6, 3, "inc-2")
    assert workingcopy.read_state(7).incarnation == "inc-2"


def test_mark_dirty_forces_a_push_whatever_the_counter_says():
    _create_database(7)
    _clean_at(7, 3)
    workingcopy.mark_dirty(7)
    state = workingcopy.read_state(7)
    assert state.committed_changes is None
    assert state.live_changes == 0  # nothing was written...
    assert state.dirty  # ...yet the copy must be pushed (force push, installed conflict copy)
    assert state.base_version == 3
    _restart()
    assert workingcopy.read_state(7).dirty
    assert workingcopy.dirty_user_ids() == [7]
    # A commit of what the file holds makes it clean again.
    workingcopy.mark_committed(7, 4, workingcopy.live_changes(7))
    assert not workingcopy.read_state(7).dirty


def test_a_copy_that_lost_committed_changes_has_regressed(tmp_path):
    path = _create_database(7)
    _write(7)
    before = tmp_path / "before.sqlite3"
    snapshots._backup(path, before)  # the file as it was with one change
    _write(7, rows=2)
    workingcopy.mark_committed(7, 1, 3)
    assert not workingcopy.read_state(7).regressed

    # A power cut took the last transactions: the file holds the older content again.
    _restart()
    for suffix in userdb.SIDE_FILE_SUFFIXES:
        userdb.database_path(7).with_name(path.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(before, path)

    state = workingcopy.read_state(7)
    assert (state.live_changes, state.committed_changes) == (1, 3)
    assert state.regressed
    assert state.dirty  # never counted as in step with the committed version


def test_dirty_since_stays_at_the_last_commit_or_pull():
    _create_database(7)
    _clean_at(7, 1)
    pulled_at = workingcopy.read_state(7).updated_at
    _write(7)
    assert workingcopy.read_state(7).dirty_since == pulled_at
    # Bookkeeping that is neither a commit nor a pull (a pull that failed after the
    # conflict copy was kept): the unpushed writes are as old as they were.
    workingcopy.mark_conflict_kept(7, workingcopy.read_state(7))
    assert workingcopy.read_state(7).dirty
    assert workingcopy.read_state(7).dirty_since == pulled_at


def test_recording_a_commit_does_not_open_the_database(monkeypatch):
    # The live counter is not stored, so marking a pending or committed version reads
    # only working.json: a push of an autosave must not open three connections.
    _create_database(7)
    _clean_at(7, 0)
    _write(7, rows=2)
    monkeypatch.setattr(changecounter, "read_file", _must_not_be_called)
    workingcopy.mark_pending(7, 1, "k", 2)
    workingcopy.mark_committed(7, 1, 2, "inc-1")
    workingcopy.set_wal_position(7, None)
    monkeypatch.undo()
    state = workingcopy.read_state(7)
    assert (state.base_version, state.committed_changes, state.dirty) == (1, 2, False)


def test_an_update_with_no_record_yet_keeps_the_file_counted_as_unpushed():
    _create_database(7)
    _write(7)
    workingcopy.state_path(7).unlink(missing_ok=True)
    workingcopy.set_incarnation(7, "inc-1")
    state = workingcopy.read_state(7)
    assert (state.committed_changes, state.dirty) == (None, True)


def _must_not_be_called(*args, **kwargs):
    raise AssertionError("the database's change counter was read")


@pytest.mark.parametrize(
    ("committed", "live", "regressed"),
    [(3, 3, False), (3, 4, False), (3, 2, True), (None, 2, False), (3, None, False)],
)
def test_regressed_compares_the_counts(committed, live, regressed):
    state = CopyState(committed_changes=committed, live_changes=live)
    assert state.regressed is regressed


# --- Pending commits and conflict copies ---------------------------------------------------


def test_a_pending_commit_is_recorded_and_survives_a_restart():
    _create_database(7)
    _clean_at(7, 2)
    workingcopy.mark_pending(7, 3, "snapshots/7/0000000003-abc.sqlite3.z", 0)
    _restart()
    state = workingcopy.read_state(7)
    assert state.pending == {
        "version": 3,
        "key": "snapshots/7/0000000003-abc.sqlite3.z",
        "changes": 0,
    }
    assert (state.base_version, state.committed_changes) == (2, 0)  # nothing else moved

    workingcopy.clear_pending(7)
    state = workingcopy.read_state(7)
    assert state.pending is None
    assert (state.base_version, state.committed_changes) == (2, 0)


def test_a_conflict_copy_is_kept_once_per_base_and_count():
    _create_database(7)
    _clean_at(7, 1)
    _write(7)
    state = workingcopy.read_state(7)
    assert not workingcopy.conflict_already_kept(state)

    workingcopy.mark_conflict_kept(7, state)
    _restart()
    again = workingcopy.read_state(7)
    assert again.conflict_kept == [1, 1]
    assert workingcopy.conflict_already_kept(again)

    _write(7)  # a new write since: this content was never kept
    assert not workingcopy.conflict_already_kept(workingcopy.read_state(7))
    workingcopy.mark_conflict_kept(7, workingcopy.read_state(7))
    assert workingcopy.conflict_already_kept(workingcopy.read_state(7))

    workingcopy.mark_pulled(7, 2, workingcopy.live_changes(7))  # a new base: forgotten
    assert workingcopy.read_state(7).conflict_kept is None
    assert not workingcopy.conflict_already_kept(workingcopy.read_state(7))


# --- The file ---------------------------------------------------------------------------


def test_state_survives_a_restart_in_the_documented_format():
    _create_database(7)
    _write(7, rows=2)
    before = timezone.now()
    workingcopy.mark_committed(7, 3, 2, "inc-1")
    written = workingcopy.read_state(7)
    _restart()

    on_disk = json.loads(workingcopy.state_path(7).read_text())
    assert on_disk == {
        "base_version": 3,
        "committed_changes": 2,
        "incarnation": "inc-1",
        "pending": None,
        "conflict_kept": None,
        "clean_at": on_disk["updated_at"],  # a commit: clean as of this write
        "wal_position": None,  # none given: the next push is a whole image
        "updated_at": on_disk["updated_at"],
    }
    assert before <= datetime.fromisoformat(on_disk["updated_at"]) <= timezone.now()
    assert "dirty" not in on_disk  # never stored: read from the database each time
    assert _stored(workingcopy.read_state(7)) == _stored(written)
    # Written atomically: no temporary file is left behind.
    names = sorted(p.name for p in workingcopy.state_path(7).parent.iterdir())
    assert [n for n in names if "working" in n or "tmp" in n] == ["working.json"]


def test_write_state_round_trips_every_stored_field():
    _create_database(7)
    state = CopyState(
        base_version=12,
        committed_changes=40,
        incarnation="abc",
        pending={"version": 13, "key": "snapshots/7/x", "changes": 41},
        conflict_kept=[12, 44],
        wal_position={"version": 12, "offset": 32},
    )
    before = timezone.now()
    workingcopy.write_state(7, state)
    _restart()
    read = workingcopy.read_state(7)
    assert read == CopyState(**{**state.__dict__, "updated_at": read.updated_at})
    assert before <= datetime.fromisoformat(read.updated_at) <= timezone.now()  # stamped
    assert read.live_changes == 0


@pytest.mark.parametrize(
    ("old", "dirty"),
    [
        ({"base_version": 3, "dirty": True, "generation": 5, "dirty_since": "2025-01-01"}, True),
        ({"base_version": 3, "dirty": False, "generation": 5, "dirty_since": None}, False),
        ({"base_version": 3, "dirty": True}, True),
        ({"base_version": 3}, False),
    ],
)
@pytest.mark.parametrize("counter", [True, False], ids=["counter", "no-counter"])
def test_a_state_file_from_before_the_counter_still_reads(old, dirty, counter):
    _create_database(7, counter=counter)
    path = workingcopy.state_path(7)
    path.write_text(json.dumps(old))

    state = workingcopy.read_state(7)

    assert state.base_version == 3
    assert state.dirty is dirty
    assert state.committed_changes == (None if dirty else 0)
    assert workingcopy.dirty_user_ids() == ([7] if dirty else [])
    # The next update writes the new format, and keeps the unpushed writes unpushed.
    workingcopy.mark_pending(7, 4, "k", None)
    on_disk = json.loads(path.read_text())
    assert "generation" not in on_disk and "dirty" not in on_disk
    assert workingcopy.read_state(7).dirty is dirty


def test_a_state_file_with_unknown_fields_still_reads():
    _create_database(7)
    path = workingcopy.state_path(7)
    path.write_text(json.dumps({"base_version": 3, "committed_changes": 0, "unknown_field": 1}))
    state = workingcopy.read_state(7)
    assert (state.base_version, state.committed_changes, state.dirty) == (3, 0, False)


def test_updates_take_the_state_lock():
    _create_database(7)
    with workingcopy._state_lock(7):
        update = in_thread(workingcopy.mark_pending, 7, 1, "k", 0)
        with pytest.raises(FutureTimeout):
            update.result(timeout=0.3)
        assert workingcopy.read_state(7).pending is None
    update.result(GENEROUS)
    assert workingcopy.read_state(7).pending == {"version": 1, "key": "k", "changes": 0}


def test_concurrent_updates_of_different_fields_are_not_lost():
    _create_database(7)

    def pend():
        for i in range(30):
            workingcopy.mark_pending(7, i, f"k{i}", i)

    def name():
        for i in range(30):
            workingcopy.set_incarnation(7, f"inc-{i}")

    for future in [in_thread(pend), in_thread(name)]:
        future.result(GENEROUS)
    state = workingcopy.read_state(7)
    assert state.pending == {"version": 29, "key": "k29", "changes": 29}
    assert state.incarnation == "inc-29"


# --- Which copies are dirty -----------------------------------------------------------------


def test_dirty_user_ids_lists_only_dirty_copies_in_numeric_order(data_dir):
    for user_id in (10, 2, 33, 6):
        _create_database(user_id)
        _clean_at(user_id, 1)
    _write(10)
    _write(2, rows=2)
    workingcopy.mark_dirty(6)  # forced
    workingcopy.mark_pulled(4, 0, 0)  # state, no database yet: clean
    _create_database(5)  # a database with no state: dirty
    (userdb.users_dir() / "_template").mkdir()  # not a user
    (userdb.users_dir() / "notes").mkdir()
    assert workingcopy.dirty_user_ids() == [2, 5, 6, 10]


def test_dirty_user_ids_with_no_users_folder(data_dir):
    assert not userdb.users_dir().exists()
    assert workingcopy.dirty_user_ids() == []


# --- The copy lock ------------------------------------------------------------------------


def _times_out_on_copy_lock(user_id, timeout) -> float:
    """Expect LockTimeout from a bounded wait; returns how long it took (run in a thread,
    so a wait that ignores its bound fails the test instead of hanging it)."""
    started = time.monotonic()
    with pytest.raises(LockTimeout), workingcopy.copy_lock(user_id, timeout=timeout):
        pass
    return time.monotonic() - started


def test_copy_lock_times_out_behind_a_holder_in_another_thread():
    holding, let_go = threading.Event(), threading.Event()

    def hold():
        with workingcopy.copy_lock(7):
            holding.set()
            assert let_go.wait(GENEROUS)

    holder = in_thread(hold)
    assert holding.wait(GENEROUS)
    took = in_thread(_times_out_on_copy_lock, 7, 0.2).result(GENEROUS)
    assert 0.2 <= took < GENEROUS

    # Without a timeout it waits as long as it takes.
    def wait_then_take():
        with workingcopy.copy_lock(7):
            return time.monotonic()

    waiter = in_thread(wait_then_take)
    with pytest.raises(FutureTimeout):
        waiter.result(timeout=0.3)
    let_go_at = time.monotonic()
    let_go.set()
    holder.result(GENEROUS)
    assert waiter.result(GENEROUS) >= let_go_at
    # And a bounded wait gets it once it is free.
    with workingcopy.copy_lock(7, timeout=0.2):
        pass


HOLD_FLOCK = """
import fcntl, sys
handle = open(sys.argv[1], "a+b")
fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
"""


def test_copy_lock_times_out_behind_a_holder_in_another_process():
    path = userdb.user_dir(7) / ".copy.lock"
    path.parent.mkdir(parents=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_FLOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert in_thread(proc.stdout.readline).result(GENEROUS) == "locked\n"
        took = in_thread(_times_out_on_copy_lock, 7, 0.3).result(GENEROUS)
        assert 0.3 <= took < GENEROUS
        proc.stdin.close()
        assert proc.wait(GENEROUS) == 0
        with workingcopy.copy_lock(7, timeout=GENEROUS):
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(GENEROUS)
        proc.stdout.close()


# --- Through the ORM and a real binding -----------------------------------------------------


@pytest.mark.django_db
def test_a_new_users_copy_starts_clean_and_orm_writes_make_it_dirty(local_store, alice):
    with bound_to_user(alice.pk):
        state = workingcopy.read_state(alice.pk)
        assert (state.base_version, state.dirty) == (0, False)
        assert state.committed_changes == state.live_changes is not None
        start = state.live_changes

        Project.objects.create(name="Cup", aspect_ratio="9:16")
        state = workingcopy.read_state(alice.pk)
        assert state.live_changes == start + 1
        assert state.dirty
        assert workingcopy.dirty_user_ids() == [alice.pk]

        result = sync.push(alice.pk)
    assert (result.status, result.version) == ("ok", 1)
    state = workingcopy.read_state(alice.pk)
    assert (state.base_version, state.dirty) == (1, False)
    assert state.committed_changes == state.live_changes == start + 1
    assert state.incarnation  # the registry's, recorded with the commit
    assert workingcopy.dirty_user_ids() == []
