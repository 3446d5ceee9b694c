"""What users get when exports meet trouble, and the overlay export and mock mode."""

import asyncio
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from django.utils import timezone

from exports import runner
from exports.jobs import framing_params
from exports.models import ExportJob
from exports.tests.test_export_flow import (
    assert_complete_is_committed,
    decoded_frames,
    setup_project,
    signed_in,
    watch,
)
from exports.tests.test_upscale import compact
from projects.models import Project, WorkingVideo
from projects.synthetic import write_game_clip
from projects.tests.helpers import create_project, post_json, upload_clip
from syncstore.binding import bound_to_user
from syncstore.models import SyncState
from syncstore.tests.helpers import committed_ids

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def fast(settings):
    settings.EXPORT_PRESET = "ultrafast"
    settings.EXPORT_MODE = "real"
    settings.EXPORT_FINALIZE_RETRY_DELAYS = [0.1]


async def export(client, project_id, kind="framing"):
    response = await asyncio.to_thread(
        post_json, client, f"/api/projects/{project_id}/exports", {"kind": kind}
    )
    assert response.status_code == 202, response.content
    return response.json()["job_id"]


async def user_and_project(django_user_model, clip):
    alice = await django_user_model.objects.acreate(username="alice")
    client = await asyncio.to_thread(signed_in, alice)
    project = await asyncio.to_thread(setup_project, client, clip)
    return alice, client, project


def working_videos(user):
    with bound_to_user(user.pk):
        return list(WorkingVideo.objects.order_by("id").values_list("id", "superseded"))


async def test_a_store_failure_at_finalize_is_never_complete_and_a_retry_completes(
    fast,
    s3_store,
    s3_outage,
    django_user_model,
    ball_clip,
    tmp_path,
):
    alice, client, project = await user_and_project(django_user_model, ball_clip)
    with s3_outage():
        job_id = await export(client, project["id"])
        messages = await watch(job_id, client)
    assert "complete" not in [m["status"] for m in messages]
    final = messages[-1]
    assert (final["status"], final["error_code"], final["retryable"]) == (
        "error",
        "sync_failed",
        True,
    )
    assert "saved" in final["error"]

    # The store is back: retrying reuses the rendered file and commits the same video.
    response = await asyncio.to_thread(client.post, f"/api/exports/{job_id}/retry")
    assert response.status_code == 202
    messages = await watch(job_id, client)
    assert messages[-1]["status"] == "complete"
    video_id = messages[-1]["working_video_id"]
    assert await asyncio.to_thread(working_videos, alice) == [(video_id, False)]
    await assert_complete_is_committed(alice, messages[-1], "projects_workingvideo", tmp_path)
    listed = await asyncio.to_thread(client.get, "/api/projects")
    assert listed.json()["projects"][0]["has_working_video"] is True
    assert listed["X-Sync-Status"] == "ok"
    row = await SyncState.objects.aget(user=alice)
    assert row.status == "ok"
    job = await ExportJob.objects.aget(pk=job_id)
    assert job.attempts == 2


async def test_an_export_after_an_unseen_conflict_completes_on_its_own_push(
    fast, local_store, settings, django_user_model, ball_clip, tmp_path
):
    """The account has a conflict copy nobody has looked at yet (the registry says
    conflict); an export's outcome comes from its own push, which commits."""
    settings.EXPORT_MODE = "mock"
    alice, client, project = await user_and_project(django_user_model, ball_clip)
    await SyncState.objects.filter(user=alice).aupdate(status="conflict", last_error="unseen")

    messages = await watch(await export(client, project["id"]), client)

    assert messages[-1]["status"] == "complete", messages[-1]
    in_store = await asyncio.to_thread(
        committed_ids, alice, "projects_workingvideo", tmp_path,
        version=messages[-1]["committed_version"],
    )  # fmt: skip
    assert messages[-1]["working_video_id"] in in_store
    row = await SyncState.objects.aget(user=alice)
    assert row.status == "conflict"  # still waiting to be seen: an account-level fact
    listed = await asyncio.to_thread(client.get, "/api/projects")
    assert listed.json()["projects"][0]["has_working_video"] is True
    assert listed["X-Sync-Status"] == "ok"


