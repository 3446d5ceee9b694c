"""Export progress: saved on the job row and sent to the job's Channels group.

Messages go to group ``export_<job id>`` (the consumer forwards them to the browser).
Progress is throttled to about four messages a second; a phase change and the final
message always go out. The row is updated at most once a second, which doubles as the
worker's heartbeat: a job whose heartbeat stops is detected as lost (jobs.py). Where
no progress is reported (upload, finalize) ``Attempt.heartbeat()`` beats instead.

Every write a worker makes is fenced by its ``Attempt``: a job marked lost and retried
is run by a newer attempt, and the older one, should it wake up, must not touch it.
"""

import asyncio
import logging
import threading
import time
from contextlib import contextmanager

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import connections
from django.utils import timezone

from .models import ExportJob

logger = logging.getLogger(__name__)

SEND_INTERVAL = 0.25
SAVE_INTERVAL = 1.0


class AttemptLost(Exception):
    """This attempt no longer holds its job (marked lost, then retried or left as error)."""


class Attempt:
    """One run of a job, as claimed: the attempt number fences every write it makes.

    The row is this attempt's only while it is ``processing`` with ``attempts`` equal to
    the number the claim wrote. Once a write finds it is not, it never will be again
    (``attempts`` only grows), so the attempt stays lost and stops writing.
    """

    def __init__(self, job_id, number: int):
        self.job_id, self.number = job_id, number
        self._lost = threading.Event()  # set from the heartbeat thread too

    def __repr__(self):
        return f"<Attempt {self.number} of export {self.job_id}>"

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def rows(self):
        return ExportJob.objects.filter(
            pk=self.job_id, status=ExportJob.Status.PROCESSING, attempts=self.number
        )

    def update(self, **fields) -> bool:
        """Write ``fields`` if this attempt still holds the job; False if it lost it."""
        if self.lost:
            return False
        if self.rows().update(**fields):
            return True
        self.mark_lost()
        return False

    def mark_lost(self) -> None:
        if not self._lost.is_set():
            self._lost.set()
            logger.warning("export %s: attempt %s lost the job", self.job_id, self.number)

    @contextmanager
    def heartbeat(self, interval: float | None = None):
        """Keep the heartbeat fresh while the caller does something long without progress.

        A thread, not the caller: an upload or a finalize is one blocking call that
        reports nothing, and may take longer than ``EXPORT_STALE_AFTER``. Raises
        ``AttemptLost`` instead of starting, so a lost attempt does not begin that work.
        """
        interval = interval or heartbeat_interval()
        # The first beat now, on the caller's thread: the last progress save may be a
        # while ago, and the thread may not get to run at once.
        if not self.beat():
            raise AttemptLost(repr(self))
        stop = threading.Event()
        thread = threading.Thread(
            target=self._beat_until, args=(stop, interval), daemon=True,
            name=f"export-heartbeat-{self.job_id}",
        )  # fmt: skip
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def beat(self) -> bool:
        return self.update(heartbeat_at=timezone.now())

    def _beat_until(self, stop: threading.Event, interval: float) -> None:
        try:
            while not stop.wait(interval):
                try:
                    if not self.beat():
                        return
                except Exception:  # one missed beat is what the stale limit allows for
                    logger.exception("export %s: heartbeat failed", self.job_id)
        finally:
            # Connections are per thread: this one would otherwise stay open for good.
            connections.close_all()


def heartbeat_interval() -> float:
    """Seconds between beats: EXPORT_HEARTBEAT_SECONDS, or well under the stale limit."""
    configured = getattr(settings, "EXPORT_HEARTBEAT_SECONDS", None)
    return configured or min(10.0, settings.EXPORT_STALE_AFTER / 4)


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

    def __init__(self, job: ExportJob, attempt: Attempt, *, start: int = 0, end: int = 100):
        self.job, self.attempt = job, attempt
        self.start, self.end = start, end  # the slice of 0-100 this stage covers
        self._last_sent = 0.0
        self._last_saved = 0.0

    def __call__(self, done: int, total: int, phase: str) -> None:
        fraction = done / total if total else 0.0
        percent = self.start + int((self.end - self.start) * min(max(fraction, 0.0), 1.0))
        self.update(percent, phase)

    def update(self, percent: int, phase: str, message: str = "") -> None:
        job = self.job
        if self.attempt.lost:  # a newer attempt (or none) owns the row and its messages
            return
        phase_changed = phase != job.phase
        job.progress = max(job.progress, min(percent, 100))  # never goes back
        job.phase = phase
        if message:
            job.message = message
        now = time.monotonic()
        # Saved before sent: an attempt that stalled long enough to be marked lost has
        # not saved for over a second, so it finds out here before it sends anything.
        if (phase_changed or now - self._last_saved >= SAVE_INTERVAL) and not self.save():
            return
        if phase_changed or now - self._last_sent >= SEND_INTERVAL:
            self._last_sent = now
            broadcast(job)

    def save(self) -> bool:
        """Save progress and heartbeat; False if this attempt no longer holds the job."""
        self._last_saved = time.monotonic()
        now = timezone.now()
        saved = self.attempt.update(
            progress=self.job.progress,
            phase=self.job.phase,
            message=self.job.message,
            heartbeat_at=now,
        )
        if saved:
            self.job.heartbeat_at = now
        return saved
