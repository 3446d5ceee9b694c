"""The exports API. These tests run inside a rolled-back transaction, so jobs are created
but never queued (on_commit never fires): the API's own behaviour, without renders."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from exports.models import ExportJob
from projects.tests.helpers import add_working_video, create_project, post_json, upload_clip

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(alice_client, game_clip_path):
    project = create_project(alice_client)
    upload_clip(alice_client, project["id"], game_clip_path)
    return project


def start(client, project_id, **body):
    return post_json(client, f"/api/projects/{project_id}/exports", {"kind": "framing", **body})


def test_it_creates_a_pending_job_with_a_snapshot_of_the_edits(alice, alice_client, project):
    response = start(alice_client, project["id"])
    assert response.status_code == 202
    data = response.json()
    assert data["created"] is True
    assert (data["status"], data["progress"], data["kind"]) == ("pending", 0, "framing")
    job = ExportJob.objects.get(pk=data["job_id"])
    assert job.user == alice
    assert job.project_name == "Game"
    assert [c["width"] for c in job.params["clips"]] == [320]
    assert (job.params["output_width"], job.params["output_height"]) == (1080, 1920)


def test_a_second_request_gets_the_running_job(alice_client, project):
    first = start(alice_client, project["id"]).json()
    second = start(alice_client, project["id"]).json()
    assert second["job_id"] == first["job_id"]
    assert second["created"] is False
    assert ExportJob.objects.count() == 1


def test_a_job_whose_worker_died_does_not_block_a_new_one(settings, alice_client, project):
    first = ExportJob.objects.get(pk=start(alice_client, project["id"]).json()["job_id"])
    stale = timezone.now() - timedelta(seconds=settings.EXPORT_STALE_AFTER + 5)
    ExportJob.objects.filter(pk=first.pk).update(status="processing", heartbeat_at=stale)

    response = alice_client.get(f"/api/exports/{first.pk}")
    assert response.json()["status"] == "error"
    assert response.json()["error_code"] == "worker_lost"
    assert response.json()["retryable"] is True

    second = start(alice_client, project["id"]).json()
    assert second["created"] is True


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"kind": "thumbnail"}, 400, "invalid_kind"),
        ({"kind": "framing", "upscale": "yes"}, 400, "invalid_upscale"),
        ({"kind": "framing", "upscale": True}, 409, "upscale_unavailable"),
        ({"kind": "overlay"}, 409, "working_video_required"),
    ],
)
def test_it_refuses_exports_that_cannot_run(alice_client, project, body, status, code):
    response = post_json(alice_client, f"/api/projects/{project['id']}/exports", body)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert not ExportJob.objects.exists()


def test_a_project_without_clips_cannot_be_exported(alice_client):
    project = create_project(alice_client)
    response = start(alice_client, project["id"])
    assert response.status_code == 409
    assert response.json()["code"] == "no_clips"


def test_an_overlay_export_snapshots_the_regions(alice, alice_client, project):
    add_working_video(alice, project["id"])
    region = {
        "start": 0.0, "end": 1.0, "effect": "dim_outside", "color": "#ffd400", "stroke_width": 4,
        "keyframes": [{"time": 0.0, "x": 540, "y": 960, "rx": 100, "ry": 100}],
    }  # fmt: skip
    put = alice_client.put(
        f"/api/projects/{project['id']}/highlights",
        {"regions": [region]},
        content_type="application/json",
    )
    assert put.status_code == 200
    response = post_json(
        alice_client, f"/api/projects/{project['id']}/exports", {"kind": "overlay"}
    )
    assert response.status_code == 202
    job = ExportJob.objects.get(pk=response.json()["job_id"])
    assert job.params["regions"][0]["effect"] == "dim_outside"
    assert job.params["working_video"]["width"] == 1080


def test_cancelling_a_pending_job_stops_it(alice_client, project):
    job = start(alice_client, project["id"]).json()
    response = alice_client.delete(f"/api/exports/{job['job_id']}")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    # A new export may start now.
    assert start(alice_client, project["id"]).json()["created"] is True


def test_only_failed_retryable_jobs_can_be_retried(alice_client, project):
    job_id = start(alice_client, project["id"]).json()["job_id"]
    response = alice_client.post(f"/api/exports/{job_id}/retry")
    assert response.status_code == 409
    assert response.json()["code"] == "not_retryable"

    ExportJob.objects.filter(pk=job_id).update(
        status="error", retryable=True, error_code="sync_failed"
    )
    response = alice_client.post(f"/api/exports/{job_id}/retry")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"


def test_the_project_lists_its_exports(alice_client, project):
    job = start(alice_client, project["id"]).json()
    listed = alice_client.get(f"/api/projects/{project['id']}/exports").json()["exports"]
    assert [j["job_id"] for j in listed] == [job["job_id"]]


def test_other_users_jobs_do_not_exist_for_them(alice_client, bob_client, project):
    job_id = start(alice_client, project["id"]).json()["job_id"]
    for response in (
        bob_client.get(f"/api/exports/{job_id}"),
        bob_client.delete(f"/api/exports/{job_id}"),
        bob_client.post(f"/api/exports/{job_id}/retry"),
        start(bob_client, project["id"]),
        bob_client.get(f"/api/projects/{project['id']}/exports"),
        bob_client.get(f"/api/exports/{uuid.uuid4()}"),
    ):
        assert response.status_code == 404
    assert ExportJob.objects.get(pk=job_id).status == "pending"


def test_the_options_say_upscaling_needs_a_model(alice_client):
    data = alice_client.get("/api/exports/options").json()
    assert data["upscale"]["available"] is False
    assert data["upscale"]["reason"]
    assert data["mode"] in ("real", "mock")
