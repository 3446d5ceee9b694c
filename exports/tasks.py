from celery import shared_task

from . import runner


@shared_task(name="exports.run_export_job", acks_late=True)
def run_export_job(job_id: str) -> None:
    """The Celery face of runner.run_job: same body as the in-process pool."""
    runner.run_job(job_id)
