"""Reels from plays: clips that name a game's file and a play's range, never a copy.

The game is generated with a brightness step each second, so where every frame of the
exported working video came from can be read back from it.
"""

import json

import av
import numpy as np
import pytest
from django.core.files.storage import default_storage

from games.models import Game
from projects.models import Clip
from projects.tests.helpers import in_user_db

from .helpers import finished, level_at, ready_game, write_stepped_game

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def game_settings(settings, local_store):
    settings.GAME_UPLOAD_CHUNK_BYTES = 32 * 1024
    settings.GAME_FILMSTRIP_TILES = 6
    settings.EXPORT_MODE = "real"
    settings.EXPORT_PRESET = "ultrafast"


@pytest.fixture
def game(alice_client, tmp_path):
    return ready_game(alice_client, write_stepped_game(tmp_path / "stepped.mp4"), name="Cup")


def send(client, method, url, data):
    return getattr(client, method)(url, json.dumps(data), content_type="application/json")


def mark(client, game, start, end, **extra):
    response = send(client, "post", f"/api/games/{game['id']}/plays",
                    {"start": start, "end": end, **extra})  # fmt: skip
    assert response.status_code == 201, response.content
    return response.json()


def reel(client, play_ids, aspect="9:16"):
    response = send(client, "post", "/api/projects",
                    {"name": "Reel", "aspect_ratio": aspect, "play_ids": play_ids})  # fmt: skip
    assert response.status_code == 201, response.content
    return client.get(f"/api/projects/{response.json()['id']}").json()


def test_a_reel_of_two_plays_exports_them_in_order(alice_client, alice, game, tmp_path):
    early = mark(alice_client, game, 2.0, 4.0, name="Early chance")
    late = mark(alice_client, game, 7.0, 8.5, name="Winner")
    project = reel(alice_client, [late["id"], early["id"]])  # the winner first

    clips = project["clips"]
    assert [c["name"] for c in clips] == ["Winner", "Early chance"]
    assert [c["range"] for c in clips] == [{"start": 7.0, "end": 8.5}, {"start": 2.0, "end": 4.0}]
    with in_user_db(alice):
        stored = Game.objects.get().file
        assert {clip.file for clip in Clip.objects.all()} == {stored}  # no copy
    assert not default_storage.exists(f"users/{alice.pk}/clips")

    started = send(alice_client, "post", f"/api/projects/{project['id']}/exports",
                   {"kind": "framing"}).json()  # fmt: skip
    job = finished(alice_client, started["job_id"], timeout=120)
    assert job["status"] == "complete", job

    video = alice_client.get(f"/api/projects/{project['id']}/working-video").json()
    assert video["duration"] == pytest.approx(3.5, abs=0.15)
    with av.open(default_storage.path(_working_file(alice))) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    means = [float(np.mean(f)) for f in frames]
    fps = len(frames) / video["duration"]
    # Winner (7.0-8.5 s of the game) first, then the early chance (2.0-4.0 s).
    assert means[1] == pytest.approx(level_at(7.0), abs=6)
    assert means[int(1.2 * fps)] == pytest.approx(level_at(8.0), abs=6)
    assert means[int(1.7 * fps)] == pytest.approx(level_at(2.0), abs=6)
    assert means[-2] == pytest.approx(level_at(3.0), abs=6)


def _working_file(user):
    from projects.models import WorkingVideo

    with in_user_db(user):
        return WorkingVideo.objects.get().file


def test_a_plays_clip_is_edited_inside_the_play(alice_client, game):
    play = mark(alice_client, game, 5.0, 9.0)
    project = reel(alice_client, [play["id"]])
    url = f"/api/projects/{project['id']}/clips/{project['clips'][0]['id']}"

    edit = {"trim": {"start": 5.5, "end": 8.0}, "segments": [{"start": 6, "end": 7, "speed": 0.5}]}
    inside = send(alice_client, "patch", url, edit)
    assert inside.status_code == 200
    assert inside.json()["trim"] == {"start": 5.5, "end": 8.0}

    for body in (
        {"trim": {"start": 4.0, "end": 8.0}},
        {"trim": {"start": 5.5, "end": 9.5}},
        {"segments": [{"start": 1, "end": 2, "speed": 0.5}]},
        {"crop_keyframes": [{"time": 10, "x": 0, "y": 0, "width": 101.25, "height": 180}]},
    ):
        refused = send(alice_client, "patch", url, body)
        assert refused.status_code == 400, body
        assert "outside the clip (5-9s)" in refused.json()["error"]

    # Clearing the trim means "the whole play", never the whole game.
    cleared = send(alice_client, "patch", url, {"trim": None}).json()
    assert cleared["trim"] == {"start": 5.0, "end": 9.0}


def test_plays_are_added_to_an_existing_project(alice_client, game):
    first = mark(alice_client, game, 1.0, 2.0)
    second = mark(alice_client, game, 3.0, 4.0)
    project = reel(alice_client, [first["id"]])

    added = send(alice_client, "post", f"/api/projects/{project['id']}/clips/from-plays",
                 {"play_ids": [second["id"]]})  # fmt: skip

    assert added.status_code == 201
    clips = alice_client.get(f"/api/projects/{project['id']}").json()["clips"]
    assert [c["range"]["start"] for c in clips] == [1.0, 3.0]
    assert [c["position"] for c in clips] == [0, 1]


@pytest.mark.parametrize("play_ids", [[], [999], "1", [True], None])
def test_bad_play_ids_are_refused_and_make_no_project(alice_client, alice, game, play_ids):
    response = send(alice_client, "post", "/api/projects",
                    {"name": "Reel", "aspect_ratio": "9:16", "play_ids": play_ids})  # fmt: skip
    assert response.status_code == 400 and response.json()["code"] == "invalid_play_ids"
    assert alice_client.get("/api/projects").json()["projects"] == []


def test_another_users_plays_cannot_be_added(alice_client, bob_client, game):
    play = mark(alice_client, game, 1.0, 2.0)
    response = send(bob_client, "post", "/api/projects",
                    {"name": "Reel", "aspect_ratio": "9:16", "play_ids": [play["id"]]})  # fmt: skip
    assert response.status_code == 400
    assert bob_client.get("/api/projects").json()["projects"] == []


def test_a_game_its_clips_use_cannot_be_deleted_and_keeps_its_file(
    alice_client, alice, game, settings
):
    # Dropped media go as soon as no retained version names them: at once, with one kept.
    settings.SNAPSHOT_RETENTION = 1
    play = mark(alice_client, game, 1.0, 2.0)
    project = reel(alice_client, [play["id"]])

    refused = alice_client.delete(f"/api/games/{game['id']}?with_plays=1")
    assert refused.status_code == 409 and refused.json()["code"] == "game_in_use"
    assert refused.json()["projects"] == ["Reel"]

    # Deleting the clip (or its project) leaves the game's video where it is.
    clip_url = f"/api/projects/{project['id']}/clips/{project['clips'][0]['id']}"
    assert alice_client.delete(clip_url).status_code == 204
    assert alice_client.delete(f"/api/projects/{project['id']}").status_code == 204
    with in_user_db(alice):
        name = Game.objects.get().file
    assert default_storage.exists(name)
    assert alice_client.delete(f"/api/games/{game['id']}?with_plays=1").status_code == 204
