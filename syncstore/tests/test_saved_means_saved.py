"""One test per way the first release said "saved" when it was not (issue "Saved means
saved"). Each reproduces the failure through the real request path or the real sync
functions, on real SQLite files and a real store, and fails without its fix.
"""

import io
import shutil
import sqlite3
import threading
import time

import pytest
from django.db import connections

from projects import media
from projects.models import Project
from projects.tests.helpers import create_project, post_json, upload
from syncstore import keys, leases, sync, userdb, workingcopy
from syncstore.binding import bound_to_user
from syncstore.models import SnapshotVersion, SyncState
from syncstore.tests.helpers import another_machine_commits, registry

pytestmark = pytest.mark.django_db(transaction=True)


def committed_names(user, data_dir):
    """Project names in the committed snapshot, read on a machine with no copy."""
    userdb.forget_all()
    shutil.rmtree(userdb.users_dir(), ignore_errors=True)
    with bound_to_user(user.pk):
        return sorted(Project.objects.values_list("name", flat=True))


# --- 1. One fenced writer across machines --------------------------------------------


def test_a_writer_whose_lease_was_taken_over_cannot_commit(local_store, alice, alice_client):
    create_project(alice_client, "Before")
    with leases.lease(alice.pk) as held, bound_to_user(alice.pk):
        Project.objects.create(name="Late", aspect_ratio="9:16")
        # The lease expires while this writer stalls, and another machine claims it.
        SyncState.objects.filter(user=alice).update(
            lease_holder="other-machine:1:ff", fence=held.fence + 1
        )
        result = sync.push(alice.pk)
    assert result.status == "conflict"
    assert registry(alice).version == 1
    with bound_to_user(alice.pk):
        assert list(Project.objects.values_list("name", flat=True)) == ["Before"]


def test_every_acquisition_moves_the_fence_and_the_commit_checks_it(local_store, alice):
    with leases.lease(alice.pk) as first:
        pass
    with leases.lease(alice.pk) as second:
        assert second.fence == first.fence + 1
        assert registry(alice).lease_holder == second.token
    assert registry(alice).lease_holder == ""


# --- 2. The answer describes its own request -------------------------------------------


def test_a_refused_write_answers_409_and_unrelated_answers_stay_ok(
    local_store, alice, alice_client, tmp_path
):
    create_project(alice_client, "Shared")
    another_machine_commits(alice, alice_client, tmp_path, "Elsewhere")
    # This machine's copy writes without a request (a stale process) and is refused:
    with bound_to_user(alice.pk):
        Project.objects.create(name="Stale", aspect_ratio="9:16")
    with leases.lease(alice.pk):
        SyncState.objects.filter(user=alice).update(fence=999)  # another writer took over
        refused = None
        with bound_to_user(alice.pk):
            refused = sync.push(alice.pk)
    assert refused.status == "conflict"

    # A later write is committed and says ok, not the account's sticky conflict.
    response = create_project_response(alice_client, "After")
    assert (response.status_code, response["X-Sync-Status"]) == (201, "ok")
    assert alice_client.get("/api/projects")["X-Sync-Status"] == "ok"
    # The conflict copy waiting to be seen is an account-level fact.
    assert alice_client.get("/api/sync/status").json()["status"] == "conflict"


def create_project_response(client, name):
    return post_json(client, "/api/projects", {"name": name, "aspect_ratio": "9:16"})


def test_a_write_refused_by_the_commit_answers_409(local_store, alice, alice_client, monkeypatch):
    create_project(alice_client, "First")
    real_commit = sync._commit

    def someone_else_commits_first(user_id, expected, lease, key, packed):
        SyncState.objects.filter(user_id=user_id).update(version=expected + 1)
        return real_commit(user_id, expected, lease, key, packed)

    monkeypatch.setattr(sync, "_commit", someone_else_commits_first)
    response = create_project_response(alice_client, "Refused")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert response["X-Sync-Status"] == "conflict"


# --- 5. Never a stale -wal under a downloaded database ---------------------------------


