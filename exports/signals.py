"""Celery workers: a worker that is ready sweeps the jobs its predecessor lost.

A job that was processing on a worker that died (a deploy, a crash, a lost GPU machine)
would otherwise wait until someone looks at it to be marked ``worker_lost``. A worker
with ``WORKER_METRICS_PORT`` set also serves its Prometheus metrics (export durations
and outcomes) there.
"""

from celery.signals import worker_ready
from django.conf import settings
from django.db import connections

from reeleditor import observability

from . import jobs


@worker_ready.connect
def serve_metrics_in_worker(**kwargs):
    if settings.WORKER_METRICS_PORT:
        observability.serve_worker_metrics(settings.WORKER_METRICS_PORT)


@worker_ready.connect
def sweep_lost_jobs_in_worker(**kwargs):
    try:
        jobs.sweep_lost_jobs()
    finally:
        # The worker's main process keeps no connection of its own: its pool processes
        # are forked from it, and must not share one. That includes the idle ones of a
        # PostgreSQL connection pool (a child would inherit their sockets; Celery closes
        # the child's copy, which would end the parent's connections on the server).
        connections.close_all()
        for connection in connections.all(initialized_only=True):
            if connection.settings_dict.get("OPTIONS", {}).get("pool"):
                connection.close_pool()
