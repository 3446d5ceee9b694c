"""Pushes that ship segments, through the sync layer and real requests.

What a push uploads after the first one is the WAL frames its writes added; what a new
machine assembles is the latest image and the segments after it. Whenever the chain
cannot be proven unbroken the push is a whole image, so nothing a segment would miss is
ever lost.
"""

import sqlite3
import uuid
from contextlib import closing

import pytest

from projects.models import Project
from projects.tests.helpers import create_project, post_json
from syncstore import sync, userdb, walsegments, workingcopy
from syncstore.binding import bound_to_user
from syncstore.models import SnapshotVersion, SyncState
from syncstore.tests.helpers import (
    new_machine,
    project_names,
    registry,
    snapshot_names,
    write_without_push,
)


def kinds(user):
    return list(
        SnapshotVersion.objects.filter(user=user).order_by("version").values_list("kind", flat=True)
    )


def chain_kinds(user, version):
    row = SyncState(user_id=user.pk, version=version, object_key="", checksum="")
    return [kind for kind, *_ in sync.snapshot_chain(user.pk, row)]


def rename(client, project_id, name):
    response = post_json(client, f"/api/projects/{project_id}", {"name": name}, "patch")
    assert (response.status_code, response["X-Sync-Status"]) == (200, "ok")


def test_a_write_after_the_first_uploads_what_it_changed_not_the_database(
    store, alice, alice_client, tmp_path
):
    with sync.writing(alice.pk):  # about 1.5 MB of projects, committed as one image
        Project.objects.bulk_create(
            Project(name=uuid.uuid4().hex * 6, aspect_ratio="9:16") for _ in range(6000)
        )
    project_id = create_project(alice_client, "Game")["id"]
    image = SnapshotVersion.objects.get(user=alice, version=1)

    rename(client=alice_client, project_id=project_id, name="Game, renamed")

    row = registry(alice)
    assert kinds(alice) == ["image", "segment", "segment"]
    assert row.object_key.endswith(".segment.z")
    assert userdb.database_path(alice.pk).stat().st_size > 1_000_000
    assert row.size_bytes < image.size_bytes / 20
    assert "Game, renamed" in snapshot_names(row, tmp_path)
    assert len(snapshot_names(row, tmp_path)) == 6001


def test_a_new_machine_assembles_the_latest_version_from_image_and_segments(
    store, alice, alice_client, data_dir
):
    project_id = create_project(alice_client, "One")["id"]
    for i in range(4):
        rename(alice_client, project_id, f"One v{i}")
    create_project(alice_client, "Two")
    assert chain_kinds(alice, 6) == ["image", *["segment"] * 5]

    new_machine(data_dir)

    assert alice_client.get("/api/projects").status_code == 200
    assert project_names(alice) == ["One v3", "Two"]
    state = workingcopy.read_state(alice.pk)
    assert (state.base_version, state.dirty) == (6, False)
    # And it writes on top of what it assembled, as a segment again.
    rename(alice_client, project_id, "One, from the new machine")
    assert kinds(alice)[-1] == "segment"
    new_machine(data_dir)
    assert alice_client.get("/api/projects").status_code == 200
    assert project_names(alice) == ["One, from the new machine", "Two"]


def test_a_checkpoint_the_sync_layer_did_not_run_makes_the_next_push_an_image(
    store, alice, alice_client, data_dir
):
    project_id = create_project(alice_client, "One")["id"]
    rename(alice_client, project_id, "One, pushed as a segment")
    write_without_push(alice, "Not pushed yet")
    # Someone folds the WAL into the file (sqlite3 on the command line, say): the write
    # above is no longer in any frame a segment could ship.
    with closing(sqlite3.connect(userdb.database_path(alice.pk))) as shell:
        shell.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    create_project(alice_client, "Three")

    assert kinds(alice) == ["image", "segment", "image"]
    new_machine(data_dir)
    assert alice_client.get("/api/projects").status_code == 200
    assert project_names(alice) == ["Not pushed yet", "One, pushed as a segment", "Three"]


def test_an_image_is_made_after_the_answer_every_few_versions(
    store, settings, alice, alice_client, data_dir
):
    settings.SNAPSHOT_IMAGE_EVERY = 3
    project_id = create_project(alice_client, "One")["id"]
    for i in range(6):
        rename(alice_client, project_id, f"v{i + 2}")

    with_image = SnapshotVersion.objects.filter(user=alice).exclude(image_key="")
    assert list(with_image.order_by("version").values_list("version", flat=True)) == [1, 4, 7]
    assert kinds(alice) == ["image", *["segment"] * 6]  # what each commit uploaded
    assert chain_kinds(alice, 7) == ["image"]
    assert chain_kinds(alice, 6) == ["image", "segment", "segment"]  # from v4's image
    new_machine(data_dir)
    assert alice_client.get("/api/projects").status_code == 200
    assert project_names(alice) == ["v7"]


def test_the_chain_survives_a_crash_between_the_commit_and_working_json(
    local_store, alice, alice_client, monkeypatch
):
    project_id = create_project(alice_client, "One")["id"]
    rename(alice_client, project_id, "Two")

    def crash(*args, **kwargs):
        raise SystemExit("killed after the commit")

    monkeypatch.setattr(workingcopy, "mark_committed", crash)
    with pytest.raises(SystemExit):
        rename(alice_client, project_id, "Three")
    monkeypatch.undo()
    # The restart. A killed process leaves the WAL as it was; a connection held open
    # meanwhile stands in for that (closing the last one would checkpoint it).
    with closing(sqlite3.connect(userdb.database_path(alice.pk))) as survivor:
        survivor.execute("SELECT count(*) FROM sqlite_master").fetchone()
        userdb.forget_all()

        rename(alice_client, project_id, "Four")

    assert registry(alice).version == 4
    assert kinds(alice) == ["image", "segment", "segment", "segment"]


def test_with_segments_off_every_push_is_an_image(store, settings, alice, alice_client):
    settings.SYNC_SEGMENTS = False
    project_id = create_project(alice_client, "One")["id"]
    rename(alice_client, project_id, "Two")
    assert kinds(alice) == ["image", "image"]


def test_a_copy_pulled_from_the_store_is_where_its_next_segment_starts(
    store, alice, alice_client, data_dir
):
    create_project(alice_client, "One")
    new_machine(data_dir)
    with bound_to_user(alice.pk):  # restored from the store on first use
        pass
    position = walsegments.WalPosition.from_dict(workingcopy.read_state(alice.pk).wal_position)
    assert position is not None and position.version == 1
    create_project(alice_client, "Two")
    assert kinds(alice) == ["image", "segment"]


def test_no_image_is_recorded_for_a_version_the_copy_no_longer_holds_exactly(
    store, settings, alice, alice_client
):
    from syncstore import compaction

    settings.SNAPSHOT_IMAGE_EVERY = 100  # none made by the requests themselves
    project_id = create_project(alice_client, "One")["id"]
    rename(alice_client, project_id, "Two")
    write_without_push(alice, "Unpushed")  # v2 plus a write: not v2 any more

    settings.SNAPSHOT_IMAGE_EVERY = 1
    assert compaction.image_due(alice.pk, 2)
    assert compaction.make_image_if_due(alice.pk, 2) is False
    assert not SnapshotVersion.objects.filter(user=alice, version=2).exclude(image_key="")

    rename(alice_client, project_id, "Three")  # v3 (with the unpushed write); its image
    assert SnapshotVersion.objects.get(user=alice, version=3).image_key
    assert chain_kinds(alice, 3) == ["image"]
