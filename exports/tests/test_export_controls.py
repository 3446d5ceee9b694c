"""The export panel's controls: cancelling a running export (the previous video is kept,
and a cancel that comes too late loses to the finished export), and AI upscaling (its
queue and the time estimate the panel shows)."""

import asyncio
import threading

import pytest
from django.core.files.storage import default_storage

from exports import queueing, runner, upscale_estimate
from exports.models import ExportJob
from exports.tests.test_export_flow import watch
from exports.tests.test_export_outcomes import export, user_and_project
from exports.tests.test_upscale import models  # noqa: F401 (a fixture)
from projects.models import Project, WorkingVideo
from projects.tests.helpers import create_project, post_json, upload_clip
from syncstore.binding import bound_to_user


@pytest.fixture
def project(alice_client, game_clip_path):
    project = create_project(alice_client)
    upload_clip(alice_client, project["id"], game_clip_path)
    return project


def start(client, project_id, **body):
    return post_json(client, f"/api/projects/{project_id}/exports", {"kind": "framing", **body})


def options(client, project_id=None):
    url = "/api/exports/options" + (f"?project={project_id}" if project_id else "")
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()


# --- AI upscaling: the queue and the estimate (jobs are created, never run) -------------


@pytest.mark.django_db
def test_an_upscaled_export_is_queued_on_the_upscale_queue(
    settings,
    alice_client,
    project,
    models,  # noqa: F811
):
    settings.UPSCALE_MODEL_PATH = str(models["compact"])
    upscaled = start(alice_client, project["id"], upscale=True)
    assert upscaled.status_code == 202, upscaled.content
    job = ExportJob.objects.get(pk=upscaled.json()["job_id"])
    assert job.params["upscale"] is True
    assert queueing.celery_queue_for(job.pk) == settings.EXPORT_UPSCALE_QUEUE == "upscale"

    alice_client.delete(f"/api/exports/{job.pk}")  # pending: cancelled at once
    plain = ExportJob.objects.get(pk=start(alice_client, project["id"]).json()["job_id"])
    assert plain.params["upscale"] is False
    assert queueing.celery_queue_for(plain.pk) == settings.EXPORT_QUEUE


@pytest.mark.django_db
def test_without_a_model_there_is_no_estimate_and_the_reason_is_given(
    settings, alice_client, project
):
    settings.UPSCALE_MODEL_PATH = ""
    data = options(alice_client, project["id"])
    assert data["upscale"]["available"] is False
    assert "UPSCALE_MODEL_PATH is not set" in data["upscale"]["reason"]
    assert data["estimate"] is None
    refused = start(alice_client, project["id"], upscale=True)
    assert refused.status_code == 409
    assert refused.json()["code"] == "upscale_unavailable"


@pytest.mark.django_db
def test_the_estimate_is_measured_then_taken_from_previous_exports(
    settings,
    alice,
    alice_client,
    project,
    models,  # noqa: F811
):
    settings.UPSCALE_MODEL_PATH = str(models["compact"])
    assert "estimate" not in options(alice_client)  # without a project: no estimate

    first = options(alice_client, project["id"])["estimate"]
    # The clip: 2 s at 30 fps, no trim, no slow motion: 60 output frames. No keyframes:
    # the whole-height 9:16 crop of 320x180, about 100x180: one window of the model.
    assert first["frames"] == 60
    assert first["basis"] == "measured_here"
    assert "this server's CPU" in first["method"]
    assert first["seconds_per_megapixel"] > 0
    per_frame = first["model_megapixels"] * 1e6 / 60
    assert 90 * 170 < per_frame < 110 * 190
    assert first["seconds"] == pytest.approx(
        first["seconds_per_megapixel"] * first["model_megapixels"], abs=0.11
    )

    # Slow motion adds frames: the first second at 0.5x plays for two.
    clip_id = alice_client.get(f"/api/projects/{project['id']}").json()["clips"][0]["id"]
    edited = post_json(
        alice_client,
        f"/api/projects/{project['id']}/clips/{clip_id}",
        {"segments": [{"start": 0.0, "end": 1.0, "speed": 0.5}]},
        method="patch",
    )
    assert edited.status_code == 200, edited.content
    assert options(alice_client, project["id"])["estimate"]["frames"] == 90

    # An upscaled export ran: its worker's measured speed is used from now on.
    ExportJob.objects.create(
        user=alice, project_id=project["id"], kind="framing", status="complete",
        params={}, result={"upscale_speed": {
            "model": "compact-x2.pth", "device": "cuda", "dtype": "float16",
            "seconds": 2.0, "model_pixels": 4_000_000,
        }},
    )  # fmt: skip
    ExportJob.objects.create(  # another model's speed is not this one's
        user=alice, project_id=project["id"], kind="framing", status="complete",
        params={}, result={"upscale_speed": {
            "model": "other.pth", "device": "cpu", "dtype": "float32",
            "seconds": 900.0, "model_pixels": 1_000_000,
        }},
    )  # fmt: skip
    recorded = options(alice_client, project["id"])["estimate"]
    assert recorded["basis"] == "previous_exports"
    assert recorded["seconds_per_megapixel"] == 0.5
    assert "last 1 upscaled export (cuda)" in recorded["method"]
    assert recorded["seconds"] == pytest.approx(0.5 * recorded["model_megapixels"], abs=0.11)


