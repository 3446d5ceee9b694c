"""Plays: validating what the annotate mode sends, and finding plays across games."""

import math
from datetime import date

from django.conf import settings

from .models import Game, Play

MIN_PLAY_SECONDS = 0.2
SORTS = {
    "rating": ("-rating", "game_id", "start"),
    "newest": ("-created_at", "-id"),
    "game": ("game_id", "start", "id"),
}


class PlayError(Exception):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message, self.field = message, field


def _number(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PlayError(f"{field} must be a number of seconds.", field)
    return float(value)


def clean_range(data: dict, game: Game, play: Play | None = None) -> tuple[float, float]:
    start = _number(data.get("start", play.start if play else None), "start")
    end = _number(data.get("end", play.end if play else None), "end")
    if start < 0 or end > game.duration + 1e-6:
        raise PlayError(f"A play must lie within the game (0 to {game.duration:.2f} s).", "start")
    if end - start < MIN_PLAY_SECONDS:
        raise PlayError(
            f"A play lasts at least {MIN_PLAY_SECONDS} s: set its out point later.", "end"
        )
    return round(start, 3), round(min(end, game.duration), 3)


def clean_rating(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise PlayError("A rating is a whole number from 1 to 5 (or none).", "rating")
    return value


def clean_tags(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise PlayError("Tags are a list of words.", "tags")
    tags = []
    for tag in value:
        tag = " ".join(tag.split())[:40]
        if tag and tag.lower() not in {t.lower() for t in tags}:
            tags.append(tag)
    if len(tags) > settings.MAX_TAGS_PER_PLAY:
        raise PlayError(f"A play has at most {settings.MAX_TAGS_PER_PLAY} tags.", "tags")
    return tags


def clean_name(value) -> str:
    if not isinstance(value, str):
        raise PlayError("A play's name is text.", "name")
    return " ".join(value.split())[:200]


def apply(play: Play, game: Game, data: dict) -> None:
    """Set what ``data`` says on ``play`` (a new one or an edit), or PlayError."""
    if "start" in data or "end" in data or play.pk is None:
        play.start, play.end = clean_range(data, game, play if play.pk else None)
    if "name" in data:
        play.name = clean_name(data["name"])
    if "rating" in data:
        play.rating = clean_rating(data["rating"])
    if "tags" in data:
        play.tags = clean_tags(data["tags"])


def search(*, tag: str = "", min_rating=None, game_id=None, sort: str = "game"):
    """Plays across all the user's games: filtered by a tag (any case), a least rating
    and a game, in one of ``SORTS``. Tags are filtered here, not in SQL: JSON list
    containment is not portable across SQLite versions, and a user's plays are few."""
    plays = Play.objects.select_related("game").order_by(*SORTS.get(sort, SORTS["game"]))
    if game_id is not None:
        plays = plays.filter(game_id=game_id)
    if min_rating is not None:
        plays = plays.filter(rating__gte=min_rating)
    if tag:
        wanted = tag.lower()
        return [p for p in plays if wanted in (t.lower() for t in p.tags)]
    return list(plays)


def clean_game_fields(data: dict, game: Game) -> None:
    """Name, date and opponent of a game, from a JSON body (PlayError on bad values)."""
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not name.strip():
            raise PlayError("Give the game a name.", "name")
        game.name = " ".join(name.split())[:200]
    if "opponent" in data:
        if not isinstance(data["opponent"], str):
            raise PlayError("The opponent is text.", "opponent")
        game.opponent = " ".join(data["opponent"].split())[:200]
    if "played_on" in data:
        game.played_on = _clean_date(data["played_on"])


def _clean_date(value):
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise PlayError("The date is YYYY-MM-DD.", "played_on") from None
