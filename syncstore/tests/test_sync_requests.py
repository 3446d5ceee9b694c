"""Durability through real requests: snapshots in a real S3 endpoint (moto) or a folder."""

import shutil

import pytest

from projects.models import Project
from projects.tests.helpers import create_project, post_json
from syncstore import keys, operations, sync, userdb, workingcopy
from syncstore.binding import bound_to_user
from syncstore.models import SyncState
from syncstore.stores import get_store
from syncstore.tests.helpers import new_machine, project_names, registry, snapshot_names

pytestmark = pytest.mark.django_db


def test_a_fresh_user_is_at_version_0_and_the_first_write_commits_version_1(
    store, alice, alice_client, tmp_path
):
    response = alice_client.get("/api/sync/status")
    assert response.json()["version"] == 0
    assert response.json()["status"] == "ok"
    assert registry(alice) is None

    response = post_json(alice_client, "/api/projects", {"name": "Cup", "aspect_ratio": "9:16"})

    assert response.status_code == 201
    assert response["X-Sync-Status"] == "ok"
    row = registry(alice)
    assert row.version == 1
    assert row.object_key.startswith(f"snapshots/{alice.pk}/0000000001-")
    assert snapshot_names(row, tmp_path) == ["Cup"]
    assert workingcopy.read_state(alice.pk).dirty is False


def test_reads_ask_the_store_nothing(s3_store, alice, alice_client):
    calls = []
    s3_store.client.meta.events.register(
        "before-call.s3", lambda **kw: calls.append(kw["model"].name)
    )

    for path in ["/api/projects", "/api/sync/status", "/", "/api/projects"] * 5:
        assert alice_client.get(path).status_code == 200
    assert calls == []  # twenty requests, not one version check

    post_json(alice_client, "/api/projects", {"name": "Cup", "aspect_ratio": "9:16"})
    assert "PutObject" in calls
    assert set(calls) <= {"PutObject", "ListObjectsV2"}
    assert registry(alice).version == 1


def test_every_api_response_says_the_sync_status(store, alice_client):
    project = create_project(alice_client)
    for response in [
        alice_client.get("/api/projects"),
        alice_client.get(f"/api/projects/{project['id']}"),
        alice_client.get("/api/nothing"),
        post_json(alice_client, "/api/projects", {"name": ""}),
    ]:
        assert response["X-Sync-Status"] == "ok"


def test_a_new_machine_restores_the_users_data_exactly(store, alice, alice_client, data_dir):
    for name in ["Final", "Semi", "Quarter"]:
        create_project(alice_client, name)
    first = alice_client.get("/api/projects").json()

    new_machine(data_dir)
    assert not userdb.database_path(alice.pk).exists()

    assert alice_client.get("/api/projects").json() == first
    assert workingcopy.read_state(alice.pk).base_version == 3


def test_a_store_outage_keeps_the_write_and_a_retry_commits_it(
    s3_store, s3_outage, alice, alice_client, data_dir, tmp_path
):
    create_project(alice_client, "Before")
    with s3_outage():
        response = post_json(
            alice_client, "/api/projects", {"name": "During", "aspect_ratio": "9:16"}
        )
        assert response.status_code == 201
        assert response["X-Sync-Status"] == "failed"
        status = alice_client.get("/api/sync/status").json()
        assert status["status"] == "failed"
        assert status["dirty"] is True
        assert "snapshot store" in status["last_error"]
        assert registry(alice).version == 1  # nothing committed

    # A restart: nothing in memory survives, the working copy and its state do.
    userdb.forget_all()
    assert alice_client.get("/api/sync/status").json()["status"] == "failed"
    assert project_names(alice) == ["Before", "During"]

    response = alice_client.post("/api/sync/retry")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response["X-Sync-Status"] == "ok"
    row = registry(alice)
    assert row.version == 2
    assert snapshot_names(row, tmp_path) == ["Before", "During"]


def test_a_read_after_a_failed_push_says_failed_until_a_push_succeeds(
    s3_store, s3_outage, alice, alice_client
):
    """A read answers what the badge already says: a write whose push failed is
    "failed" (not yet backed up), never "pending" as if a save were just under way."""
    create_project(alice_client, "Before")
    with s3_outage():
        create_project(alice_client, "During")
        assert alice_client.get("/api/projects")["X-Sync-Status"] == "failed"
    assert alice_client.get("/api/projects")["X-Sync-Status"] == "failed"
    assert alice_client.post("/api/sync/retry").json()["status"] == "ok"
    assert alice_client.get("/api/projects")["X-Sync-Status"] == "ok"


def test_the_next_write_after_an_outage_pushes_both(
    s3_store, s3_outage, alice, alice_client, tmp_path
):
    with s3_outage():
        create_project(alice_client, "Offline")
    response = post_json(alice_client, "/api/projects", {"name": "Online", "aspect_ratio": "1:1"})
    assert response["X-Sync-Status"] == "ok"
    row = registry(alice)
    assert (row.version, row.status) == (1, "ok")
    # Both writes are in the one committed version, read back from the store.
    assert snapshot_names(row, tmp_path) == ["Offline", "Online"]


def test_a_periodic_retry_commits_dirty_copies(s3_store, s3_outage, alice, alice_client):
    with s3_outage():
        create_project(alice_client, "Offline")
        assert sync.retry_dirty_copies()[0].status == "failed"
    results = sync.retry_dirty_copies()
    assert [(r.user_id, r.status, r.version) for r in results] == [(alice.pk, "ok", 1)]
    assert sync.retry_dirty_copies() == []


