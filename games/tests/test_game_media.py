"""A completed upload becomes a usable game in the background: probe, poster, filmstrip.

The job runs for real on the embedded worker pool (not in the request), decodes the
generated game, stores two JPEGs and commits the game's row; "complete" names the
committed version, read back from the store here.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.storage import default_storage

from exports.models import ExportJob
from games.models import Game
from projects.synthetic import write_game_clip
from projects.tests.helpers import in_user_db
from syncstore.models import SyncState
from syncstore.tests.helpers import committed_database

from .helpers import finished, upload_game

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def game_settings(settings, local_store):
    settings.GAME_UPLOAD_CHUNK_BYTES = 16 * 1024
    settings.GAME_FILMSTRIP_TILES = 12


def image(name):
    with default_storage.open(name, "rb") as handle:
        return cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)


def test_an_uploaded_game_gets_its_probe_poster_and_filmstrip(
    alice_client, alice, tmp_path, game_clip_path
):
    game = upload_game(alice_client, game_clip_path, name="League, round 9")

    job = finished(alice_client, game["media_job_id"])

    assert job["status"] == "complete", job
    assert job["kind"] == "game_media" and job["game_id"] == game["id"]
    ready = alice_client.get(f"/api/games/{game['id']}").json()
    assert ready["status"] == "ready"
    assert (ready["width"], ready["height"], ready["fps"]) == (320, 180, 30)
    assert ready["duration"] == pytest.approx(2.0, abs=0.05)
    strip = ready["filmstrip"]
    assert len(strip["times"]) == 12 and strip["times"] == sorted(strip["times"])
    assert 0 < strip["times"][0] < strip["times"][-1] < ready["duration"]
    with in_user_db(alice):
        row = Game.objects.get()
    sprite = image(row.filmstrip["file"])
    assert sprite.shape == (strip["rows"] * strip["tile_height"], 10 * strip["tile_width"], 3)
    assert sprite[:90, :160].mean() > 10  # the first tile is a frame, not black
    assert image(row.poster).shape[1] == 640
    # "complete" names a committed version that holds the game as ready.
    committed = SyncState(user_id=alice.pk, version=job["committed_version"])
    with committed_database(committed, tmp_path) as db:
        status = db.execute("SELECT status FROM games_game").fetchone()[0]
    assert status == "ready"
    # The images are served to their owner only.
    assert alice_client.get(ready["poster_url"]).status_code == 200


def test_a_file_that_only_looks_like_a_video_ends_as_a_failed_game(
    alice_client, alice, tmp_path, game_clip_path
):
    broken = tmp_path / "broken.mp4"
    data = Path(game_clip_path).read_bytes()
    broken.write_bytes(data[:32] + bytes(len(data) - 32))  # an MP4 start, then zeros
    game = upload_game(alice_client, broken)

    job = finished(alice_client, game["media_job_id"])

    assert job["status"] == "error" and job["error_code"] == "invalid_video"
    assert job["retryable"] is False
    failed = alice_client.get(f"/api/games/{game['id']}").json()
    assert failed["status"] == "failed"
    assert "could not be read as a video" in failed["status_message"]


def test_a_longer_game_gets_tiles_from_across_its_length(alice_client, alice, tmp_path):
    long_game = tmp_path / "long.mp4"
    write_game_clip(long_game, width=320, height=180, fps=10, seconds=30.0)
    game = upload_game(alice_client, long_game)

    assert finished(alice_client, game["media_job_id"])["status"] == "complete"

    times = alice_client.get(f"/api/games/{game['id']}").json()["filmstrip"]["times"]
    assert times[0] == pytest.approx(1.25) and times[-1] == pytest.approx(28.75)
    with in_user_db(alice):
        row = Game.objects.get()
    sprite = image(row.filmstrip["file"])
    first, last = sprite[:90, :160], sprite[90:180, 160:320]
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 1  # different moments


def test_the_media_job_is_not_an_export_of_a_project(alice_client, alice, game_clip_path):
    game = upload_game(alice_client, game_clip_path)
    finished(alice_client, game["media_job_id"])

    response = alice_client.post(
        "/api/projects", '{"name": "P", "aspect_ratio": "9:16"}', content_type="application/json"
    )
    project = response.json()
    listed = alice_client.get(f"/api/projects/{project['id']}/exports").json()["exports"]

    # Game ids and project ids are both small numbers: the project's list must not show
    # the game's job, and a user cannot start a game job as an export.
    assert listed == [] and project["id"] == game["id"]
    started = alice_client.post(
        f"/api/projects/{project['id']}/exports",
        '{"kind": "game_media"}',
        content_type="application/json",
    )
    assert started.status_code == 400
    assert ExportJob.objects.filter(kind="game_media").count() == 1
