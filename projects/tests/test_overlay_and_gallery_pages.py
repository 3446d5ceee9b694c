"""The server-rendered frames of overlay mode and the gallery (the editor itself is
static/js/overlay.js, exercised by the browser tests)."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from projects.models import FinalVideo

from .helpers import add_final_video, add_working_video, create_project, in_user_db

pytestmark = pytest.mark.django_db


def project_data(page: str) -> dict:
    match = re.search(r'<script id="project-data" type="application/json">(.*?)</script>', page)
    return json.loads(match[1])


def test_overlay_without_a_working_video_says_export_first(alice_client):
    project = create_project(alice_client)

    page = alice_client.get(f"/projects/{project['id']}/overlay/").content.decode()

    assert 'data-testid="export-required"' in page
    assert "Export required for overlay mode" in page
    assert f'href="/projects/{project["id"]}/"' in page
    assert 'data-testid="overlay-video"' not in page
    assert "js/overlay.js" not in page


def test_overlay_with_a_working_video_loads_the_editor(alice, alice_client):
    project = create_project(alice_client)
    video = add_working_video(alice, project["id"], width=270, height=480, duration=2.0)

    response = alice_client.get(f"/projects/{project['id']}/overlay/")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="export-required"' not in page
    assert f'data-testid="overlay-video" src="/media/{video.file}"' in page
    for testid in (
        "add-region",
        "overlay-preview",
        "save-status",
        "final-export-button",
        "open-gallery",
    ):
        assert f'data-testid="{testid}"' in page
    assert "css/overlay.css" in page and "js/overlay.js" in page
    # The script gets the working video's size and duration from the page.
    data = project_data(page)
    assert (data["working_video"]["width"], data["working_video"]["height"]) == (270, 480)
    assert data["working_video"]["duration"] == 2.0
    assert "csrftoken" in response.cookies  # the editor's PUTs need it


def test_the_gallery_lists_final_videos_newest_first_with_downloads(alice, alice_client):
    project = create_project(alice_client, "Cup final")
    add_working_video(alice, project["id"])
    older = add_final_video(alice, project["id"])
    newer = add_final_video(alice, project["id"])
    with in_user_db(alice):
        FinalVideo.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=1))

    page = alice_client.get(f"/projects/{project['id']}/gallery/").content.decode()

    assert page.count('data-testid="gallery-item"') == 2
    assert page.index(f"/media/{newer.file}") < page.index(f"/media/{older.file}")
    links = re.findall(r'<a [^>]*data-testid="download-link"[^>]*>', page)
    assert len(links) == 2
    download = r"\?download=cup-final-\d{8}-\d{6}\.mp4"
    assert re.search(f'href="/media/{newer.file}{download}"', links[0])
    assert re.search(r'download="cup-final-\d{8}-\d{6}\.mp4"', links[0])
    assert "2.0 s" in page and "1000\xa0bytes" in page


def test_an_empty_gallery_points_to_the_next_step(alice, alice_client):
    project = create_project(alice_client)
    page = alice_client.get(f"/projects/{project['id']}/gallery/").content.decode()
    assert "No final video yet" in page
    assert 'data-testid="gallery-item"' not in page
    assert f'href="/projects/{project["id"]}/"' in page

    add_working_video(alice, project["id"])
    page = alice_client.get(f"/projects/{project['id']}/gallery/").content.decode()
    assert f'href="/projects/{project["id"]}/overlay/"' in page


def test_another_users_overlay_and_gallery_are_404(alice_client, bob_client):
    project = create_project(alice_client)
    assert bob_client.get(f"/projects/{project['id']}/overlay/").status_code == 404
    assert bob_client.get(f"/projects/{project['id']}/gallery/").status_code == 404
