"""Marking plays in a game, editing them, finding them across games; deleting a game."""

import json

import pytest

from games.models import Game, Play
from projects.tests.helpers import in_user_db
from syncstore import mediagc

pytestmark = pytest.mark.django_db


def a_game(user, name="Cup final", status=Game.Status.READY, duration=5400.0, **extra):
    with in_user_db(user):
        game = Game.objects.create(
            name=name,
            upload_id=f"{Game.objects.count() + 1:032x}",
            original_name="match.mp4",
            file=f"users/{user.pk}/games/{Game.objects.count() + 1:032x}.mp4",
            size_bytes=1,
            duration=duration,
            fps=30,
            width=1920,
            height=1080,
            status=status,
            **extra,
        )
    return game


def send(client, method, url, data):
    return getattr(client, method)(url, json.dumps(data), content_type="application/json")


def mark(client, game, **play):
    response = send(client, "post", f"/api/games/{game.id}/plays", play)
    assert response.status_code == 201, response.content
    return response.json()


def test_plays_are_marked_edited_and_deleted(alice_client, alice):
    game = a_game(alice)
    play = mark(alice_client, game, start=61.5, end=74.25, name="Header goal", rating=5,
                tags=["#9", "goal", "Goal", "  set   piece "])  # fmt: skip

    assert (play["start"], play["end"], play["duration"]) == (61.5, 74.25, 12.75)
    assert play["tags"] == ["#9", "goal", "set piece"]  # trimmed, no case duplicates

    url = f"/api/games/{game.id}/plays/{play['id']}"
    edited = send(alice_client, "patch", url, {"end": 80, "rating": 4}).json()
    assert (edited["start"], edited["end"], edited["rating"]) == (61.5, 80.0, 4)

    assert alice_client.delete(url).status_code == 204
    with in_user_db(alice):
        assert not Play.objects.exists()


@pytest.mark.parametrize(
    "play, field",
    [
        ({"start": -1, "end": 5}, "start"),
        ({"start": 10, "end": 6000}, "start"),
        ({"start": 10, "end": 10.1}, "end"),
        ({"start": "10", "end": 20}, "start"),
        ({"start": 10, "end": float("inf")}, "end"),
        ({"start": 10, "end": 20, "rating": 6}, "rating"),
        ({"start": 10, "end": 20, "rating": True}, "rating"),
        ({"start": 10, "end": 20, "tags": "goal"}, "tags"),
        ({"start": 10, "end": 20, "tags": [1]}, "tags"),
        ({"start": 10, "end": 20, "name": 5}, "name"),
    ],
)
def test_a_malformed_play_is_refused_with_its_field(alice_client, alice, play, field):
    game = a_game(alice)
    body = json.dumps(play).replace("Infinity", "1e999")
    response = alice_client.post(
        f"/api/games/{game.id}/plays", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == field
    with in_user_db(alice):
        assert not Play.objects.exists()


def test_plays_wait_for_the_game_to_be_ready(alice_client, alice):
    game = a_game(alice, status=Game.Status.PROCESSING)
    response = send(alice_client, "post", f"/api/games/{game.id}/plays", {"start": 1, "end": 5})
    assert response.status_code == 409 and response.json()["code"] == "game_not_ready"


def test_plays_are_found_across_games_by_tag_and_rating(alice_client, alice):
    cup, league = a_game(alice, "Cup"), a_game(alice, "League")
    mark(alice_client, cup, start=10, end=20, rating=3, tags=["goal"])
    best = mark(alice_client, league, start=30, end=40, rating=5, tags=["Goal", "#7"])
    mark(alice_client, league, start=50, end=60, rating=5, tags=["save"])

    goals = alice_client.get("/api/plays?tag=goal&sort=rating").json()["plays"]
    assert [p["id"] for p in goals] == [best["id"], goals[1]["id"]]
    assert [p["game_name"] for p in goals] == ["League", "Cup"]
    top = alice_client.get("/api/plays?min_rating=5").json()["plays"]
    assert {p["rating"] for p in top} == {5} and len(top) == 2
    only_cup = alice_client.get(f"/api/plays?game={cup.id}").json()["plays"]
    assert [p["game_id"] for p in only_cup] == [cup.id]
    assert alice_client.get("/api/plays?min_rating=x").status_code == 400


def test_another_users_game_and_plays_are_not_found(alice_client, bob_client, alice):
    game = a_game(alice)
    play = mark(alice_client, game, start=1, end=5)

    assert bob_client.get(f"/api/games/{game.id}").status_code == 404
    assert (
        send(bob_client, "post", f"/api/games/{game.id}/plays", {"start": 1, "end": 5}).status_code
        == 404
    )
    assert bob_client.delete(f"/api/games/{game.id}/plays/{play['id']}").status_code == 404
    assert bob_client.delete(f"/api/games/{game.id}").status_code == 404
    assert bob_client.get("/api/plays").json()["plays"] == []
    assert alice_client.get(f"/api/games/{game.id}").json()["plays"][0]["id"] == play["id"]


def test_a_game_is_renamed_dated_and_given_an_opponent(alice_client, alice):
    game = a_game(alice)
    url = f"/api/games/{game.id}"
    changed = send(alice_client, "patch", url, {"name": " Final ", "played_on": "2026-11-28",
                                                "opponent": "Rovers"}).json()  # fmt: skip
    assert (changed["name"], changed["played_on"], changed["opponent"]) == (
        "Final", "2026-11-28", "Rovers",
    )  # fmt: skip
    bad = send(alice_client, "patch", url, {"played_on": "28/11/2026"})
    assert bad.status_code == 400 and bad.json()["field"] == "played_on"


def test_deleting_a_game_with_plays_says_what_would_go_first(alice_client, alice, monkeypatch):
    game = a_game(alice, poster=f"users/{alice.pk}/thumbs/{'a' * 32}.jpg")
    mark(alice_client, game, start=1, end=5)
    mark(alice_client, game, start=8, end=12)
    dropped = []
    monkeypatch.setattr(mediagc, "drop_after_commit", lambda names, using: dropped.extend(names))

    refused = alice_client.delete(f"/api/games/{game.id}")
    assert refused.status_code == 409
    assert refused.json()["code"] == "game_has_plays" and refused.json()["plays"] == 2
    assert dropped == []

    assert alice_client.delete(f"/api/games/{game.id}?with_plays=1").status_code == 204
    with in_user_db(alice):
        assert not Game.objects.exists() and not Play.objects.exists()
    # The video and its poster go once the deletion is committed (syncstore.mediagc).
    assert sorted(dropped) == sorted([game.file, game.poster])
