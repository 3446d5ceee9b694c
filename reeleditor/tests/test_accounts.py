import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


def test_signup_creates_the_user_signs_in_and_opens_the_projects_page(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "coach", "password1": "kick-off-2026!", "password2": "kick-off-2026!"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert User.objects.filter(username="coach").exists()
    page = client.get("/")
    assert page.status_code == 200
    assert b"coach" in page.content
    assert b"No projects yet" in page.content


def test_signup_shows_errors_and_creates_nobody(client):
    response = client.post(
        "/accounts/signup/", {"username": "coach", "password1": "a", "password2": "b"}
    )
    assert response.status_code == 200
    assert b"form-error" in response.content
    assert not User.objects.exists()


def test_login_and_logout(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert client.get("/api/projects").status_code == 200

    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/api/projects").status_code == 401


def test_login_rejects_a_wrong_password(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert client.get("/api/projects").status_code == 401


def test_the_login_and_signup_pages_are_public(client):
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/accounts/signup/").status_code == 200


def test_the_admin_is_for_staff_only(alice_client):
    response = alice_client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_layout_shows_the_user_and_the_sync_badge_spot(alice_client):
    page = alice_client.get("/").content.decode()
    assert "alice" in page
    assert 'id="sync-badge"' in page
    assert "Sign out" in page


def test_api_csrf_failures_are_json(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        "/api/projects", '{"name": "x", "aspect_ratio": "9:16"}', content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
