"""Export progress over a WebSocket: the owner of a job watches it live.

Progress reaches the consumer through the job's Channels group. With an in-memory
channel layer (no Redis) a group only spans one process, and with several web
processes on one machine (``reeleditor.serve``) the export may run in another one: the
consumer then also follows the job row (``EXPORT_FOLLOW_ROW_SECONDS``) and sends each
change of it, unless the group is delivering (then this is the export's own process,
and the row, saved once a second, would only lag behind the group's messages).
"""

import asyncio
import logging
import time
import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer
from django.conf import settings

from . import jobs, progress
from .models import ExportJob

logger = logging.getLogger(__name__)
# Close code of a watcher refused because the channel layer (Redis) is unreachable:
# "try again later"; the export panel reconnects, and the job's state is in the
# database meanwhile, so nothing is missed.
TRY_AGAIN_LATER = 1013


class ExportProgressConsumer(AsyncJsonWebsocketConsumer):
    """Authenticate, check ownership, join ``export_<id>``, send the state, forward.

    The group is joined *before* the current state is read, so no update can fall in
    between; a subscriber that arrives after the job ended still gets its final state.
    """

    async def connect(self):
        user = self.scope.get("user")
        job_id = self.scope["url_route"]["kwargs"]["job_id"]
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await self._owns(user, job_id):
            await self.close(code=4404)  # another user's job looks like no job at all
            return
        progress.remember_consumer_loop()
        group = progress.group_name(job_id)
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:  # the layer's own errors (redis-py's), whatever they are
            # Refuse with an answer rather than crash: a crash resets the connection,
            # which the entry point counts against this instance.
            logger.warning("export watcher refused: channel layer unavailable (%s)", exc)
            await self.close(code=TRY_AGAIN_LATER)
            return
        self.group = group
        self.last_group_message = float("-inf")
        await self.accept()
        state = await self._current_state(job_id)
        await self.send_json(state)
        per_process = isinstance(self.channel_layer, InMemoryChannelLayer)
        if per_process and state["status"] in ExportJob.ACTIVE:
            self.follower = asyncio.create_task(self._follow_row(job_id, state))

    async def disconnect(self, code):
        follower = getattr(self, "follower", None)
        if follower is not None:
            follower.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _follow_row(self, job_id, seen: dict):
        """Send each change of the job's row until it is final, while the group is quiet."""
        interval = settings.EXPORT_FOLLOW_ROW_SECONDS
        while seen["status"] in ExportJob.ACTIVE:
            await asyncio.sleep(interval)
            state = await self._current_state(job_id)
            quiet = time.monotonic() - self.last_group_message > 2 * interval
            if state != seen and quiet:
                await self.send_json(state)
            seen = state

    async def receive_json(self, content, **kwargs):
        # The client may ask again (after a reconnect, or to be sure).
        if content.get("type") == "state":
            await self.send_json(
                await self._current_state(self.scope["url_route"]["kwargs"]["job_id"])
            )

    async def export_progress(self, event):
        self.last_group_message = time.monotonic()
        await self.send_json(event["message"])

    @database_sync_to_async
    def _owns(self, user, job_id) -> bool:
        try:
            return ExportJob.objects.filter(pk=uuid.UUID(job_id), user=user).exists()
        except ValueError:
            return False

    @database_sync_to_async
    def _current_state(self, job_id) -> dict:
        job = ExportJob.objects.get(pk=job_id)
        jobs.mark_if_lost(job)
        return job.to_message()
