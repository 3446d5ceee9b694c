"""The Content-Security-Policy (reeleditor/csp.py) and the production TLS settings.

Chromium's side (no page breaks the policy) is in test_browser_csp.py and in every
browser test; here: the header on every kind of response, its nonce, its sources, the
report endpoint, HSTS and secure cookies.
"""

import json
import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission

from projects.tests.helpers import create_project
from reeleditor import csp
from reeleditor.settings import store_origins

pytestmark = pytest.mark.django_db


def _directives(response) -> dict[str, list[str]]:
    header = response[csp.HEADER]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


@pytest.mark.parametrize(
    "path",
    ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/healthz", "/nowhere"],
)
def test_anonymous_responses_carry_the_policy(client, path):
    directives = _directives(client.get(path))
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_the_policy_has_no_unsafe_source_and_a_fresh_nonce(alice_client):
    project = create_project(alice_client)
    pages = [
        "/",
        f"/projects/{project['id']}/",
        f"/projects/{project['id']}/overlay/",
        "/api/projects",
    ]
    nonces = set()
    for path in pages:
        response = alice_client.get(path)
        assert response.status_code == 200, path
        header = response[csp.HEADER]
        assert "unsafe" not in header and "*" not in header, header
        directives = _directives(response)
        for name in ("script-src", "style-src"):
            (nonce,) = [v for v in directives[name] if v.startswith("'nonce-")]
            nonces.add(nonce)
        assert directives["script-src"][0] == "'self'"
        assert "ws://testserver" in directives["connect-src"]
    assert len(nonces) == len(pages)  # one per response, shared by its two directives


def test_an_inline_block_gets_the_responses_nonce(staff, staff_client):
    staff.user_permissions.add(Permission.objects.get(codename="view_workingvideo"))
    response = staff_client.get("/admin/projects/workingvideo/")
    assert response.status_code == 200
    (nonce,) = re.findall(r'<style nonce="([^"]+)">', response.content.decode())
    assert f"'nonce-{nonce}'" in _directives(response)["style-src"]


def test_media_may_come_from_the_object_store_only(settings, alice_client):
    settings.CSP_MEDIA_ORIGINS = ["https://media.example.org"]
    directives = _directives(alice_client.get("/"))
    for name in ("media-src", "img-src", "connect-src"):
        assert "https://media.example.org" in directives[name]
    assert directives["media-src"] == ["'self'", "blob:", "https://media.example.org"]


def test_the_store_origins_follow_the_s3_settings():
    assert store_origins("", None, None, "us-east-1") == []
    assert store_origins("reels", "http://127.0.0.1:9000", None, "auto") == [
        "http://127.0.0.1:9000",
        "http://reels.127.0.0.1:9000",
    ]
    # Browsers get links signed for the public endpoint, not the internal one.
    assert store_origins("reels", "http://minio:9000", "https://s3.example.org/x", "auto")[0] == (
        "https://s3.example.org"
    )
    assert store_origins("reels", None, None, "eu-west-1") == [
        "https://reels.s3.amazonaws.com",
        "https://reels.s3.eu-west-1.amazonaws.com",
    ]


def test_a_violation_report_is_logged_and_counted(client, caplog):
    before = csp.VIOLATIONS._value.get()
    report = {
        "csp-report": {
            "document-uri": "http://testserver/projects/1/",
            "violated-directive": "style-src-attr",
            "blocked-uri": "inline",
        }
    }
    response = client.post(
        csp.REPORT_PATH, json.dumps(report), content_type="application/csp-report"
    )
    assert response.status_code == 204
    assert csp.VIOLATIONS._value.get() == before + 1
    assert "style-src-attr blocked inline" in caplog.text


def test_a_report_that_is_not_one_is_refused(client):
    assert (
        client.post(csp.REPORT_PATH, "not json", content_type="application/csp-report").status_code
        == 400
    )
    assert (
        client.post(csp.REPORT_PATH, "[1]", content_type="application/csp-report").status_code
        == 400
    )
    huge = json.dumps({"csp-report": {"blocked-uri": "x" * (csp.MAX_REPORT_BYTES + 1)}})
    assert (
        client.post(csp.REPORT_PATH, huge, content_type="application/csp-report").status_code == 413
    )
    assert client.get(csp.REPORT_PATH).status_code == 405


def _production_settings(**environ) -> dict:
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        "print(json.dumps({k: getattr(settings, k, None) for k in ("
        "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS',"
        "'SECURE_PROXY_SSL_HEADER')}))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-test-secret-that-is-long-enough-for-django-0123456789",
        **environ,
    }
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def test_production_behind_tls_has_secure_cookies_and_hsts():
    values = _production_settings()
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert _production_settings(HSTS_SECONDS="600")["SECURE_HSTS_SECONDS"] == 600


def test_production_without_tls_turns_both_off():
    values = _production_settings(SECURE_COOKIES="false")
    assert not values["SESSION_COOKIE_SECURE"] and not values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] == 0
