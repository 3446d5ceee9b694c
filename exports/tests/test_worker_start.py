"""A worker that starts finds the jobs a worker that went away was running.

Such a job is still ``processing``, its heartbeat long stopped. Without a sweep at
start it would stay so until someone looked at it (API, WebSocket); with one, a Celery
worker that is ready, or this process starting its export pool, ends it as a retryable
``worker_lost`` error at once. (A real Celery worker doing so: test_celery_export.)
"""

import uuid
from datetime import timedelta

import pytest
from celery.signals import worker_ready
from django.utils import timezone

from exports import queueing
from exports.models import ExportJob
from exports.tests.test_job_transitions import row, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def lost_job(user, stale_after: int) -> ExportJob:
    """A job that was processing on a worker that went away: no heartbeat for long."""
    stale = timezone.now() - timedelta(seconds=stale_after + 5)
    return ExportJob.objects.create(
        user=user, project_id=1, project_name="Game", kind="framing",
        status=ExportJob.Status.PROCESSING, attempts=1, started_at=stale, heartbeat_at=stale,
    )  # fmt: skip


@pytest.fixture
def orphan(alice, settings):
    return lost_job(alice, settings.EXPORT_STALE_AFTER)


@pytest.fixture
def running(alice, settings):
    """A job that is processing on a live worker (its heartbeat is fresh)."""
    return ExportJob.objects.create(
        user=alice, project_id=2, project_name="Other", kind="framing",
        status=ExportJob.Status.PROCESSING, attempts=1, started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )  # fmt: skip


@pytest.fixture
def unstarted_pool(monkeypatch):
    """This process's export pool as in a process that has not started it yet."""
    monkeypatch.setattr(queueing, "_pool", None)
    yield
    if queueing._pool is not None:
        queueing._pool.shutdown(wait=True)


def test_the_export_pool_marks_lost_jobs_when_it_starts(orphan, running, unstarted_pool):
    # The first job queued in this process starts the pool (this one does not exist).
    queueing.submit(uuid.uuid4())
    wait_for(lambda: row(orphan).status == ExportJob.Status.ERROR, "the sweep")
    lost = row(orphan)
    assert (lost.error_code, lost.retryable) == ("worker_lost", True)
    assert row(running).status == ExportJob.Status.PROCESSING


def test_a_celery_worker_marks_lost_jobs_when_it_is_ready(orphan, running):
    worker_ready.send(sender=None)
    lost = row(orphan)
    assert (lost.status, lost.error_code, lost.retryable) == ("error", "worker_lost", True)
    assert row(running).status == ExportJob.Status.PROCESSING
