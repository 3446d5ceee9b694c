"""The production channel layer on a real Redis: a watcher that hears nothing for a while
must keep listening.

redis-py 8 gives every connection a 5 s read timeout by default, and channels_redis
waits for messages with a 5 s blocking pop: the read timed out first, so every export
watcher with nothing to hear for 5 s crashed and its WebSocket dropped (seen in the
cluster load suite as a storm of reconnects; channels_redis issue 422).
"""

import asyncio

import pytest
from channels.layers import get_channel_layer

from reeleditor.settings import channel_layers_for

REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
def redis_layer(settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = channel_layers_for(REDIS_URL)
    channel_layers.backends = {}
    yield get_channel_layer()
    channel_layers.backends = {}


@pytest.mark.asyncio
async def test_a_quiet_watcher_keeps_listening_past_the_blocking_pop(redis_layer):
    channel = await redis_layer.new_channel()

    async def send_later():
        await asyncio.sleep(7)  # longer than one blocking pop and redis-py's default timeout
        await redis_layer.send(channel, {"type": "export.progress", "message": {"progress": 50}})

    sender = asyncio.create_task(send_later())
    message = await asyncio.wait_for(redis_layer.receive(channel), timeout=30)
    await sender
    assert message["message"] == {"progress": 50}
    await redis_layer.flush()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_watcher_is_told_to_come_back_when_redis_is_down(settings, django_user_model):
    """Refused with "try again later" (1013), not a crash that resets the connection:
    the entry point counts resets against the instance and stops sending it requests."""
    from asgiref.sync import sync_to_async
    from channels.layers import channel_layers
    from django.test import Client

    from exports.models import ExportJob
    from exports.tests.helpers import export_socket

    settings.CHANNEL_LAYERS = channel_layers_for("redis://127.0.0.1:1/0")  # nothing there
    channel_layers.backends = {}
    try:
        coach = await django_user_model.objects.acreate(username="coach")
        job = await ExportJob.objects.acreate(user=coach, project_id=1, kind="framing")
        client = Client()
        await sync_to_async(client.force_login)(coach)
        communicator = export_socket(job.id, client)
        connected, code = await communicator.connect(timeout=20)
        assert (connected, code) == (False, 1013)  # try again later
    finally:
        channel_layers.backends = {}
