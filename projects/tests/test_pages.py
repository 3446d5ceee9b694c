import pytest

from .helpers import create_project, upload_clip

pytestmark = pytest.mark.django_db


def test_the_projects_page_lists_the_users_projects(alice_client, bob_client):
    create_project(alice_client, "Alice's cup final")
    page = alice_client.get("/").content.decode()
    assert "Alice&#x27;s cup final" in page
    assert "in framing" in page
    assert "Alice" not in bob_client.get("/").content.decode()


def test_creating_a_project_from_the_page(alice_client):
    response = alice_client.post("/", {"name": "League match", "aspect_ratio": "4:5"})
    assert response.status_code == 302
    project = alice_client.get("/api/projects").json()["projects"][0]
    assert (project["name"], project["aspect_ratio"]) == ("League match", "4:5")
    assert response["Location"] == f"/projects/{project['id']}/"


def test_creating_a_project_without_a_name_says_so(alice_client):
    response = alice_client.post("/", {"name": "", "aspect_ratio": "4:5"}, follow=True)
    assert b"Give the project a name" in response.content
    assert alice_client.get("/api/projects").json()["projects"] == []


def test_the_project_page_shows_its_clips(alice_client, game_clip_path):
    project = create_project(alice_client)
    clip = upload_clip(alice_client, project["id"], game_clip_path)
    page = alice_client.get(f"/projects/{project['id']}/").content.decode()
    assert clip["url"] in page
    assert "320\u00d7180" in page  # the multiplication sign between width and height


def test_another_users_project_page_is_404(alice_client, bob_client):
    project = create_project(alice_client)
    assert bob_client.get(f"/projects/{project['id']}/").status_code == 404