async def test_a_corrupt_source_fails_clearly_and_keeps_the_previous_working_video(
    fast,
    local_store,
    settings,
    django_user_model,
    ball_clip,
):
    alice, client, project = await user_and_project(django_user_model, ball_clip)
    first = (await watch(await export(client, project["id"]), client))[-1]
    assert first["status"] == "complete"

    detail = (await asyncio.to_thread(client.get, f"/api/projects/{project['id']}")).json()
    source = settings.MEDIA_ROOT / detail["clips"][0]["url"].removeprefix("/media/")
    source.write_bytes(source.read_bytes()[:2000] + b"\x00garbage" * 1000)

    job_id = await export(client, project["id"])
    final = (await watch(job_id, client))[-1]
    assert final["status"] == "error"
    assert final["error_code"] in ("source_corrupt", "source_missing")
    assert final["error"] and "Traceback" not in final["error"]
    after = (
        await asyncio.to_thread(client.get, f"/api/projects/{project['id']}/working-video")
    ).json()
    assert after["id"] == first["working_video_id"]
    assert await asyncio.to_thread(working_videos, alice) == [(first["working_video_id"], False)]
    leftovers = list(Path(tempfile.gettempdir()).glob(f"export-{job_id}-*"))
    assert leftovers == []


async def test_a_running_export_can_be_cancelled(
    fast, local_store, django_user_model, ball_clip, monkeypatch
):
    # The render is held at its first cancel check until the cancel has been asked, so
    # the test does not race a fast machine's render (CI once finished a 20 s clip
    # before the check came round). The check itself, and what follows it, are real.
    asked = threading.Event()
    real_checker = runner._cancel_checker

    def held_checker(attempt):
        check = real_checker(attempt)

        def should_cancel():
            asked.wait(timeout=60)
            return check()

        return should_cancel

    monkeypatch.setattr(runner, "_cancel_checker", held_checker)
    alice, client, project = await user_and_project(django_user_model, ball_clip)
    job_id = await export(client, project["id"])
    async with asyncio.timeout(120):
        while (await ExportJob.objects.aget(pk=job_id)).status != ExportJob.Status.PROCESSING:
            await asyncio.sleep(0.05)

    response = await asyncio.to_thread(client.delete, f"/api/exports/{job_id}")
    assert response.status_code == 202
    asked.set()
    final = (await watch(job_id, client))[-1]
    assert final["status"] == "cancelled"
    assert await asyncio.to_thread(working_videos, alice) == []


async def test_mock_mode_renders_a_short_small_video_through_the_same_path(
    fast,
    local_store,
    settings,
    django_user_model,
    ball_clip,
):
    settings.EXPORT_MODE = "mock"
    alice, client, project = await user_and_project(django_user_model, ball_clip)
    final = (await watch(await export(client, project["id"]), client))[-1]
    assert final["status"] == "complete"
    video = (
        await asyncio.to_thread(client.get, f"/api/projects/{project['id']}/working-video")
    ).json()
    assert (video["width"], video["height"]) == (270, 480)
    assert video["duration"] <= 2.1
    assert (await SyncState.objects.aget(user=alice)).status == "ok"
    _, frames = await asyncio.to_thread(
        decoded_frames, settings.MEDIA_ROOT / video["url"].removeprefix("/media/")
    )
    assert 0 < len(frames) <= 60


async def test_an_overlay_export_makes_a_final_video_for_the_gallery(
    fast,
    local_store,
    settings,
    django_user_model,
    ball_clip,
    tmp_path,
):
    settings.EXPORT_MODE = "mock"  # the overlay path is what is under test here
    alice, client, project = await user_and_project(django_user_model, ball_clip)
    no_video = await asyncio.to_thread(
        post_json, client, f"/api/projects/{project['id']}/exports", {"kind": "overlay"}
    )
    assert no_video.status_code == 409
    assert no_video.json()["code"] == "working_video_required"

    framed = (await watch(await export(client, project["id"]), client))[-1]
    assert framed["status"] == "complete", framed
    await assert_complete_is_committed(alice, framed, "projects_workingvideo", tmp_path)
    region = {
        "start": 0.0, "end": 1.5, "effect": "dim_outside", "color": "#ffd400", "stroke_width": 3,
        "keyframes": [{"time": 0.0, "x": 135, "y": 240, "rx": 60, "ry": 60},
                      {"time": 1.5, "x": 100, "y": 200, "rx": 50, "ry": 50}],
    }  # fmt: skip
    put = await asyncio.to_thread(
        post_json, client, f"/api/projects/{project['id']}/highlights", {"regions": [region]}, "put"
    )
    assert put.status_code == 200, put.content

    final = (await watch(await export(client, project["id"], "overlay"), client))[-1]
    assert final["status"] == "complete", final
    await assert_complete_is_committed(alice, final, "projects_finalvideo", tmp_path)
    gallery = (
        await asyncio.to_thread(client.get, f"/api/projects/{project['id']}/final-videos")
    ).json()
    assert [v["id"] for v in gallery["final_videos"]] == [final["final_video_id"]]
    listed = (await asyncio.to_thread(client.get, "/api/projects")).json()["projects"][0]
    assert listed["has_final_video"] is True
    download = await asyncio.to_thread(client.get, gallery["final_videos"][0]["url"])
    assert download.status_code == 200
    # A still of it was made at export: the poster of its share page, a JPEG.
    poster = await asyncio.to_thread(_final_poster, alice)
    assert poster.startswith(b"\xff\xd8\xff") and len(poster) > 1000