def test_a_store_error_on_first_access_is_not_a_new_user(
    s3_store, s3_outage, alice, alice_client, data_dir
):
    create_project(alice_client, "Precious")
    committed = registry(alice)
    new_machine(data_dir)

    with s3_outage():
        response = alice_client.get("/api/projects")
        assert response.status_code == 503
        assert response.json()["code"] == "sync_unavailable"
        response = post_json(alice_client, "/api/projects", {"name": "x", "aspect_ratio": "9:16"})
        assert response.status_code == 503
    # No empty database was made, so nothing could ever be committed over the data.
    assert not userdb.database_path(alice.pk).exists()
    row = registry(alice)
    assert (row.version, row.object_key) == (committed.version, committed.object_key)

    assert [p["name"] for p in alice_client.get("/api/projects").json()["projects"]] == ["Precious"]


def test_a_corrupt_snapshot_is_refused_and_the_good_copy_stays_usable(
    store, alice, alice_client, data_dir, tmp_path
):
    create_project(alice_client, "Good")
    good_copy = tmp_path / "machine-a"
    shutil.copytree(userdb.user_dir(alice.pk), good_copy)  # machine A stays at version 1
    create_project(alice_client, "Newer")  # version 2, committed "elsewhere"
    row = registry(alice)
    broken = tmp_path / "broken"
    broken.write_bytes(b"\x78\x01" + b"not a snapshot" * 100)
    get_store().put_file(row.object_key, broken)

    # Machine A is behind; its pull of version 2 is refused, its version 1 still reads.
    userdb.forget_all()
    shutil.rmtree(userdb.user_dir(alice.pk))
    shutil.copytree(good_copy, userdb.user_dir(alice.pk))
    response = alice_client.get("/api/projects")
    assert response.status_code == 200
    assert [p["name"] for p in response.json()["projects"]] == ["Good"]
    assert response["X-Sync-Status"] == "failed"
    assert "corrupt" in alice_client.get("/api/sync/status").json()["last_error"]
    # ...but nothing is written on a copy that could not be brought up to date.
    response = post_json(alice_client, "/api/projects", {"name": "x", "aspect_ratio": "9:16"})
    assert response.status_code == 503
    assert registry(alice).version == 2

    # A new machine has nothing to fall back on: a clear error, no empty database.
    new_machine(data_dir)
    response = alice_client.get("/api/projects")
    assert response.status_code == 503
    assert "corrupt" in response.json()["error"]
    assert not userdb.database_path(alice.pk).exists()


def test_a_stale_writer_is_refused_and_its_copy_kept(store, alice, alice_client, tmp_path):
    create_project(alice_client, "Shared")
    stale = tmp_path / "stale-machine"
    shutil.copytree(userdb.user_dir(alice.pk), stale)  # another machine, at version 1
    create_project(alice_client, "Committed elsewhere")  # version 2
    committed = registry(alice)

    # The stale machine writes without the lease (on purpose) and pushes.
    userdb.forget_all()
    shutil.rmtree(userdb.user_dir(alice.pk))
    shutil.copytree(stale, userdb.user_dir(alice.pk))
    with bound_to_user(alice.pk):
        Project.objects.create(name="Stale write", aspect_ratio="9:16")
    result = sync.push(alice.pk)

    assert result.status == "conflict"
    row = registry(alice)
    assert (row.version, row.object_key, row.checksum) == (
        committed.version,
        committed.object_key,
        committed.checksum,
    )
    assert row.status == "conflict"
    # The working copy follows the committed version...
    assert project_names(alice) == ["Committed elsewhere", "Shared"]
    # ...and the refused write is kept, locally and in the store.
    copies = operations.conflict_copies(alice.pk)
    assert len(copies) == 1
    assert copies[0]["local"] and copies[0]["stored"]
    assert alice_client.get("/api/sync/status").json()["status"] == "conflict"

    # An operator restores it: it becomes the next version.
    restored = operations.restore_conflict_copy(alice.pk, copies[0]["name"])
    assert restored.status == "ok"
    assert registry(alice).version == 3
    assert project_names(alice) == ["Shared", "Stale write"]


def test_old_versions_are_garbage_collected(store, settings, alice, alice_client):
    settings.SNAPSHOT_RETENTION = 2
    settings.SNAPSHOT_IMAGE_EVERY = 2
    for i in range(4):
        create_project(alice_client, f"p{i}")
    # v1 an image, v2-v4 segments; an image of v3 was made after its answer. Retained:
    # v3 and v4, so v3's image and the segments after it; nothing older.
    stored = get_store().list_keys(keys.snapshot_prefix(alice.pk))
    assert sorted(keys.version_of_key(k) for k in stored) == [3, 3, 4]
    assert registry(alice).object_key.endswith(".segment.z")
    assert registry(alice).object_key in stored
    assert operations.verify(alice.pk).ok


def test_retention_keeps_the_image_a_retained_version_starts_from(
    store, settings, alice, alice_client
):
    settings.SNAPSHOT_RETENTION = 2
    for i in range(4):
        create_project(alice_client, f"p{i}")
    # No image since v1: v3 (the oldest retained) is v1's image and two segments.
    stored = get_store().list_keys(keys.snapshot_prefix(alice.pk))
    assert sorted(keys.version_of_key(k) for k in stored) == [1, 2, 3, 4]
    row = registry(alice)
    for version in (3, 4):
        old = SyncState(user_id=alice.pk, version=version, object_key="", checksum="")
        assert [kind for kind, *_ in sync.snapshot_chain(alice.pk, old)] == [
            "image",
            *["segment"] * (version - 1),
        ]
    assert operations.verify(alice.pk).ok and row.version == 4
