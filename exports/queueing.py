"""Where a queued export runs: a Celery worker when ``REDIS_URL`` is set, else this process.

With a broker, jobs go to Celery (workers may be other machines, GPU machines for AI
upscaling); the embedded default runs them on a small thread pool here. Either way the
same body runs (:func:`exports.runner.run_job`), and its claim makes queueing a job
twice harmless.

A worker starting is when jobs its predecessor was running are found lost: Celery
workers sweep on ``worker_ready`` (:mod:`exports.signals`), and the pool runs the
callbacks given to :func:`when_pool_starts` (the app wires ``jobs.sweep_lost_jobs``
there, so that this module, which ``jobs`` queues through, never imports ``jobs``).
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from django.conf import settings
from django.db import close_old_connections
from kombu.exceptions import OperationalError

from . import runner
from .tasks import run_export_job

logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_guard = threading.Lock()
_on_pool_start: list[Callable[[], object]] = []


def submit(job_id) -> None:
    """Queue the job (called on commit of the transaction that created or reset it)."""
    if settings.REDIS_URL:
        try:
            run_export_job.apply_async((str(job_id),), queue=celery_queue_for(job_id))
        except OperationalError as exc:  # the broker is unreachable (Redis restarting)
            # The job is recorded as pending: it is queued again when it is next looked
            # at after EXPORT_STALE_AFTER (jobs.mark_if_lost), so the request that
            # started it still answers what is true: the export is queued.
            logger.warning("export %s not handed to the broker (%s); it stays queued", job_id, exc)
        return
    _local_pool().submit(_run_in_pool, str(job_id))


def celery_queue_for(job_id) -> str:
    """AI-upscaled exports go to their own queue, which only GPU workers consume
    (``celery -A reeleditor worker -Q upscale``); every other export to the default."""
    from .models import ExportJob

    params = ExportJob.objects.filter(pk=job_id).values_list("params", flat=True).first() or {}
    return settings.EXPORT_UPSCALE_QUEUE if params.get("upscale") else settings.EXPORT_QUEUE


def when_pool_starts(callback: Callable[[], object]) -> None:
    """Run ``callback()`` on the pool first thing whenever this process starts its pool."""
    if callback not in _on_pool_start:
        _on_pool_start.append(callback)


def _local_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_guard:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.EXPORT_WORKERS, thread_name_prefix="export"
            )
            # Queued ahead of the job that started the pool, on a pool thread: the
            # request that queued it does not wait, and the job is claimed all the same.
            for callback in _on_pool_start:
                _pool.submit(_run_at_start, callback)
        return _pool


def _run_in_pool(job_id: str) -> None:
    with _own_connections():
        try:
            runner.run_job(job_id)
        except Exception:
            logger.exception("export %s crashed", job_id)


def _run_at_start(callback: Callable[[], object]) -> None:
    with _own_connections():
        try:
            callback()
        except Exception:  # the jobs it would have found are still found when read
            logger.exception("%s failed as the export pool started", callback.__qualname__)


@contextmanager
def _own_connections():
    # A pool thread starts with no request context and must manage its own connections.
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()
