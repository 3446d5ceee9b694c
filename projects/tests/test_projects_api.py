import pytest

from projects.models import Project

from .helpers import create_project, in_user_db, post_json

pytestmark = pytest.mark.django_db


def test_it_creates_and_lists_projects(alice_client):
    created = create_project(alice_client, "Saturday final", "16:9")
    assert created["name"] == "Saturday final"
    assert created["aspect_ratio"] == "16:9"
    assert (created["output_width"], created["output_height"]) == (1920, 1080)

    listed = alice_client.get("/api/projects").json()["projects"]
    assert [p["id"] for p in listed] == [created["id"]]
    assert set(listed[0]) >= {
        "id", "name", "aspect_ratio", "clip_count", "clips_exported", "clips_in_progress",
        "has_working_video", "has_overlay_edits", "has_final_video", "current_mode",
        "created_at", "last_opened_at",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "", "aspect_ratio": "9:16"}, "invalid_name"),
        ({"name": "   ", "aspect_ratio": "9:16"}, "invalid_name"),
        ({"name": 7, "aspect_ratio": "9:16"}, "invalid_name"),
        ({"name": "x" * 201, "aspect_ratio": "9:16"}, "invalid_name"),
        ({"name": "ok", "aspect_ratio": "3:2"}, "invalid_aspect_ratio"),
        ({"name": "ok"}, "invalid_aspect_ratio"),
        ([1, 2], "invalid_json"),
    ],
)
def test_it_rejects_bad_project_input(alice_client, alice, body, code):
    response = post_json(alice_client, "/api/projects", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["error"]
    with in_user_db(alice):
        assert not Project.objects.exists()


def test_it_rejects_malformed_json(alice_client):
    response = alice_client.post("/api/projects", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "The request body is not valid JSON.",
        "code": "invalid_json",
    }


def test_it_renames_and_deletes(alice_client, alice):
    project = create_project(alice_client)
    url = f"/api/projects/{project['id']}"
    response = post_json(alice_client, url, {"name": "Renamed"}, method="patch")
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"

    assert alice_client.delete(url).status_code == 204
    assert alice_client.get(url).status_code == 404
    with in_user_db(alice):
        assert not Project.objects.exists()


def test_overlay_mode_needs_a_working_video(alice_client):
    project = create_project(alice_client)
    url = f"/api/projects/{project['id']}"
    response = post_json(alice_client, url, {"current_mode": "overlay"}, method="patch")
    assert response.status_code == 409
    assert response.json()["code"] == "working_video_required"
    assert alice_client.get(url).json()["current_mode"] == "framing"


def test_opening_a_project_stamps_last_opened_at(alice_client):
    project = create_project(alice_client)
    assert project["last_opened_at"] is None
    response = alice_client.post(f"/api/projects/{project['id']}/open")
    assert response.status_code == 200
    assert response.json()["last_opened_at"] is not None


def test_it_answers_unknown_methods_with_json_405(alice_client):
    response = alice_client.put("/api/projects")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, POST"


def test_unknown_api_paths_are_json_404(alice_client):
    response = alice_client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_api_needs_a_signed_in_user(client):
    response = client.get("/api/projects")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_pages_redirect_anonymous_users_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
