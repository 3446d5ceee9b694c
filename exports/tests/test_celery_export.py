"""The same export through Celery: a real worker process, Redis as broker and channel layer.

The worker is a separate process on its own data folder (as on a GPU machine), sharing
only what production machines share: the central database, the S3 bucket (media and
snapshots, on moto) and Redis. The web side never sees the worker's working copy: what
it shows after "complete" it pulled from the store, so a worker that never pushed fails.
"""

import asyncio
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from channels.layers import channel_layers
from django.db import connection
from django.utils import timezone

from exports.models import ExportJob
from exports.tests.test_export_flow import (
    FPS,
    SECONDS,
    assert_ball_where_the_crop_put_it,
    assert_complete_is_committed,
    decoded_frames,
    setup_project,
    signed_in,
    watch,
)
from projects.tests.helpers import post_json
from reeleditor.celery import app as celery_app
from reeleditor.settings import channel_layers_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def redis_mode(settings, s3_media):
    settings.REDIS_URL = REDIS_URL
    settings.EXPORT_PRESET = "ultrafast"
    settings.CHANNEL_LAYERS = channel_layers_for(REDIS_URL)  # as production configures it
    channel_layers.backends = {}
    previous_broker = celery_app.conf.broker_url
    celery_app.conf.broker_url = REDIS_URL
    yield
    celery_app.conf.broker_url = previous_broker
    channel_layers.backends = {}


@pytest.fixture
def celery_worker(redis_mode, settings, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
        "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
        # Its own data folder: nothing on disk is shared with the web side (this test).
        "REELEDITOR_DATA_DIR": str(tmp_path / "worker-data"),
        "S3_BUCKET": settings.S3_BUCKET,
        "S3_ENDPOINT_URL": settings.S3_ENDPOINT_URL,
        "S3_REGION": settings.S3_REGION,
        "REDIS_URL": REDIS_URL,
        "EXPORT_PRESET": "ultrafast",
        "SYNC_RETRY_INTERVAL": "0",
    }
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    # Purge anything an earlier run left in this test database's queue.
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "reeleditor", "purge", "-f"],
        cwd=ROOT, env=env, stdout=log, stderr=log, timeout=60, check=False,
    )  # fmt: skip
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "reeleditor", "worker", "-P", "solo",
            "--without-mingle", "--without-gossip", "--loglevel=INFO",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    )  # fmt: skip
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
    log.close()


def fetch_media(client, url, dest: Path) -> None:
    """Download a media file as the browser does: the app's redirect to a signed link."""
    response = client.get(url)
    assert response.status_code == 302, response.status_code
    fetched = requests.get(response["Location"], timeout=30)
    assert fetched.status_code == 200
    dest.write_bytes(fetched.content)


async def test_a_framing_export_on_a_celery_worker(
    celery_worker, django_user_model, ball_clip, settings, tmp_path
):
    alice = await django_user_model.objects.acreate(username="alice")
    client = await asyncio.to_thread(signed_in, alice)
    project = await asyncio.to_thread(setup_project, client, ball_clip)

    response = await asyncio.to_thread(
        post_json, client, f"/api/projects/{project['id']}/exports", {"kind": "framing"}
    )
    assert response.status_code == 202
    job_id = response.json()["job_id"]

    messages = await watch(job_id, client, timeout=240)
    final = messages[-1]
    log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
    assert final["status"] == "complete", (final, log)
    assert [m["progress"] for m in messages] == sorted(m["progress"] for m in messages)
    # It really ran in the worker process, not here.
    job = await ExportJob.objects.aget(pk=job_id)
    assert job.worker.endswith(f":{celery_worker.pid}"), job.worker

    listed = await asyncio.to_thread(client.get, "/api/projects")
    assert listed.json()["projects"][0]["has_working_video"] is True
    video = (
        await asyncio.to_thread(client.get, f"/api/projects/{project['id']}/working-video")
    ).json()
    assert video["id"] == final["working_video_id"]
    # "complete" names a committed version that holds the worker's row, in the store.
    await assert_complete_is_committed(alice, final, "projects_workingvideo", tmp_path)
    assert (tmp_path / "worker-data" / "users" / str(alice.pk)).is_dir()  # its own copy

    media = tmp_path / "working.mp4"
    await asyncio.to_thread(fetch_media, client, video["url"], media)
    _, frames = await asyncio.to_thread(decoded_frames, media)
    assert len(frames) == int(SECONDS * FPS)
    assert_ball_where_the_crop_put_it(frames, 1080, 1920)


