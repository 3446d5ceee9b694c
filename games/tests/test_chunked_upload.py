"""The chunked, resumable upload of a whole game: the protocol, its refusals, its state.

Real files: a generated game clip cut into real chunks, stored in the test's own media
folder (and on moto's S3 in ``test_an_upload_on_s3_is_assembled_by_multipart_copy``).
"""

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from games import chunked
from games.models import Game
from projects.tests.helpers import in_user_db

from .helpers import begin_upload, chunks_of, complete, put_chunk, upload_game

CHUNK = 8 * 1024


@pytest.fixture(autouse=True)
def small_chunks(settings, local_store):
    settings.GAME_UPLOAD_CHUNK_BYTES = CHUNK


@pytest.fixture
def game_bytes(game_clip_path):
    data = Path(game_clip_path).read_bytes()
    assert len(data) > 2 * CHUNK  # several chunks, the last one short
    return data


def started(client, data, filename="match.mp4"):
    response = begin_upload(client, filename, len(data))
    assert response.status_code == 201, response.content
    return response.json()


def stored_game_bytes(user) -> bytes:
    with in_user_db(user):
        game = Game.objects.get()
    with default_storage.open(game.file, "rb") as handle:
        return handle.read()


def test_a_game_uploaded_in_chunks_is_stored_once_whole(alice_client, alice, game_clip_path):
    game = upload_game(alice_client, game_clip_path, name="Cup final", opponent="Rovers",
                       played_on="2026-11-28")  # fmt: skip

    assert (game["name"], game["opponent"], game["played_on"]) == (
        "Cup final",
        "Rovers",
        "2026-11-28",
    )
    assert game["status"] == "processing" and game["media_job_id"]
    assert stored_game_bytes(alice) == Path(game_clip_path).read_bytes()
    # The chunks are gone once the file is whole.
    assert chunked._listdirs(f"users/{alice.pk}/uploads") == []
    _dirs, files = default_storage.listdir(f"users/{alice.pk}/games")
    assert len(files) == 1


def test_chunks_out_of_order_and_twice_make_the_same_file(alice_client, alice, game_bytes):
    upload = started(alice_client, game_bytes)
    pieces = chunks_of(game_bytes, upload["chunk_size"])
    order = [*reversed(range(len(pieces))), 0, len(pieces) - 1]
    for index in order:
        assert put_chunk(alice_client, upload["id"], index, pieces[index]).status_code == 200

    assert complete(alice_client, upload["id"]).status_code == 201
    assert stored_game_bytes(alice) == game_bytes


def test_a_resumed_upload_sends_only_what_is_missing(alice_client, alice, game_bytes):
    upload = started(alice_client, game_bytes)
    pieces = chunks_of(game_bytes, upload["chunk_size"])
    for index in (0, 2):
        put_chunk(alice_client, upload["id"], index, pieces[index])

    status = alice_client.get(f"/api/games/uploads/{upload['id']}").json()
    assert status["received"] == [0, 2]
    assert status["bytes_received"] == 2 * CHUNK
    refused = complete(alice_client, upload["id"])
    assert refused.status_code == 409 and refused.json()["code"] == "upload_incomplete"

    for index in sorted(set(range(len(pieces))) - set(status["received"])):
        put_chunk(alice_client, upload["id"], index, pieces[index])
    assert complete(alice_client, upload["id"]).status_code == 201
    assert stored_game_bytes(alice) == game_bytes


def test_completing_twice_finds_the_same_game(alice_client, alice, game_bytes):
    upload = started(alice_client, game_bytes)
    for index, piece in enumerate(chunks_of(game_bytes, upload["chunk_size"])):
        put_chunk(alice_client, upload["id"], index, piece)
    first = complete(alice_client, upload["id"])
    again = complete(alice_client, upload["id"])

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    with in_user_db(alice):
        assert Game.objects.count() == 1


@pytest.mark.parametrize(
    "mangle, code",
    [
        (lambda piece: piece[:-1], "invalid_chunk"),
        (lambda piece: piece + b"x", "invalid_chunk"),
    ],
)
def test_a_chunk_of_the_wrong_length_is_refused(alice_client, game_bytes, mangle, code):
    upload = started(alice_client, game_bytes)
    piece = chunks_of(game_bytes, upload["chunk_size"])[1]

    response = put_chunk(alice_client, upload["id"], 1, mangle(piece))

    assert response.status_code == 400 and response.json()["code"] == code
    assert alice_client.get(f"/api/games/uploads/{upload['id']}").json()["received"] == []


def test_a_damaged_chunk_is_refused_by_its_checksum(alice_client, game_bytes):
    upload = started(alice_client, game_bytes)
    piece = chunks_of(game_bytes, upload["chunk_size"])[1]
    damaged = bytes([piece[0] ^ 0xFF]) + piece[1:]

    response = put_chunk(alice_client, upload["id"], 1, damaged, hashlib.sha256(piece).hexdigest())

    assert response.status_code == 400 and response.json()["code"] == "chunk_corrupt"
    assert alice_client.get(f"/api/games/uploads/{upload['id']}").json()["received"] == []


def test_a_chunk_outside_the_upload_is_refused(alice_client, game_bytes):
    upload = started(alice_client, game_bytes)
    response = put_chunk(alice_client, upload["id"], upload["chunk_count"], b"x" * CHUNK)
    assert response.status_code == 400 and response.json()["code"] == "invalid_chunk"


