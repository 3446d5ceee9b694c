"""The Celery task that builds a data export (``accounts.dataexport``), queued with the
exports when ``REDIS_URL`` is set."""

from celery import shared_task

from . import dataexport


@shared_task(name="accounts.build_data_export", acks_late=True)
def build_data_export(export_id: str) -> None:
    dataexport.build(export_id)