def test_a_stale_wal_is_never_replayed_onto_a_downloaded_copy(
    local_store, alice, alice_client, data_dir
):
    create_project(alice_client, "Kept")
    path = userdb.database_path(alice.pk)
    userdb.forget_all()
    # A process wrote "Ghost" and was killed before its WAL was checkpointed.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(
        "INSERT INTO projects_project (name, aspect_ratio, current_mode, created_at, "
        "updated_at, final_resolution, final_quality, title_card) VALUES ('Ghost', '9:16', "
        "'framing', '2026-01-01', '2026-01-01', '1080p', 'standard', '{}')"
    )
    conn.commit()
    stale_wal = path.with_name(path.name + "-wal").read_bytes()
    conn.close()
    # An operator removes the database to force a download; the -wal stays behind.
    path.unlink()
    path.with_name(path.name + "-shm").unlink(missing_ok=True)
    path.with_name(path.name + "-wal").write_bytes(stale_wal)

    names = [p["name"] for p in alice_client.get("/api/projects").json()["projects"]]
    assert names == ["Kept"]
    assert list((userdb.user_dir(alice.pk) / "stale").iterdir())


# --- 6/7. Power loss: the copy is as durable as the claim ------------------------------


def test_user_databases_sync_every_commit(alice):
    with bound_to_user(alice.pk) as binding, connections[binding.alias].cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 2  # FULL


def test_a_copy_that_lost_committed_writes_is_pulled_before_anything_is_written(
    local_store, alice, alice_client, tmp_path
):
    create_project(alice_client, "One")
    userdb.forget_all()
    before = tmp_path / "before.sqlite3"
    shutil.copyfile(userdb.database_path(alice.pk), before)
    create_project(alice_client, "Acknowledged")  # committed as version 2
    # A power cut takes the last transaction with it: the file is as it was before.
    userdb.forget_all()
    shutil.copyfile(before, userdb.database_path(alice.pk))

    create_project(alice_client, "Next")
    assert committed_names(alice, None) == ["Acknowledged", "Next", "One"]


# --- 8. A crash between the commit and working.json ------------------------------------


def test_a_machine_that_crashed_after_committing_recognises_its_own_commit(
    local_store, alice, alice_client, monkeypatch
):
    create_project(alice_client, "One")

    def crash(*args, **kwargs):
        raise SystemExit("killed after the commit")

    monkeypatch.setattr(workingcopy, "mark_committed", crash)
    with pytest.raises(SystemExit):
        create_project(alice_client, "Two")
    monkeypatch.undo()
    userdb.forget_all()  # the restart
    assert registry(alice).version == 2

    response = create_project_response(alice_client, "Three")
    assert (response.status_code, response["X-Sync-Status"]) == (201, "ok")
    assert registry(alice).version == 3
    assert registry(alice).status == "ok"
    assert SnapshotVersion.objects.filter(user=alice).count() == 3
    assert alice_client.get("/api/sync/status").json()["status"] == "ok"


# --- 10. No lease held while a clip is stored ------------------------------------------


def test_an_upload_being_stored_does_not_block_other_saves(
    local_store, settings, alice, alice_client, game_clip_path, monkeypatch
):
    settings.LEASE_WAIT_SECONDS = 1
    project_id = create_project(alice_client, "Game")["id"]
    storing, release = threading.Event(), threading.Event()
    real_save = media.save

    def slow_save(name, content):
        storing.set()
        release.wait(10)
        return real_save(name, content)

    monkeypatch.setattr(media, "save", slow_save)
    answers = {}
    uploader = threading.Thread(
        target=lambda: answers.update(upload=upload(alice_client, project_id, game_clip_path))
    )
    uploader.start()
    try:
        assert storing.wait(10)
        rename = post_json(
            alice_client, f"/api/projects/{project_id}", {"name": "Renamed"}, method="patch"
        )
        assert (rename.status_code, rename["X-Sync-Status"]) == (200, "ok")
    finally:
        release.set()
        uploader.join(20)
    assert answers["upload"].status_code == 201
    assert answers["upload"]["X-Sync-Status"] == "ok"


# --- 11. One conflict copy per base; bounded waits -------------------------------------


def test_reads_of_a_stale_dirty_copy_keep_one_conflict_copy(
    s3_store, s3_outage, alice, alice_client, tmp_path
):
    create_project(alice_client, "Shared")
    another_machine_commits(alice, alice_client, tmp_path, "Elsewhere")
    with bound_to_user(alice.pk):
        Project.objects.create(name="Unpushed", aspect_ratio="9:16")
    with s3_outage():
        for _ in range(5):
            assert alice_client.get("/api/projects")["X-Sync-Status"] == "failed"
    assert len(list((userdb.user_dir(alice.pk) / "conflicts").iterdir())) == 1


def test_a_read_waiting_for_a_busy_copy_answers_503_in_bounded_time(
    local_store, settings, alice, alice_client, tmp_path
):
    settings.COPY_LOCK_WAIT_SECONDS = 1
    create_project(alice_client, "Shared")
    another_machine_commits(alice, alice_client, tmp_path, "Elsewhere")
    holding, release = threading.Event(), threading.Event()

    def hold_copy_lock():
        with workingcopy.copy_lock(alice.pk):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_copy_lock)
    holder.start()
    try:
        assert holding.wait(5)
        started = time.monotonic()
        response = alice_client.get("/api/projects")
        assert response.status_code == 503
        assert response.json()["code"] == "busy"
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join()


