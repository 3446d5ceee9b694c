"""Liveness and readiness for load balancers and orchestrators.

``/healthz`` answers as long as the process serves requests (no dependency is asked:
a database outage must not make an orchestrator restart every web process).
``/readyz`` asks each dependency this instance needs to take traffic — the central
database, Redis when configured, the snapshot store — and says how long each took; 503
when any of them fails, so the entry point sends requests elsewhere.
"""

import time

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from syncstore.stores import get_store


@login_not_required
@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _central_database():
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis():
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _snapshot_store():
    get_store().exists("health/probe")  # a cheap request that needs the bucket to answer


def _checks():
    checks = {"central_database": _central_database, "snapshot_store": _snapshot_store}
    if settings.REDIS_URL:
        checks["redis"] = _redis
    return checks


@login_not_required
@never_cache
@require_GET
def readyz(request):
    results = {}
    for name, check in _checks().items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure means "not ready", said with its reason
            outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            outcome = {"ok": True}
        outcome["ms"] = round((time.perf_counter() - started) * 1000, 1)
        results[name] = outcome
    ready = all(result["ok"] for result in results.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )
