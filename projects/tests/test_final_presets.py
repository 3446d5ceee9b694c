"""The final video's presets through the API: resolution, quality and the title card are
saved on the project, checked with a clear error, and copied into the overlay export."""

import pytest

from exports.models import ExportJob
from projects import presets
from projects.models import Project

from .helpers import add_working_video, create_project, in_user_db, post_json

pytestmark = pytest.mark.django_db

CARD = {"enabled": True, "player": "Maya Okafor", "team": "Riverside U14", "date": "2026-11-28"}


def patch(client, project_id, body):
    return post_json(client, f"/api/projects/{project_id}", body, method="patch")


def test_a_new_project_has_full_size_standard_quality_and_no_card(alice_client):
    project = create_project(alice_client)
    detail = alice_client.get(f"/api/projects/{project['id']}").json()
    assert detail["final_resolution"] == "1080p"
    assert detail["final_quality"] == "standard"
    assert detail["title_card"] == presets.DEFAULT_TITLE_CARD


def test_presets_are_saved_and_a_partial_card_keeps_the_rest(alice, alice_client):
    project = create_project(alice_client)
    response = patch(
        alice_client,
        project["id"],
        {"final_resolution": "720p", "final_quality": "small", "title_card": CARD},
    )
    assert response.status_code == 200
    assert response.json()["title_card"]["player"] == "Maya Okafor"
    response = patch(alice_client, project["id"], {"title_card": {"accent": "#FF0000"}})
    card = response.json()["title_card"]
    assert (card["player"], card["accent"], card["enabled"]) == ("Maya Okafor", "#ff0000", True)
    with in_user_db(alice):
        saved = Project.objects.get(pk=project["id"])
        assert (saved.final_resolution, saved.final_quality) == ("720p", "small")
        assert saved.title_card["team"] == "Riverside U14"


def test_text_is_kept_on_one_line(alice_client):
    project = create_project(alice_client)
    response = patch(
        alice_client, project["id"], {"title_card": {"player": "  Maya\n\nOkafor  ", "team": "x"}}
    )
    assert response.json()["title_card"]["player"] == "Maya Okafor"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"final_resolution": "4k"}, "invalid_final_resolution"),
        ({"final_resolution": None}, "invalid_final_resolution"),
        ({"final_quality": "best"}, "invalid_final_quality"),
        ({"title_card": "Maya"}, "invalid_title_card"),
        ({"title_card": {"player": "x" * 61}}, "invalid_title_card"),
        ({"title_card": {"player": 7}}, "invalid_title_card"),
        ({"title_card": {"date": "28/11/2026"}}, "invalid_title_card"),
        ({"title_card": {"primary": "red"}}, "invalid_title_card"),
        ({"title_card": {"accent": "#12345"}}, "invalid_title_card"),
        ({"title_card": {"enabled": "yes"}}, "invalid_title_card"),
        ({"title_card": {"enabled": True}}, "invalid_title_card"),  # nothing to show
        ({"title_card": {"font": "Comic Sans"}}, "invalid_title_card"),
    ],
)
def test_bad_presets_are_refused_and_nothing_changes(alice, alice_client, body, code):
    project = create_project(alice_client)
    response = patch(alice_client, project["id"], {"name": "Renamed", **body})
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["error"]
    with in_user_db(alice):
        saved = Project.objects.get(pk=project["id"])
        assert saved.name != "Renamed"  # the whole PATCH is refused
        assert (saved.final_resolution, saved.final_quality, saved.title_card) == (
            "1080p",
            "standard",
            {},
        )


@pytest.mark.parametrize(
    ("size", "resolution", "expected"),
    [
        ((1080, 1920), "1080p", (1080, 1920)),
        ((1080, 1920), "720p", (720, 1280)),
        ((1920, 1080), "720p", (1280, 720)),
        ((1080, 1350), "720p", (720, 900)),
        ((540, 960), "720p", (540, 960)),  # never scaled up
        ((1080, 1080), "720p", (720, 720)),
    ],
)
def test_final_size_keeps_the_shape_and_never_scales_up(size, resolution, expected):
    assert presets.final_size(*size, resolution) == expected


def test_the_overlay_export_carries_the_presets(alice, alice_client):
    project = create_project(alice_client)
    add_working_video(alice, project["id"])
    patch(
        alice_client,
        project["id"],
        {"final_resolution": "720p", "final_quality": "high", "title_card": CARD},
    )
    response = post_json(
        alice_client, f"/api/projects/{project['id']}/exports", {"kind": "overlay"}
    )
    job = ExportJob.objects.get(pk=response.json()["job_id"])
    assert job.params["output"] == {"width": 720, "height": 1280, "crf": 17}
    assert job.params["title_card"]["player"] == "Maya Okafor"


def test_a_disabled_card_is_not_rendered(alice, alice_client):
    project = create_project(alice_client)
    add_working_video(alice, project["id"])
    patch(alice_client, project["id"], {"title_card": {**CARD, "enabled": False}})
    response = post_json(
        alice_client, f"/api/projects/{project['id']}/exports", {"kind": "overlay"}
    )
    job = ExportJob.objects.get(pk=response.json()["job_id"])
    assert job.params["title_card"] is None
    assert job.params["output"] == {"width": 1080, "height": 1920, "crf": 20}