async def test_a_worker_that_starts_marks_the_jobs_of_one_that_went_away_lost(
    request, redis_mode, django_user_model, tmp_path
):
    alice = await django_user_model.objects.acreate(username="alice")
    # Processing on a worker that died a day ago: stale under any EXPORT_STALE_AFTER.
    gone = timezone.now() - timedelta(days=1)
    orphan = await ExportJob.objects.acreate(
        user=alice, project_id=1, project_name="Game", kind="framing", status="processing",
        attempts=1, started_at=gone, heartbeat_at=gone, worker="gone:1",
    )  # fmt: skip

    request.getfixturevalue("celery_worker")  # started only now, after the job
    deadline = time.monotonic() + 120
    while (job := await ExportJob.objects.aget(pk=orphan.pk)).status == "processing":
        assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
        await asyncio.sleep(0.2)
    assert (job.status, job.error_code, job.retryable) == ("error", "worker_lost", True)


async def test_upscaled_exports_go_to_the_gpu_workers_queue(redis_mode, django_user_model):
    """Only workers started with ``-Q upscale`` take AI-upscaled exports; the rest go to
    the default queue every worker consumes. Read from the broker itself."""
    import redis

    from exports import queueing

    broker = redis.Redis.from_url(REDIS_URL)
    await asyncio.to_thread(broker.delete, "celery", "upscale")
    user = await django_user_model.objects.acreate(username="coach")
    plain = await ExportJob.objects.acreate(user=user, project_id=1, kind="framing", params={})
    upscaled = await ExportJob.objects.acreate(
        user=user, project_id=2, kind="framing", params={"upscale": True}
    )
    await asyncio.to_thread(queueing.submit, plain.id)
    await asyncio.to_thread(queueing.submit, upscaled.id)

    assert await asyncio.to_thread(broker.llen, "upscale") == 1
    assert await asyncio.to_thread(broker.llen, "celery") == 1
    assert str(upscaled.id).encode() in await asyncio.to_thread(broker.lindex, "upscale", 0)
    await asyncio.to_thread(broker.delete, "celery", "upscale")


@pytest.fixture
def broker_down(settings, local_store):
    """Redis configured but not there (restarting): nothing listens on port 1."""
    down = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = down
    previous = celery_app.conf.broker_url, celery_app.conf.broker_connection_timeout
    celery_app.conf.broker_url, celery_app.conf.broker_connection_timeout = down, 1
    yield
    celery_app.conf.broker_url, celery_app.conf.broker_connection_timeout = previous


async def test_an_export_started_while_the_broker_is_down_is_queued_not_a_500(
    broker_down, django_user_model, ball_clip, settings
):
    """The job is recorded before it is handed to the broker; the broker being away
    (Redis restarting) leaves it pending, and it is queued again when next looked at
    (jobs.mark_if_lost). A 500 here told the user nothing had started while it had."""
    alice = await django_user_model.objects.acreate(username="alice")
    client = await asyncio.to_thread(signed_in, alice)
    project = await asyncio.to_thread(setup_project, client, ball_clip)
    response = await asyncio.to_thread(
        post_json, client, f"/api/projects/{project['id']}/exports", {"kind": "framing"}
    )
    assert response.status_code == 202, response.content
    job = await ExportJob.objects.aget(pk=response.json()["job_id"])
    assert job.status == ExportJob.Status.PENDING
    # Looked at after it went stale: queued again (the broker is still away: no error).
    await ExportJob.objects.filter(pk=job.pk).aupdate(
        created_at=timezone.now() - timedelta(seconds=settings.EXPORT_STALE_AFTER + 1)
    )
    state = await asyncio.to_thread(client.get, f"/api/exports/{job.pk}")
    assert state.status_code == 200 and state.json()["status"] == "pending"