# --- 12. A reused user id never sees the previous owner's data -------------------------


def test_a_reused_user_id_is_not_served_the_previous_owners_copy(
    local_store, alice, alice_client, django_user_model
):
    create_project(alice_client, "Alice's secret")
    user_id = alice.pk
    userdb.forget_all()
    # The central database is reset: the id comes back for someone else, and the old
    # registry row with it is gone.
    SyncState.objects.filter(user_id=user_id).delete()
    SyncState.objects.create(user_id=user_id)  # the new account's own row

    assert alice_client.get("/api/projects").json()["projects"] == []
    assert list((userdb.user_dir(user_id) / "foreign").iterdir())


# --- 13. A snapshot from an older schema is migrated on install ------------------------


def test_a_pulled_snapshot_without_the_change_counter_is_upgraded_on_install(
    local_store, alice, alice_client, tmp_path
):
    create_project(alice_client, "Shared")
    userdb.forget_all()
    here = tmp_path / "here"
    shutil.copytree(userdb.user_dir(alice.pk), here)
    # Another machine, running an older release, commits a copy without the counter.
    path = userdb.database_path(alice.pk)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE syncstore_changes")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.commit()
    conn.close()
    workingcopy.mark_dirty(alice.pk)
    with leases.lease(alice.pk), bound_to_user(alice.pk):
        assert sync.push(alice.pk).ok
    userdb.forget_all()
    shutil.rmtree(userdb.user_dir(alice.pk))
    shutil.copytree(here, userdb.user_dir(alice.pk))

    response = create_project_response(alice_client, "After the pull")
    assert (response.status_code, response["X-Sync-Status"]) == (201, "ok")
    assert not workingcopy.read_state(alice.pk).dirty


# --- 4. Media follow the committed data ------------------------------------------------


def media_exists(name):
    from django.core.files.storage import default_storage

    return default_storage.exists(name)


def test_a_deletion_that_was_never_committed_keeps_the_clips_file(
    local_store, s3_outage, alice, alice_client, game_clip_path, tmp_path, settings
):
    settings.SNAPSHOT_RETENTION = 1
    project_id = create_project(alice_client, "Game")["id"]
    clip = upload(alice_client, project_id, game_clip_path).json()
    name = clip["url"].removeprefix("/media/")
    here = tmp_path / "this-machine"
    userdb.forget_all()
    shutil.copytree(userdb.user_dir(alice.pk), here)
    # This machine deletes the clip but cannot commit (the snapshot store is cut)...
    settings.SNAPSHOT_LOCAL_DIR = tmp_path / "cut"
    (tmp_path / "cut").write_text("not a folder: every snapshot upload fails")
    response = alice_client.delete(f"/api/projects/{project_id}/clips/{clip['id']}")
    assert (response.status_code, response["X-Sync-Status"]) == (204, "failed")
    assert media_exists(name)
    # ...and another machine commits first: the committed data still lists the clip.
    settings.SNAPSHOT_LOCAL_DIR = local_store.root
    userdb.forget_all()
    shutil.rmtree(userdb.user_dir(alice.pk))
    shutil.copytree(here, userdb.user_dir(alice.pk))
    create_project(alice_client, "Elsewhere")
    detail = alice_client.get(f"/api/projects/{project_id}").json()
    assert [c["id"] for c in detail["clips"]] == [clip["id"]]
    assert alice_client.get(clip["url"]).status_code == 200


def test_a_committed_deletion_keeps_the_file_while_a_retained_version_needs_it(
    local_store, alice, alice_client, game_clip_path, settings
):
    settings.SNAPSHOT_RETENTION = 3
    project_id = create_project(alice_client, "Game")["id"]
    clip = upload(alice_client, project_id, game_clip_path).json()
    name = clip["url"].removeprefix("/media/")
    alice_client.delete(f"/api/projects/{project_id}/clips/{clip['id']}")  # version 3
    kept_for = []
    for i in range(3):
        kept_for.append(media_exists(name))
        create_project(alice_client, f"Later {i}")  # versions 4, 5, 6
    # Versions 1-2 reference the file; it goes once the oldest retained version is 3.
    assert kept_for == [True, True, False]
    assert not media_exists(name)