@pytest.mark.django_db
def test_an_estimate_needs_clips(settings, alice_client, models):  # noqa: F811
    settings.UPSCALE_MODEL_PATH = str(models["compact"])
    empty = create_project(alice_client, "Empty")
    assert options(alice_client, empty["id"])["estimate"] is None
    assert alice_client.get("/api/exports/options?project=999999").status_code == 404
    assert alice_client.get("/api/exports/options?project=x").status_code == 400


def test_the_model_speed_is_measured_once_per_file(models):  # noqa: F811
    from exports import upscale

    speed = upscale.measured_speed(str(models["compact"]))
    assert speed is not None and speed > 0
    assert upscale.measured_speed(str(models["compact"])) == speed  # cached
    assert upscale.measured_speed(str(models["restore"])) is None  # not an upscaler
    assert upscale.measured_speed("") is None


def test_the_upscaler_counts_what_it_ran(models):  # noqa: F811
    import numpy as np

    from exports.upscale import load_upscaler, model_pixels_per_frame

    up = load_upscaler(str(models["compact"]), device="cpu", tile=64, overlap=8)
    up.upscale([np.zeros((100, 150, 3), np.uint8)])
    assert up.model_pixels == model_pixels_per_frame(100, 150, tile=64, overlap=8)
    assert up.model_pixels == 2 * 3 * 64 * 64  # windows 2 rows x 3 columns of 64x64
    assert up.seconds > 0


def test_the_estimate_module_documents_its_method():
    assert "previous_exports" in upscale_estimate.__doc__
    assert "measured_here" in upscale_estimate.__doc__


# --- Cancelling (the real runner, in mock mode) ------------------------------------------


@pytest.fixture
def mock_exports(settings, local_store):
    settings.EXPORT_MODE = "mock"
    settings.EXPORT_PRESET = "ultrafast"
    settings.EXPORT_FINALIZE_RETRY_DELAYS = [0.1]


def project_video(user, project_id):
    """``(working_video_id, its file, whether the file exists, every WorkingVideo row)``."""
    with bound_to_user(user.pk):
        project = Project.objects.select_related("working_video").get(pk=project_id)
        video = project.working_video
        rows = list(WorkingVideo.objects.order_by("id").values_list("id", "superseded"))
        return video.id, video.file, default_storage.exists(video.file), rows


def hold(monkeypatch, name, wrap):
    """Replace ``runner.<name>`` with ``wrap(the real one)``."""
    monkeypatch.setattr(runner, name, wrap(getattr(runner, name)))


async def wait_for(job_id, status, phase=None):
    async with asyncio.timeout(60):
        while True:
            job = await ExportJob.objects.aget(pk=job_id)
            if job.status == status and (phase is None or job.phase == phase):
                return job
            await asyncio.sleep(0.05)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_cancelling_mid_render_keeps_the_previous_working_video(
    mock_exports, django_user_model, ball_clip, monkeypatch
):
    alice, client, project = await user_and_project(django_user_model, ball_clip)
    first = (await watch(await export(client, project["id"]), client))[-1]
    assert first["status"] == "complete"
    before = await asyncio.to_thread(project_video, alice, project["id"])
    assert before[0] == first["working_video_id"] and before[2] is True

    # The second export is held at its first cancel check (it is rendering) until the
    # cancel has been asked; the check and what follows are real.
    asked = threading.Event()

    def held(real):
        def checker(attempt):
            check = real(attempt)

            def should_cancel():
                asked.wait(timeout=60)
                return check()

            return should_cancel

        return checker

    hold(monkeypatch, "_cancel_checker", held)
    job_id = await export(client, project["id"])
    await wait_for(job_id, "processing")
    response = await asyncio.to_thread(client.delete, f"/api/exports/{job_id}")
    assert response.status_code == 202
    assert response.json()["status"] == "processing"  # running: it stops at its next check
    assert response.json()["cancel_requested"] is True
    asked.set()
    final = (await watch(job_id, client))[-1]
    assert (final["status"], final["phase"], final["message"]) == (
        "cancelled",
        "cancelled",
        "Export cancelled",
    )
    assert "working_video_id" not in final
    # The project still points at the first video, whose file is still there, and no
    # video was added or superseded; the cancelled job left no rendered file behind.
    assert await asyncio.to_thread(project_video, alice, project["id"]) == before
    job = await ExportJob.objects.aget(pk=job_id)
    assert "output_name" not in job.result
    detail = (await asyncio.to_thread(client.get, f"/api/projects/{project['id']}")).json()
    assert detail["has_working_video"] is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_cancel_that_arrives_while_the_export_is_saving_loses_to_it(
    mock_exports, django_user_model, ball_clip, monkeypatch
):
    """Rendered and being saved: the server finishes the export; the cancel answer says
    it is still running, and the job then reports complete with its new video."""
    alice, client, project = await user_and_project(django_user_model, ball_clip)
    saving, release = threading.Event(), threading.Event()

    def held(real):
        def finalize(*args, **kwargs):
            saving.set()
            release.wait(timeout=60)
            return real(*args, **kwargs)

        return finalize

    hold(monkeypatch, "finalize", held)
    job_id = await export(client, project["id"])
    assert await asyncio.to_thread(saving.wait, 60)
    response = await asyncio.to_thread(client.delete, f"/api/exports/{job_id}")
    assert response.json()["status"] == "processing"
    release.set()
    final = (await watch(job_id, client))[-1]
    assert final["status"] == "complete"
    video = await asyncio.to_thread(project_video, alice, project["id"])
    assert video[0] == final["working_video_id"] and video[2] is True
