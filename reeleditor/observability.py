"""What an operator measures: Prometheus metrics, and request ids.

* ``ObservabilityMiddleware`` (first in MIDDLEWARE) gives each request an id (the
  entry point's ``X-Request-ID`` when it sends one, else a new one; echoed in the
  response), times it, and counts it by route and status.
* ``/metrics`` serves the process's metrics in Prometheus' text format; figures that
  belong to the whole deployment (export jobs by status, the queue's depth, users with
  failed or conflicting syncs) are read from the central database at scrape time, so
  any web instance reports them and Celery workers need no HTTP server of their own.
* Export durations and outcomes are recorded where the export runs: in a web instance
  (the embedded pool) they show on its ``/metrics``; a Celery worker serves its own on
  ``WORKER_METRICS_PORT`` (``serve_worker_metrics``), summed over its pool processes
  when ``PROMETHEUS_MULTIPROC_DIR`` is set (prometheus_client's multiprocess mode).
* Log lines carry the request id (``reeleditor/logs.py``).
"""

import os
import time
import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, HttpResponseForbidden
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import REGISTRY, GaugeMetricFamily

from .logs import request_id

REQUEST_SECONDS = Histogram(
    "reeleditor_request_seconds",
    "Time to answer an HTTP request.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PUSH_SECONDS = Histogram(
    "reeleditor_push_seconds",
    "Time to make a user's writes durable (snapshot, upload, commit).",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PUSHES = Counter("reeleditor_pushes", "Pushes by outcome (ok, failed, conflict).", ["outcome"])
LEASE_WAITERS = Gauge(
    "reeleditor_lease_waiters",
    "Writers of this process taking a user's lease now (waiting, when another holds it).",
    multiprocess_mode="livesum",
)
LEASE_WAIT_SECONDS = Histogram(
    "reeleditor_lease_wait_seconds",
    "Time a writer waited for a user's lease.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)

EXPORT_SECONDS = Histogram(
    "reeleditor_export_seconds",
    "Time from an export's claim to its end, by kind and outcome (complete, cancelled or"
    " the error code).",
    ["kind", "outcome"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800),
)


def record_push(outcome: str, seconds: float) -> None:
    PUSHES.labels(outcome).inc()
    PUSH_SECONDS.labels(outcome).observe(seconds)


def record_export(kind: str, outcome: str, seconds: float) -> None:
    EXPORT_SECONDS.labels(kind, outcome).observe(max(0.0, seconds))


def serve_worker_metrics(port: int) -> None:
    """Serve this worker's metrics on ``port`` (a thread of the worker's main process)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    start_http_server(port, registry=registry)


class _DeploymentCollector:
    """Figures of the whole deployment, from the central database at scrape time."""

    def describe(self):
        return []  # registered before the apps are ready: never collect at import

    def collect(self):
        from django.db.models import Count

        from exports.models import ExportJob
        from syncstore.models import SyncState

        jobs = GaugeMetricFamily(
            "reeleditor_export_jobs", "Export jobs by kind and status.", labels=["kind", "status"]
        )
        for row in ExportJob.objects.values("kind", "status").annotate(n=Count("pk")):
            jobs.add_metric([row["kind"], row["status"]], row["n"])
        yield jobs
        queued = ExportJob.objects.filter(status=ExportJob.Status.PENDING).count()
        yield GaugeMetricFamily(
            "reeleditor_export_queue_depth", "Export jobs waiting for a worker.", value=queued
        )
        sync = GaugeMetricFamily(
            "reeleditor_sync_users", "Users by sync registry status.", labels=["status"]
        )
        for row in SyncState.objects.values("status").annotate(n=Count("pk")):
            sync.add_metric([row["status"]], row["n"])
        yield sync


REGISTRY.register(_DeploymentCollector())


@login_not_required
def metrics(request):
    token = settings.METRICS_TOKEN
    if token and request.headers.get("Authorization") != f"Bearer {token}":
        return HttpResponseForbidden("metrics need the bearer token (METRICS_TOKEN)")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


class ObservabilityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        match = getattr(request, "resolver_match", None)
        route = (match.view_name if match else "") or "unmatched"
        REQUEST_SECONDS.labels(request.method, route, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        response["X-Request-ID"] = rid
        return response
