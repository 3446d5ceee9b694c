"""The Celery task of an export: a thin face on the task body, nothing of its own.

Queued by :mod:`exports.queueing` when ``REDIS_URL`` is set. Late acks: a worker that
dies mid-export leaves the message to be delivered again, and the runner's claim makes
that second delivery a no-op unless the job is pending again.
"""

from celery import shared_task

from . import runner


@shared_task(name="exports.run_export_job", acks_late=True)
def run_export_job(job_id: str) -> None:
    """The Celery face of runner.run_job: same body as the in-process pool."""
    runner.run_job(job_id)
