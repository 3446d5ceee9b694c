"""Version history (syncstore/history.py and the /history/ pages): the retained versions
with their counts and changes, one version read-only, and restoring one as a new
committed version, with real user databases, the real store and real media files.
"""

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from projects.models import Clip, HighlightRegion
from projects.tests.helpers import create_project, store_media
from syncstore import history, sync, workingcopy
from syncstore.binding import bound_to_user
from syncstore.models import MediaTombstone, SnapshotVersion, SyncState, VersionSummary
from syncstore.tests.helpers import (
    committed_database,
    new_machine,
    project_names,
    registry,
    snapshot_names,
    write_without_push,
)

pytestmark = pytest.mark.django_db

USER_TABLES = ("projects_project", "projects_clip", "projects_highlightregion", "games_game")
CROP = [
    {"time": 0.0, "x": 0, "y": 0, "width": 100, "height": 178},
    {"time": 1.0, "x": 10, "y": 0, "width": 100, "height": 178},
]
ELLIPSES = [{"time": t, "x": 50, "y": 50, "rx": 20, "ry": 30} for t in (0.0, 0.5, 1.0)]


def commit(user, change):
    """Run ``change()`` on ``user``'s data as one unit of work, committed."""
    with sync.writing(user.pk) as outcome:
        change()
    assert outcome.ok, outcome.results
    return registry(user).version


def add_clip(user, project_id, name="Goal", keyframes=CROP):
    file = store_media(user, "clips", b"clip bytes " * 50)

    def change():
        Clip.objects.create(
            project_id=project_id, position=Clip.objects.count(), name=name, file=file,
            size_bytes=550, duration=2.0, fps=30, width=320, height=180, frame_count=60,
            crop_keyframes=keyframes,
        )  # fmt: skip

    commit(user, change)
    return file


def add_region(user, project_id):
    def change():
        HighlightRegion.objects.create(
            project_id=project_id, position=0, start=0.0, end=1.0,
            effect="dim_outside", keyframes=ELLIPSES,
        )  # fmt: skip

    commit(user, change)


def clip_id(user, name):
    with bound_to_user(user.pk):
        return Clip.objects.get(name=name).pk


def contents(user, version, tmp_path) -> dict:
    """The user tables of committed ``version``, as the store holds it."""
    row = registry(user)
    row.version = version  # assembled from its history rows
    with committed_database(row, tmp_path) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in USER_TABLES}


@pytest.fixture
def four_versions(alice, alice_client, local_store):
    """v1 a project, v2 a clip (2 crop keyframes), v3 a region (3 keyframes), v4 the clip
    deleted (its file dropped by v4)."""
    project = create_project(alice_client, "Cup final")["id"]
    file = add_clip(alice, project)
    add_region(alice, project)
    response = alice_client.delete(f"/api/projects/{project}/clips/{clip_id(alice, 'Goal')}")
    assert response.status_code == 204, response.content
    assert registry(alice).version == 4
    return {"project": project, "file": file}


def test_the_list_has_each_retained_version_with_counts_and_changes(alice, four_versions):
    entries = history.versions(alice.pk)

    assert [e.version for e in entries] == [4, 3, 2, 1]
    assert [e.current for e in entries] == [True, False, False, False]
    assert [e.counts["projects"] for e in entries] == [1, 1, 1, 1]
    assert [e.counts["clips"] for e in entries] == [0, 1, 1, 0]
    assert [e.counts["keyframes"] for e in entries] == [3, 5, 2, 0]
    assert [e.counts["regions"] for e in entries] == [1, 1, 0, 0]
    assert entries[0].change_list == [("clip", -1), ("keyframes", -2)]
    assert entries[1].change_list == [("keyframes", 3), ("region", 1)]
    assert entries[2].change_list == [("clip", 1), ("keyframes", 2)]
    assert entries[3].changes == {}  # the oldest listed: nothing to compare with
    latest = SnapshotVersion.objects.get(user=alice, version=4)
    assert entries[0].committed_at == latest.committed_at


def test_counts_are_read_once_then_kept(alice, four_versions, monkeypatch):
    history.versions(alice.pk)
    assert VersionSummary.objects.filter(user=alice).count() == 4

    def no_store(*args, **kwargs):
        raise AssertionError("the store was asked again")

    monkeypatch.setattr(sync, "_fetch_into", no_store)
    assert [e.counts["clips"] for e in history.versions(alice.pk)] == [0, 1, 1, 0]


