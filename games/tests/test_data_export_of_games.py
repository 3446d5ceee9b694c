"""Export my data includes the games, their plays and each game's video, once."""

import io
import json
import zipfile

import pytest

from accounts.tests.test_data_export import download, start, wait_until_built
from projects.tests.helpers import body

from .helpers import ready_game, write_stepped_game
from .test_reels_from_plays import mark, reel

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def game_settings(settings, local_store):
    settings.GAME_UPLOAD_CHUNK_BYTES = 32 * 1024
    settings.GAME_FILMSTRIP_TILES = 4


def test_the_zip_holds_games_plays_and_one_copy_of_each_game(alice_client, tmp_path):
    path = write_stepped_game(tmp_path / "cup.mp4", seconds=6)
    game = ready_game(alice_client, path, name="Cup final")
    first = mark(alice_client, game, 1.0, 2.0, name="Chance", tags=["#7"])
    second = mark(alice_client, game, 3.0, 4.5, name="Goal", rating=5)
    reel(alice_client, [second["id"], first["id"]])

    export = wait_until_built(alice_client, start(alice_client)["id"])
    assert export["status"] == "ready", export
    archive = zipfile.ZipFile(io.BytesIO(body(download(alice_client, export["id"]))))

    manifest = json.loads(archive.read("projects.json"))
    [entry] = manifest["games"]
    assert entry["name"] == "Cup final" and "url" not in entry
    assert [(p["name"], p["start"], p["end"]) for p in entry["plays"]] == [
        ("Chance", 1.0, 2.0),
        ("Goal", 3.0, 4.5),
    ]
    assert archive.read(entry["file"]) == path.read_bytes()
    clips = manifest["projects"][0]["clips"]
    assert [c["file"] for c in clips] == [entry["file"], entry["file"]]
    assert [c["range"]["start"] for c in clips] == [3.0, 1.0]
    # The game's video is in the zip once, however many clips use it.
    assert sum(name.startswith("games/") for name in archive.namelist()) == 1
