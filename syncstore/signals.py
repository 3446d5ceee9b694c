"""Celery workers hold working copies too (export finalize writes): retry theirs."""

from celery.signals import worker_ready

from . import retry


@worker_ready.connect
def start_retry_in_worker(**kwargs):
    retry.ensure_running()
