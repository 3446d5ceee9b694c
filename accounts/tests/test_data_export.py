"""Export my data: a zip of the user's projects (JSON) and every clip and video file,
built in the background with progress, downloadable once, by its owner only.

Real requests, a real background build (the thread the embedded default uses), real
synthetic clips and exported videos, media on local disk and on S3 (moto).
"""

import io
import json
import time
import zipfile
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts import dataexport
from accounts.models import DataExport
from projects.tests.helpers import (
    add_final_video,
    add_working_video,
    body,
    create_project,
    post_json,
    store_media,
    upload_clip,
)

pytestmark = pytest.mark.django_db(transaction=True)
JSON = {"HTTP_ACCEPT": "application/json"}


def start(client) -> dict:
    answer = client.post("/accounts/data-exports/", **JSON)
    assert answer.status_code == 202, answer.content
    return answer.json()


def wait_until_built(client, export_id, timeout=60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/accounts/data-exports/{export_id}").json()
        if state["status"] not in ("pending", "building"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"data export {export_id} still {state['status']} after {timeout} s")


def download(client, export_id):
    return client.get(f"/accounts/data-exports/{export_id}/download")


def a_project_with_everything(user, client, clip_path):
    """A project with an uploaded clip, framing keyframes, a highlight region, a working
    and a final video: what the zip must hold."""
    project = create_project(client, "Semi-final 2-1")
    clip = upload_clip(client, project["id"], clip_path)
    keyframes = [{"time": 0.0, "x": 12.5, "y": 0, "width": 101.25, "height": 180}]
    url = f"/api/projects/{project['id']}/clips/{clip['id']}"
    assert post_json(client, url, {"crop_keyframes": keyframes}, "patch").status_code == 200
    working = add_working_video(user, project["id"], file=store_media(user, "working", b"W" * 3000))
    final = add_final_video(user, project["id"], file=store_media(user, "final", b"F" * 2000))
    return project, clip, working, final


@pytest.fixture(params=["local media", "s3 media"])
def media_backend(request):
    """Media on this machine's disk (the embedded default) or on S3, as in production."""
    return request.getfixturevalue("local_store" if request.param == "local media" else "s3_media")


def test_the_zip_holds_the_projects_as_json_and_every_file(
    media_backend, alice, alice_client, game_clip_path
):
    project, clip, working, final = a_project_with_everything(alice, alice_client, game_clip_path)

    started = start(alice_client)
    assert started["status"] == "pending"
    state = wait_until_built(alice_client, started["id"])
    assert state["status"] == "ready", state
    answer = download(alice_client, started["id"])

    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/zip"
    assert answer["Content-Disposition"].startswith('attachment; filename="reel-editor-data-')
    assert answer["Cache-Control"] == "no-store"
    data = body(answer)
    assert len(data) == int(answer["Content-Length"]) == state["size"]
    archive = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(archive.read("projects.json"))
    assert manifest["missing_files"] == []
    [entry] = manifest["projects"]
    assert entry["name"] == "Semi-final 2-1" and entry["id"] == project["id"]
    [clip_entry] = entry["clips"]
    assert clip_entry["id"] == clip["id"] and "url" not in clip_entry
    assert clip_entry["crop_keyframes"][0]["x"] == 12.5
    assert archive.read(clip_entry["file"]) == game_clip_path.read_bytes()
    assert archive.read(entry["working_videos"][0]["file"]) == b"W" * 3000
    assert archive.read(entry["final_videos"][0]["file"]) == b"F" * 2000
    assert entry["working_videos"][0]["id"] == working.id
    assert entry["final_videos"][0]["id"] == final.id
    expected = {"projects.json", clip_entry["file"]}
    expected |= {entry["working_videos"][0]["file"], entry["final_videos"][0]["file"]}
    assert set(archive.namelist()) == expected
    assert archive.testzip() is None


def test_it_downloads_once_and_the_file_is_deleted(local_store, alice, alice_client):
    create_project(alice_client, "Game")
    export_id = start(alice_client)["id"]
    assert wait_until_built(alice_client, export_id)["status"] == "ready"
    stored = DataExport.objects.get(pk=export_id).file
    assert default_storage.exists(stored)

    first = download(alice_client, export_id)
    assert first.status_code == 200 and zipfile.ZipFile(io.BytesIO(body(first))).namelist()
    again = download(alice_client, export_id)

    assert again.status_code == 404
    state = alice_client.get(f"/accounts/data-exports/{export_id}").json()
    assert state["status"] == "downloaded" and state["downloaded_at"]
    assert not default_storage.exists(stored)


def test_another_user_gets_404_for_the_status_and_the_download(
    local_store, alice, alice_client, bob_client
):
    export_id = start(alice_client)["id"]
    wait_until_built(alice_client, export_id)

    status = bob_client.get(f"/accounts/data-exports/{export_id}")
    assert status.status_code == 404
    assert status.json() == {"error": "No such data export.", "code": "not_found"}
    assert download(bob_client, export_id).status_code == 404
    # Bob's attempts took nothing: Alice's download is still there.
    assert download(alice_client, export_id).status_code == 200


def test_progress_is_reported_while_the_files_are_copied(
    local_store, alice, alice_client, game_clip_path, monkeypatch
):
    a_project_with_everything(alice, alice_client, game_clip_path)
    monkeypatch.setattr(dataexport, "COPY_CHUNK", 1024)
    monkeypatch.setattr(dataexport, "PROGRESS_EVERY_SECONDS", 0)
    seen = []
    real_set = dataexport._set

    def recording_set(export, **fields):
        if "percent" in fields:
            seen.append(fields["percent"])
        real_set(export, **fields)

    monkeypatch.setattr(dataexport, "_set", recording_set)
    export = DataExport.objects.create(user=alice)
    dataexport.build(export.pk)

    assert seen[-1] == 100 and len(seen) > 10
    assert seen == sorted(seen) and 0 < seen[0] < 100


def test_starting_twice_while_one_is_being_built_gives_the_same_export(
    local_store, alice, alice_client, monkeypatch
):
    monkeypatch.setattr(dataexport, "submit", lambda export_id: None)  # nobody builds it
    first = start(alice_client)
    assert start(alice_client)["id"] == first["id"]
    assert DataExport.objects.filter(user=alice).count() == 1


def test_a_zip_not_downloaded_in_time_expires_and_its_file_is_deleted(
    local_store, alice, alice_client, settings
):
    export_id = start(alice_client)["id"]
    wait_until_built(alice_client, export_id)
    stored = DataExport.objects.get(pk=export_id).file

    settings.DATA_EXPORT_EXPIRY_SECONDS = 0
    dataexport.expire_old_exports()  # the periodic pass

    assert DataExport.objects.get(pk=export_id).status == "expired"
    assert not default_storage.exists(stored)
    assert download(alice_client, export_id).status_code == 404
    assert b"Expired: start a new export." in alice_client.get("/accounts/").content


def test_a_build_that_went_quiet_is_failed_and_a_new_one_can_start(
    local_store, alice, alice_client, settings, monkeypatch
):
    monkeypatch.setattr(dataexport, "submit", lambda export_id: None)  # its builder died
    stuck = start(alice_client)["id"]
    quiet_since = timezone.now() - timedelta(seconds=settings.EXPORT_STALE_AFTER + 1)
    DataExport.objects.filter(pk=stuck).update(status="building", updated_at=quiet_since)

    state = alice_client.get(f"/accounts/data-exports/{stuck}").json()
    assert state["status"] == "failed" and "Start it again" in state["message"]
    assert start(alice_client)["id"] != stuck


def test_a_file_missing_from_storage_is_named_in_the_manifest(local_store, alice, alice_client):
    project = create_project(alice_client, "Game")
    add_working_video(alice, project["id"], file=f"users/{alice.pk}/working/gone.mp4")
    export = DataExport.objects.create(user=alice)
    dataexport.build(export.pk)
    export.refresh_from_db()
    with default_storage.open(export.file, "rb") as handle:
        manifest = json.loads(zipfile.ZipFile(io.BytesIO(handle.read())).read("projects.json"))
    assert manifest["missing_files"] == [manifest["projects"][0]["working_videos"][0]["file"]]


def test_the_account_page_lists_exports_and_the_form_works_without_javascript(
    local_store, alice, alice_client
):
    answer = alice_client.post("/accounts/data-exports/")
    assert answer.status_code == 302 and answer["Location"] == "/accounts/"
    export = DataExport.objects.get(user=alice)
    wait_until_built(alice_client, export.pk)
    page = alice_client.get("/accounts/").content.decode()
    assert f'/accounts/data-exports/{export.pk}/download"' in page
    assert "Export my data" in page and "Delete my account" in page