def test_a_chunk_of_another_upload_does_not_fit(alice_client, game_bytes):
    # Two uploads of different files: the short last chunk of one is not a chunk of the
    # other, whose chunk at that index has the full length.
    first = started(alice_client, game_bytes)
    second = started(alice_client, game_bytes + b"\0" * CHUNK)
    last = first["chunk_count"] - 1
    piece = chunks_of(game_bytes, first["chunk_size"])[last]

    response = put_chunk(alice_client, second["id"], last, piece)

    assert response.status_code == 400 and response.json()["code"] == "invalid_chunk"


def test_a_file_that_is_not_a_video_is_refused_at_its_first_chunk(alice_client, alice):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * (CHUNK * 2)
    upload = started(alice_client, png, filename="match.mp4")

    response = put_chunk(alice_client, upload["id"], 0, png[:CHUNK])

    assert response.status_code == 400 and response.json()["code"] == "invalid_video"
    assert "image" in response.json()["error"]
    # Nothing more of it is received: the upload is gone.
    assert alice_client.get(f"/api/games/uploads/{upload['id']}").status_code == 404


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"filename": "notes.txt", "size": 10}, 400, "invalid_video"),
        ({"filename": "match.mp4", "size": 0}, 400, "invalid_size"),
        ({"filename": "match.mp4", "size": "10"}, 400, "invalid_size"),
        ({"filename": "", "size": 10}, 400, "invalid_filename"),
        ({"filename": "match.mp4", "size": 11 * 1024**3}, 413, "upload_too_large"),
    ],
)
def test_a_bad_announcement_is_refused(alice_client, body, status, code):
    response = begin_upload(alice_client, body["filename"], body["size"])
    assert response.status_code == status and response.json()["code"] == code


def test_another_users_upload_is_not_found(alice_client, bob_client, alice, game_bytes):
    upload = started(alice_client, game_bytes)
    piece = chunks_of(game_bytes, upload["chunk_size"])[0]
    url = f"/api/games/uploads/{upload['id']}"

    assert bob_client.get(url).status_code == 404
    assert put_chunk(bob_client, upload["id"], 0, piece).status_code == 404
    assert complete(bob_client, upload["id"]).status_code == 404
    assert bob_client.delete(url).status_code == 404
    # Alice's upload is untouched by any of it.
    assert alice_client.get(url).json()["received"] == []


@pytest.mark.parametrize("upload_id", ["..", "../../1/uploads/x", "ABC", "0" * 31, "0" * 33])
def test_odd_upload_ids_are_not_found(alice_client, upload_id):
    assert alice_client.get(f"/api/games/uploads/{upload_id}").status_code == 404


def test_an_abandoned_upload_is_discarded(alice_client, alice, game_bytes):
    upload = started(alice_client, game_bytes)
    piece = chunks_of(game_bytes, upload["chunk_size"])[0]
    put_chunk(alice_client, upload["id"], 0, piece)

    response = alice_client.delete(f"/api/games/uploads/{upload['id']}")

    assert response.status_code == 204
    assert alice_client.get(f"/api/games/uploads/{upload['id']}").status_code == 404
    assert not default_storage.exists(f"users/{alice.pk}/uploads/{upload['id']}/000000.chunk")


def test_the_sweep_removes_uploads_nothing_arrived_for(alice_client, alice, game_bytes):
    old = started(alice_client, game_bytes)
    fresh = started(alice_client, game_bytes)
    put_chunk(alice_client, fresh["id"], 0, chunks_of(game_bytes, fresh["chunk_size"])[0])
    later = timezone.now() + timedelta(hours=1)

    # An hour on, with a day's limit, neither is abandoned.
    assert chunked.sweep_abandoned(older_than=timedelta(days=1), now=later) == 0
    # With a limit of 30 minutes both are: one never received anything, the other's
    # last chunk is an hour old.
    assert chunked.sweep_abandoned(older_than=timedelta(minutes=30), now=later) == 2
    for upload in (old, fresh):
        assert alice_client.get(f"/api/games/uploads/{upload['id']}").status_code == 404


def test_the_sweep_command_reports_what_it_removed(alice_client, game_bytes, settings, capsys):
    started(alice_client, game_bytes)
    settings.GAME_UPLOAD_ABANDON_HOURS = 0

    call_command("sweep_game_uploads")

    assert "1 abandoned game upload" in capsys.readouterr().out


def test_an_upload_survives_a_new_process(alice_client, alice, game_bytes):
    """Nothing of an upload is kept in a process: what a fresh load from storage finds
    is all there is (the restart of a real server is in test_upload_across_restart)."""
    upload = started(alice_client, game_bytes)
    put_chunk(alice_client, upload["id"], 1, chunks_of(game_bytes, upload["chunk_size"])[1])

    loaded = chunked.load(alice.pk, upload["id"])

    assert loaded.received() == [1] and loaded.size == len(game_bytes)


def test_an_upload_on_s3_is_assembled_by_multipart_copy(alice_client, alice, s3_media, settings):
    """On S3 the chunks are objects (parts of at least 5 MiB), and the game is made
    from them by server-side copies: the bytes come out exactly as they went in."""
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * (11 * 4096)  # ~11 MiB
    upload = started(alice_client, data)
    assert upload["chunk_size"] == chunked.S3_MIN_PART_BYTES  # raised from the 8 KiB asked
    pieces = chunks_of(data, upload["chunk_size"])
    assert len(pieces) == 3
    for index in (2, 0, 1, 1):
        sha = hashlib.sha256(pieces[index]).hexdigest()
        assert put_chunk(alice_client, upload["id"], index, pieces[index], sha).status_code == 200

    assert complete(alice_client, upload["id"]).status_code == 201

    assert stored_game_bytes(alice) == data
    assert chunked._listdirs(f"users/{alice.pk}/uploads") == []
