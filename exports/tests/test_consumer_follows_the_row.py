"""A watcher whose export runs in another web process (no Redis: per-process layers).

With an in-memory channel layer nothing another process sends can reach this consumer;
it follows the job's row instead. These tests change the row directly, as another
process would, and never send to the group.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import Client
from django.utils import timezone

from exports import progress
from exports.models import ExportJob
from exports.tests.helpers import export_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def quick_follow(settings):
    settings.EXPORT_FOLLOW_ROW_SECONDS = 0.1


async def connect(user, job):
    client = Client()
    await sync_to_async(client.force_login)(user)
    communicator = export_socket(job.pk, client)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def update(job, **fields):
    ExportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now(), **fields)


async def test_a_watcher_follows_an_export_another_process_runs(quick_follow, django_user_model):
    alice = await django_user_model.objects.acreate(username="alice")
    job = await ExportJob.objects.acreate(user=alice, project_id=1, kind="framing")
    communicator = await connect(alice, job)
    try:
        assert (await communicator.receive_json_from(timeout=5))["status"] == "pending"
        await sync_to_async(update)(job, status="processing", progress=40, phase="render")
        message = await communicator.receive_json_from(timeout=5)
        assert (message["status"], message["progress"]) == ("processing", 40)
        await sync_to_async(update)(job, status="complete", progress=100, phase="done")
        assert (await communicator.receive_json_from(timeout=5))["status"] == "complete"
        assert await communicator.receive_nothing(timeout=0.5)  # final: it stops following
    finally:
        await communicator.disconnect()


async def test_while_the_group_delivers_the_lagging_row_is_not_sent(
    quick_follow, django_user_model
):
    alice = await django_user_model.objects.acreate(username="alice")
    job = await ExportJob.objects.acreate(
        user=alice, project_id=1, kind="framing", status="processing", heartbeat_at=timezone.now()
    )
    communicator = await connect(alice, job)
    layer = get_channel_layer()
    try:
        await communicator.receive_json_from(timeout=5)
        ahead = {**(await sync_to_async(job_message)(job)), "progress": 60}
        await sync_to_async(update)(job, progress=40)  # the row, saved less often, lags
        for _ in range(4):  # this process runs the export: its group speaks
            await layer.group_send(
                progress.group_name(str(job.pk)), {"type": "export.progress", "message": ahead}
            )
            assert (await communicator.receive_json_from(timeout=5))["progress"] == 60
            await asyncio.sleep(0.05)
        assert await communicator.receive_nothing(timeout=0.1)
    finally:
        await communicator.disconnect()


def job_message(job):
    job.refresh_from_db()
    return job.to_message()
