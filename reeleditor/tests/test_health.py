"""Liveness and readiness answer without a session, and readiness names what failed."""

import pytest
from django.test import Client

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