def _final_poster(user) -> bytes:
    from django.core.files.storage import default_storage

    from projects.models import FinalVideo
    from syncstore.binding import bound_to_user

    with bound_to_user(user.pk):
        name = FinalVideo.objects.get().poster
    with default_storage.open(name, "rb") as handle:
        return handle.read()


async def test_a_second_export_supersedes_the_first(fast, local_store, django_user_model):
    alice = await django_user_model.objects.acreate(username="alice")
    client = await asyncio.to_thread(signed_in, alice)
    clip = Path(tempfile.mkdtemp()) / "short.mp4"
    await asyncio.to_thread(write_game_clip, clip, width=320, height=180, seconds=1.0)
    project = await asyncio.to_thread(create_project, client, "Twice", "1:1")
    await asyncio.to_thread(upload_clip, client, project["id"], clip)
    first = (await watch(await export(client, project["id"]), client))[-1]
    second = (await watch(await export(client, project["id"]), client))[-1]
    assert await asyncio.to_thread(working_videos, alice) == [
        (first["working_video_id"], True),
        (second["working_video_id"], False),
    ]


async def test_a_job_stranded_by_a_restart_is_queued_again(
    fast, local_store, settings, django_user_model, ball_clip
):
    alice, client, project = await user_and_project(django_user_model, ball_clip)
    # A pending job whose queue died with its process: nothing will ever run it.
    job = await ExportJob.objects.acreate(
        user=alice, project_id=project["id"], kind="framing", project_name="Cup final",
        params=await asyncio.to_thread(_framing_params, alice, project["id"]),
        created_at=timezone.now() - timedelta(seconds=settings.EXPORT_STALE_AFTER + 5),
    )  # fmt: skip
    final = (await watch(str(job.pk), client))[-1]  # looking at it is enough to revive it
    assert final["status"] == "complete"


def _framing_params(user, project_id):
    with bound_to_user(user.pk):
        return framing_params(Project.objects.get(pk=project_id), upscale=False)


async def test_an_export_with_ai_upscaling_uses_the_model(
    fast, local_store, settings, django_user_model, tmp_path
):
    model = tmp_path / "compact-x2.pth"
    torch.save(compact(2).state_dict(), model)
    settings.UPSCALE_MODEL_PATH = str(model)
    clip = tmp_path / "tiny.mp4"
    await asyncio.to_thread(write_game_clip, clip, width=320, height=180, seconds=0.5)
    alice = await django_user_model.objects.acreate(username="alice")
    client = await asyncio.to_thread(signed_in, alice)
    project = await asyncio.to_thread(create_project, client, "Upscaled", "16:9")
    await asyncio.to_thread(upload_clip, client, project["id"], clip)

    options = (await asyncio.to_thread(client.get, "/api/exports/options")).json()
    assert options["upscale"]["available"] is True
    response = await asyncio.to_thread(
        post_json, client, f"/api/projects/{project['id']}/exports",
        {"kind": "framing", "upscale": True},
    )  # fmt: skip
    assert response.status_code == 202, response.content
    final = (await watch(response.json()["job_id"], client, timeout=300))[-1]
    assert final["status"] == "complete", final
    url = f"/api/projects/{project['id']}/working-video"
    video = (await asyncio.to_thread(client.get, url)).json()
    assert (video["width"], video["height"]) == (1920, 1080)
    assert video["frame_count"] == 15
    # What the model took is recorded: later exports' estimates are based on it.
    speed = (await ExportJob.objects.aget(pk=final["job_id"])).result["upscale_speed"]
    assert speed["model"] == "compact-x2.pth" and speed["device"] == "cpu"
    assert speed["seconds"] > 0 and speed["model_pixels"] >= 15 * 180 * 180
