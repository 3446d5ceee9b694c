"""The working copy's persistent state: base version, dirty flag, write generation."""

import json

import pytest

from syncstore import userdb, workingcopy
from syncstore.workingcopy import CopyState


@pytest.fixture(autouse=True)
def no_periodic_retry(settings):
    # The background retry must not push (and clean) the copies these tests inspect.
    settings.SYNC_RETRY_INTERVAL = 0


def _restart():
    """Forget everything this process holds in memory; only files remain."""
    userdb.forget_all()


def _touch_database(user_id):
    path = userdb.database_path(user_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_a_user_with_no_copy_is_clean_at_version_0():
    assert workingcopy.read_state(7) == CopyState()
    assert workingcopy.read_state(7) == CopyState(base_version=0, dirty=False, generation=0)
    assert not workingcopy.state_path(7).exists()


def test_state_survives_a_restart():
    generation = workingcopy.mark_dirty(7)
    written = workingcopy.read_state(7)
    _restart()

    on_disk = json.loads(workingcopy.state_path(7).read_text())
    assert on_disk == {
        "base_version": 0,
        "dirty": True,
        "generation": generation,
        "dirty_since": written.dirty_since,
    }
    assert workingcopy.read_state(7) == written
    # Written atomically: no temporary file is left behind.
    assert sorted(p.name for p in workingcopy.state_path(7).parent.iterdir()) == [
        ".state.lock",
        "working.json",
    ]


def test_write_state_round_trips_every_field():
    state = CopyState(base_version=12, dirty=True, generation=40, dirty_since="2025-01-01T00:00:00")
    workingcopy.write_state(7, state)
    _restart()
    assert workingcopy.read_state(7) == state


def test_a_database_without_state_counts_as_holding_unpushed_writes():
    _touch_database(7)
    state = workingcopy.read_state(7)
    assert state.dirty
    assert state.base_version == 0
    assert state.generation == 1
    assert workingcopy.dirty_user_ids() == [7]
    # The next write goes on from there.
    assert workingcopy.mark_dirty(7) == 2


def test_mark_dirty_bumps_the_generation_and_keeps_the_first_dirty_time():
    first = workingcopy.mark_dirty(7)
    since = workingcopy.read_state(7).dirty_since
    second = workingcopy.mark_dirty(7)
    assert second == first + 1
    state = workingcopy.read_state(7)
    assert state.dirty
    assert state.dirty_since == since


def test_mark_committed_clears_dirty_when_nothing_was_written_since():
    generation = workingcopy.mark_dirty(7)
    returned = workingcopy.mark_committed(7, 1, generation)
    _restart()
    state = workingcopy.read_state(7)
    assert state == returned
    assert (state.base_version, state.dirty, state.dirty_since) == (1, False, None)
    assert state.generation == generation


def test_mark_committed_keeps_dirty_when_a_write_came_after_the_snapshot():
    snapshot_generation = workingcopy.mark_dirty(7)
    since = workingcopy.read_state(7).dirty_since
    workingcopy.mark_dirty(7)  # a write landed while the snapshot was uploaded

    state = workingcopy.mark_committed(7, 1, snapshot_generation)

    assert state.base_version == 1  # the snapshot is committed...
    assert state.dirty  # ...but the later write still has to be pushed
    assert state.dirty_since == since
    assert workingcopy.read_state(7) == state
    assert workingcopy.dirty_user_ids() == [7]


def test_mark_pulled_sets_the_version_and_clears_dirty():
    generation = workingcopy.mark_dirty(7)
    workingcopy.mark_pulled(7, 5)
    state = workingcopy.read_state(7)
    assert (state.base_version, state.dirty, state.dirty_since) == (5, False, None)
    assert state.generation == generation  # generations only ever grow


def test_dirty_user_ids_lists_only_dirty_copies_in_numeric_order(data_dir):
    for user_id in (10, 2, 33):
        workingcopy.mark_dirty(user_id)
    workingcopy.mark_pulled(33, 1)  # clean
    workingcopy.mark_pulled(4, 0)  # clean, with state
    _touch_database(5)  # a database with no state: dirty
    (userdb.users_dir() / "_template").mkdir()  # not a user
    (userdb.users_dir() / "notes").mkdir()
    assert workingcopy.dirty_user_ids() == [2, 5, 10]


def test_dirty_user_ids_with_no_users_folder(data_dir):
    assert not userdb.users_dir().exists()
    assert workingcopy.dirty_user_ids() == []


@pytest.mark.parametrize("extra", [{}, {"unknown_field": 1}])
def test_state_files_with_missing_or_unknown_fields_still_read(extra):
    path = workingcopy.state_path(7)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"base_version": 3, "dirty": True, **extra}))
    assert workingcopy.read_state(7) == CopyState(base_version=3, dirty=True)