def test_versions_beyond_the_retention_are_not_listed_nor_restorable(
    alice, alice_client, four_versions, settings
):
    settings.SNAPSHOT_RETENTION = 2
    create_project(alice_client, "Replay")  # v5: retention now keeps 4 and 5

    assert [e.version for e in history.versions(alice.pk)] == [5, 4]
    assert VersionSummary.objects.filter(user=alice, version__lt=4).count() == 0
    assert alice_client.get("/history/3/").status_code == 404
    assert alice_client.post("/history/3/restore").status_code == 404
    assert registry(alice).version == 5


def test_a_preview_shows_the_version_read_only(alice, alice_client, four_versions):
    preview = history.preview(alice.pk, 2)
    [project] = preview.projects
    assert project["name"] == "Cup final"
    assert [(c["name"], c["keyframes"]) for c in project["clips"]] == [("Goal", 2)]
    assert preview.counts["clips"] == 1 and not preview.current

    response = alice_client.get("/history/2/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Goal" in page and "2 crop keyframes" in page
    assert 'action="/history/2/restore"' in page
    assert registry(alice).version == 4  # looking wrote nothing
    assert 'action="/history/4/restore"' not in alice_client.get("/history/4/").content.decode()


def test_a_restore_commits_the_old_version_as_the_next_one(alice, four_versions, tmp_path):
    restored = history.restore(alice.pk, 2)

    assert restored.result.ok and restored.version == 5
    assert contents(alice, 5, tmp_path) == contents(alice, 2, tmp_path)
    assert contents(alice, 4, tmp_path) != contents(alice, 2, tmp_path)  # v4 is still there
    assert SnapshotVersion.objects.filter(user=alice).count() == 5
    with bound_to_user(alice.pk):
        assert list(Clip.objects.values_list("name", flat=True)) == ["Goal"]
    assert not workingcopy.read_state(alice.pk).dirty
    [latest, *_] = history.versions(alice.pk)
    assert (latest.version, latest.restored_from, latest.counts["clips"]) == (5, 2, 1)


def test_a_restore_is_undone_by_restoring_the_version_before_it(
    alice, alice_client, four_versions, tmp_path
):
    response = alice_client.post("/history/2/restore", follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Restored version 2 as version 5." in page
    assert 'action="/history/4/restore"' in page and "Undo restore" in page

    response = alice_client.post("/history/4/restore", HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {"version": 6, "restored_from": 4, "missing_media": []}
    assert contents(alice, 6, tmp_path) == contents(alice, 4, tmp_path)
    with bound_to_user(alice.pk):
        assert Clip.objects.count() == 0 and HighlightRegion.objects.count() == 1


def test_a_restored_version_is_what_a_new_machine_loads(alice, four_versions, data_dir):
    history.restore(alice.pk, 1)
    new_machine(data_dir)
    with bound_to_user(alice.pk):
        assert Clip.objects.count() == 0 and HighlightRegion.objects.count() == 0
    assert project_names(alice) == ["Cup final"]


def test_restoring_the_current_version_is_refused(alice, alice_client, four_versions):
    response = alice_client.post("/history/4/restore", HTTP_ACCEPT="application/json")
    assert response.status_code == 409
    assert response.json()["code"] == "current_version"
    assert registry(alice).version == 4


def test_media_of_a_restored_version_stay(alice, alice_client, local_store, settings):
    """The clip's file was dropped by v3; restoring v2 brings the clip back, so the sweep
    after the restore's commit (oldest kept: 3) must not remove it, nor any sweep after."""
    settings.SNAPSHOT_RETENTION = 3
    project = create_project(alice_client, "Cup final")["id"]  # v1
    file = add_clip(alice, project)  # v2
    response = alice_client.delete(f"/api/projects/{project}/clips/{clip_id(alice, 'Goal')}")
    assert response.status_code == 204  # v3 drops the file
    create_project(alice_client, "Replay")  # v4: kept 2, 3, 4
    assert default_storage.exists(file)  # v2 can still be restored
    assert MediaTombstone.objects.filter(user=alice, name=file, version=3).exists()

    restored = history.restore(alice.pk, 2)  # v5: kept 3, 4, 5

    assert restored.version == 5 and restored.missing_media == []
    for name in ("More", "And more", "Still more"):  # v6-v8: v2 and v3 are gone
        create_project(alice_client, name)
    assert default_storage.exists(file)
    assert not MediaTombstone.objects.filter(user=alice, name=file).exists()
    assert alice_client.get(f"/media/{file}").status_code == 200


def test_unpushed_writes_are_pushed_before_a_restore(alice, four_versions, tmp_path):
    write_without_push(alice, "Not saved yet")

    restored = history.restore(alice.pk, 2)

    assert restored.version == 6  # v5 holds the write that was not pushed
    assert "Not saved yet" in snapshot_names(SyncState(user_id=alice.pk, version=5), tmp_path)
    assert contents(alice, 6, tmp_path) == contents(alice, 2, tmp_path)


def test_a_restore_is_refused_while_unpushed_writes_cannot_be_saved(
    alice, alice_client, s3_store, s3_outage
):
    create_project(alice_client, "Cup final")
    create_project(alice_client, "Replay")
    write_without_push(alice, "Not saved yet")

    with s3_outage():
        response = alice_client.post("/history/1/restore", HTTP_ACCEPT="application/json")

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "unsaved_changes"
    assert registry(alice).version == 2
    assert "Not saved yet" in project_names(alice)  # kept, to be pushed later
    assert workingcopy.read_state(alice.pk).dirty


def test_another_users_versions_are_not_found(alice, bob_client, four_versions):
    assert bob_client.get("/history/2/").status_code == 404
    assert bob_client.post("/history/2/restore").status_code == 404
    response = bob_client.post("/history/2/restore", HTTP_ACCEPT="application/json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert "Cup final" not in bob_client.get("/history/").content.decode()
    assert registry(alice).version == 4


@pytest.mark.parametrize("path", ["/history/0/", "/history/99/", f"/history/{2**70}/"])
def test_a_version_that_is_not_kept_is_not_found(alice_client, four_versions, path):
    assert alice_client.get(path).status_code == 404
    assert alice_client.post(f"{path}restore").status_code == 404


@pytest.mark.parametrize("path", ["/history/two/", "/history/-1/", "/history/1.5/"])
def test_a_malformed_version_is_not_found(alice_client, path):
    assert alice_client.get(path).status_code == 404


def test_the_history_page_lists_versions_and_the_nav_links_it(alice_client, four_versions):
    page = alice_client.get("/history/").content.decode()
    assert page.count('data-testid="history-row"') == 4
    assert "-1 clip<" in page
    assert 'href="/history/"' in alice_client.get("/").content.decode()
    assert 'href="/history/"' in alice_client.get("/accounts/").content.decode()


def test_a_new_user_has_an_empty_history(bob_client):
    response = bob_client.get("/history/")
    assert response.status_code == 200
    assert "Nothing is saved yet" in response.content.decode()


def test_a_restore_needs_the_csrf_token(alice, four_versions):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/history/2/restore").status_code == 403
    assert registry(alice).version == 4
    assert client.get("/history/2/restore").status_code == 405


def test_counting_reads_a_database_file_read_only(alice, four_versions, tmp_path):
    row = registry(alice)
    with committed_database(row, tmp_path) as conn:
        (tmp_path / "counted").mkdir()
        path = tmp_path / "counted" / "copy.sqlite3"
        conn.execute(f"VACUUM INTO '{path}'")
    before = path.read_bytes()
    assert history.count(path) == {
        "projects": 1, "clips": 0, "keyframes": 3, "regions": 1, "games": 0, "plays": 0
    }  # fmt: skip
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["copy.sqlite3"]  # no -wal, -shm left


def test_list_and_restore_on_s3(alice, alice_client, s3_store, tmp_path):
    for name in ("Cup final", "Replay", "Training"):
        create_project(alice_client, name)

    assert [e.counts["projects"] for e in history.versions(alice.pk)] == [3, 2, 1]
    restored = history.restore(alice.pk, 1)

    assert restored.result.ok and restored.version == 4
    assert contents(alice, 4, tmp_path) == contents(alice, 1, tmp_path)
    assert project_names(alice) == ["Cup final"]
