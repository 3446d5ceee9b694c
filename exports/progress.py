"""Export progress: saved on the job row and sent to the job's Channels group.

Messages go to group ``export_<job id>`` (the consumer forwards them to the browser).
Progress is throttled to about four messages a second; a phase change and the final
message always go out. The row is updated at most once a second, which doubles as the
worker's heartbeat: a job whose heartbeat stops is detected as lost (jobs.py).
"""

import asyncio
import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.utils import timezone

from .models import ExportJob

logger = logging.getLogger(__name__)

SEND_INTERVAL = 0.25
SAVE_INTERVAL = 1.0


def group_name(job_id) -> str:
    return f"export_{job_id}"


# The event loop the WebSocket consumers of this process run on. The in-memory channel
# layer (embedded default) keeps plain asyncio queues: a message must be put on them
# from that loop, not from a worker thread's own loop, or the waiting consumer is not
# woken. The Redis layer has no such constraint.
_consumer_loop: asyncio.AbstractEventLoop | None = None


def remember_consumer_loop() -> None:
    """Called by the consumer on connect, on the server's event loop."""
    global _consumer_loop
    _consumer_loop = asyncio.get_running_loop()


def broadcast(job: ExportJob) -> None:
    """Send the job's current state to everyone watching it."""
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"type": "export.progress", "message": job.to_message()}
    try:
        _group_send(layer, group_name(job.id), event)
    except Exception:  # a missed message is caught up on reconnect; the job goes on
        logger.exception("could not send progress of export %s", job.id)


def _group_send(layer, group: str, event: dict) -> None:
    loop = _consumer_loop
    if isinstance(layer, InMemoryChannelLayer) and loop is not None and not loop.is_closed():
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            asyncio.run_coroutine_threadsafe(layer.group_send(group, event), loop).result(5)
            return
    async_to_sync(layer.group_send)(group, event)


class ProgressReporter:
    """Turns a pipeline's ``progress(done, total, phase)`` calls into saved, sent updates."""

    def __init__(self, job: ExportJob, *, start: int = 0, end: int = 100):
        self.job = job
        self.start, self.end = start, end  # the slice of 0-100 this stage covers
        self._last_sent = 0.0
        self._last_saved = 0.0

    def __call__(self, done: int, total: int, phase: str) -> None:
        fraction = done / total if total else 0.0
        percent = self.start + int((self.end - self.start) * min(max(fraction, 0.0), 1.0))
        self.update(percent, phase)

    def update(self, percent: int, phase: str, message: str = "") -> None:
        job = self.job
        phase_changed = phase != job.phase
        job.progress = max(job.progress, min(percent, 100))  # never goes back
        job.phase = phase
        if message:
            job.message = message
        now = time.monotonic()
        if phase_changed or now - self._last_saved >= SAVE_INTERVAL:
            self.save()
        if phase_changed or now - self._last_sent >= SEND_INTERVAL:
            self._last_sent = now
            broadcast(job)

    def save(self) -> None:
        self._last_saved = time.monotonic()
        self.job.heartbeat_at = timezone.now()
        ExportJob.objects.filter(pk=self.job.pk).update(
            progress=self.job.progress,
            phase=self.job.phase,
            message=self.job.message,
            heartbeat_at=self.job.heartbeat_at,
        )