def test_a_deleted_accounts_data_is_purged_everywhere_after_the_grace_period(
    s3_store, alice, alice_client, bob_client, game_clip_path, settings, moto_client
):
    from django.core.management import call_command

    from syncstore.models import DeletedAccount

    project_id = create_project(alice_client, "Game")["id"]
    clip = upload(alice_client, project_id, game_clip_path).json()
    create_project(bob_client, "Bob's")
    user_id = alice.pk
    alice.delete()
    tombstone = DeletedAccount.objects.get(user_id=user_id)
    assert tombstone.username == "alice" and tombstone.incarnation

    settings.ACCOUNT_PURGE_GRACE_SECONDS = 3600
    call_command("purgeaccounts", stdout=io.StringIO(), stderr=io.StringIO())
    assert userdb.user_dir(user_id).exists()  # still recoverable by an operator
    assert media_exists(clip["url"].removeprefix("/media/"))

    settings.ACCOUNT_PURGE_GRACE_SECONDS = 0
    call_command("purgeaccounts", stdout=io.StringIO(), stderr=io.StringIO())
    assert not userdb.user_dir(user_id).exists()
    assert not media_exists(clip["url"].removeprefix("/media/"))
    assert s3_store.list_keys(keys.snapshot_prefix(user_id)) == []
    assert DeletedAccount.objects.get(user_id=user_id).purged_at is not None
    # Another account's data is untouched.
    assert [p["name"] for p in bob_client.get("/api/projects").json()["projects"]] == ["Bob's"]


def test_an_upload_that_cannot_take_the_lease_answers_503_and_keeps_no_file(
    local_store, settings, alice, alice_client, game_clip_path
):
    from projects.tests.helpers import media_files

    settings.LEASE_WAIT_SECONDS = 0
    project_id = create_project(alice_client, "Game")["id"]
    held = leases.Lease.acquire(alice.pk, wait=0, ttl=30)  # another writer, elsewhere
    try:
        response = upload(alice_client, project_id, game_clip_path)
    finally:
        held.release()
    assert response.status_code == 503
    assert response.json()["code"] == "busy"
    assert media_files(settings) == []


def test_an_upload_refused_for_a_stale_copy_is_a_503_not_someone_elses_409(
    s3_store, s3_outage, alice, alice_client, game_clip_path, tmp_path
):
    """The copy holds an earlier write whose push failed, another machine has committed
    since, and the store is unreachable: the upload cannot be written (503). The earlier
    write's fate (a conflict copy) is not this request's answer."""
    project_id = create_project(alice_client, "Shared")["id"]
    another_machine_commits(alice, alice_client, tmp_path, "Elsewhere")
    with bound_to_user(alice.pk):
        Project.objects.create(name="Unpushed", aspect_ratio="9:16")
    with s3_outage():
        response = upload(alice_client, project_id, game_clip_path)
    assert response.status_code == 503
    assert response.json()["code"] == "sync_unavailable"
    assert response["X-Sync-Status"] == "pending"


def test_a_writes_path_to_its_answer_costs_one_store_request(
    local_store, alice, alice_client, settings, monkeypatch
):
    """Retention cleanup (old objects, history rows, media) runs once the answer is sent."""
    from syncstore import retention
    from syncstore.stores import LocalSnapshotStore

    settings.SNAPSHOT_RETENTION = 2
    settings.SNAPSHOT_IMAGE_EVERY = 1  # an image of every version, after its answer
    project_id = create_project(alice_client, "Game")["id"]
    for i in range(3):
        post_json(alice_client, f"/api/projects/{project_id}", {"name": f"v{i}"}, "patch")
    calls = []
    for method in ("put_file", "get_file", "delete", "list_keys", "exists"):
        real = getattr(LocalSnapshotStore, method)

        def spy(self, *args, _real=real, _name=method, **kwargs):
            calls.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(LocalSnapshotStore, method, spy)
    real_after_commits = retention.after_commits

    def after_the_answer(pending):
        calls.append("-- answer sent --")
        real_after_commits(pending)

    monkeypatch.setattr(retention, "after_commits", after_the_answer)
    response = post_json(alice_client, f"/api/projects/{project_id}", {"name": "v9"}, "patch")

    assert response["X-Sync-Status"] == "ok"
    assert calls[: calls.index("-- answer sent --")] == ["put_file"]
    assert "delete" in calls[calls.index("-- answer sent --") :]
    # v4 and v5 are retained: each one's segment and its image.
    stored = local_store.list_keys(keys.snapshot_prefix(alice.pk))
    assert sorted(keys.version_of_key(k) for k in stored) == [4, 4, 5, 5]
