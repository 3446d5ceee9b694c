"""Liveness and readiness answer without a session, and readiness names what failed."""

import json
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_signing_in():
    response = Client().get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_checks_the_database_and_the_store(s3_store):
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"central_database", "snapshot_store"}
    assert all(check["ok"] and check["ms"] >= 0 for check in body["checks"].values())


def test_readyz_is_503_and_says_why_when_the_store_is_down(s3_store, s3_outage):
    with s3_outage():
        response = Client().get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["central_database"]["ok"] is True
    assert checks["snapshot_store"]["ok"] is False
    assert checks["snapshot_store"]["error"]


def test_readyz_checks_redis_when_configured(settings, local_store):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    assert Client().get("/readyz").json()["checks"]["redis"]["ok"] is True


def test_secure_cookies_over_plain_http_say_why_sign_in_fails(settings, alice):
    settings.CSRF_COOKIE_SECURE = True  # what DJANGO_DEBUG=false sets by default
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 403
    assert "SECURE_COOKIES=false" in response.content.decode()
    api = client.post("/api/projects", {}, content_type="application/json")
    assert api.status_code == 403
    assert "https://" in api.json()["error"]


def test_metrics_count_requests_pushes_and_the_deployments_jobs(alice_client, local_store):
    from projects.tests.helpers import create_project

    create_project(alice_client, "Game")
    text = Client().get("/metrics").content.decode()
    assert 'reeleditor_request_seconds_count{method="POST",route="api-projects",status="2xx"}' in (
        text
    )
    assert 'reeleditor_pushes_total{outcome="ok"}' in text
    assert "reeleditor_lease_wait_seconds_count" in text
    assert "reeleditor_export_queue_depth 0.0" in text
    assert 'reeleditor_sync_users{status="ok"} 1.0' in text


def test_metrics_can_require_a_token(settings):
    settings.METRICS_TOKEN = "s3cret"
    assert Client().get("/metrics").status_code == 403
    ok = Client().get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_each_response_carries_its_request_id_and_log_lines_carry_it(
    alice, alice_client, local_store
):
    import logging

    from reeleditor.logs import ContextFilter, JsonFormatter

    given = alice_client.get("/api/projects", headers={"X-Request-ID": "abc-123"})
    assert given["X-Request-ID"] == "abc-123"
    made = alice_client.get("/api/projects")["X-Request-ID"]
    assert len(made) == 32 and made != "abc-123"

    # A line logged while serving a write names the request and the user.
    lines = []
    handler = logging.Handler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    handler.emit = lambda record: lines.append(handler.format(record))
    sync_logger = logging.getLogger("syncstore.sync")
    sync_logger.addHandler(handler)
    try:
        alice_client.post(
            "/api/projects",
            {"name": "Cup", "aspect_ratio": "9:16"},
            content_type="application/json",
            headers={"X-Request-ID": "write-7"},
        )
    finally:
        sync_logger.removeHandler(handler)
    [committed] = [json.loads(line) for line in lines if "committed user" in line]
    assert committed["request_id"] == "write-7"
    assert committed["user_id"] == alice.pk
    assert committed["level"] == "INFO"


def test_log_lines_of_an_export_job_carry_its_id():
    import logging

    from reeleditor import logs

    record = logging.LogRecord("exports.runner", logging.INFO, __file__, 1, "rendering", (), None)
    with logs.working_on_job("9f3c"):
        logs.ContextFilter().filter(record)
    assert json.loads(logs.JsonFormatter().format(record))["job_id"] == "9f3c"
    logs.ContextFilter().filter(record)  # outside the job: no id
    assert "job_id" not in json.loads(logs.JsonFormatter().format(record))


def test_export_durations_and_outcomes_are_metrics(monkeypatch, tmp_path):
    """Recorded where the export ends; a worker serves them on WORKER_METRICS_PORT, summed
    over its pool processes (prometheus_client's multiprocess mode)."""
    import subprocess
    import sys
    import time
    import urllib.request

    from reeleditor import observability
    from reeleditor.localcluster.processes import free_port

    observability.record_export("framing", "complete", 3.2)
    text = Client().get("/metrics").content.decode()
    assert 'reeleditor_export_seconds_count{kind="framing",outcome="complete"}' in text

    # A worker's main process serving what its pool processes recorded.
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    code = f"""
import multiprocessing, time
from reeleditor import observability

def export_in_pool_process():
    observability.record_export("overlay", "worker_lost", 12.0)

process = multiprocessing.get_context("fork").Process(target=export_in_pool_process)
process.start(); process.join()
observability.serve_worker_metrics({port})
time.sleep(30)
"""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PATH": "/usr/bin:/bin"}
    worker = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    served = r.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "the worker's metrics never answered"
                time.sleep(0.2)
    finally:
        worker.kill()
        worker.wait()
    assert 'reeleditor_export_seconds_count{kind="overlay",outcome="worker_lost"} 1.0' in served
