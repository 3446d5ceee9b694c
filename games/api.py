"""The games JSON API: chunked uploads, games, plays. Thin views over games/chunked.py,
games/plays.py and games/media_job.py; every query runs on the signed-in user's own
database and every upload lives under the user's own storage prefix, so another user's
ids are simply not found (404)."""

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404

from projects import media
from projects.clips import display_name
from reeleditor.jsonapi import ApiError, api_view, json_body
from syncstore.binding import current_binding
from syncstore.middleware import stores_files_first, take_write_lease

from . import chunked, media_job, plays
from .models import Game, Play


def _upload(request, upload_id) -> chunked.Upload:
    try:
        return chunked.load(request.user.pk, upload_id)
    except chunked.UploadNotFound:
        message = "No such upload: it may have finished or been abandoned."
        raise ApiError(message, "not_found", 404) from None


def _refused(exc: chunked.UploadError) -> ApiError:
    return ApiError(exc.message, exc.code, exc.status)


def _invalid(exc: plays.PlayError) -> ApiError:
    return ApiError(exc.message, "invalid_" + exc.field, field=exc.field)


# --- Uploads (no rows are written until complete: no lease for a chunk) -----------------


@stores_files_first
@api_view("POST")
def uploads(request):
    data = json_body(request)
    size = data.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ApiError("size must be the file's size in bytes.", "invalid_size", field="size")
    filename = data.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        raise ApiError("filename is the file's name.", "invalid_filename", field="filename")
    try:
        upload = chunked.begin(request.user.pk, display_name(filename), size)
    except chunked.UploadError as exc:
        raise _refused(exc) from None
    return JsonResponse(upload.to_dict(), status=201)


@stores_files_first
@api_view("GET", "DELETE")
def upload(request, upload_id):
    upload = _upload(request, upload_id)
    if request.method == "DELETE":
        chunked.discard(upload)
        return HttpResponse(status=204)
    return JsonResponse(upload.to_dict())


@stores_files_first
@api_view("PUT")
def upload_chunk(request, upload_id, index):
    upload = _upload(request, upload_id)
    try:
        chunked.store_chunk(upload, index, request, request.headers.get("X-Chunk-SHA256"))
    except chunked.UploadError as exc:
        if exc.code == "invalid_video":  # nothing more of this file is worth receiving
            chunked.discard(upload)
        raise _refused(exc) from None
    received = upload.received()
    return JsonResponse(
        {"index": index, "received": received, "bytes_received": upload.bytes_received(received)}
    )


@stores_files_first
@api_view("POST")
def complete_upload(request, upload_id):
    """Assemble the game's file, then write its row; its media job makes the rest."""
    data = json_body(request)
    existing = Game.objects.filter(upload_id=upload_id).first()
    if existing is not None:  # completed before; the answer was lost
        return JsonResponse(existing.to_dict())
    upload = _upload(request, upload_id)
    game = Game(upload_id=upload.id, original_name=upload.filename, size_bytes=upload.size)
    game.name = upload.filename.rsplit(".", 1)[0]
    try:
        plays.clean_game_fields(data, game)
        game.file = chunked.assemble(upload)
    except plays.PlayError as exc:
        raise _invalid(exc) from None
    except chunked.UploadError as exc:
        raise _refused(exc) from None
    take_write_lease(request)
    existing = Game.objects.filter(upload_id=upload_id).first()  # on the fresh copy
    if existing is not None:
        return JsonResponse(existing.to_dict())
    game.save()
    job = media_job.start(request.user, game)
    Game.objects.filter(pk=game.pk).update(media_job_id=str(job.id))
    game.media_job_id = str(job.id)
    chunked.discard(upload)  # the assembled file holds every byte now
    return JsonResponse(game.to_dict(), status=201)


# --- Games --------------------------------------------------------------------------------


@api_view("GET")
def games(request):
    listed = []
    for game in Game.objects.all():
        data = game.to_dict()
        data["play_count"] = game.plays.count()
        listed.append(data)
    return JsonResponse({"games": listed})


@api_view("GET", "PATCH", "DELETE")
def game(request, game_id):
    game = get_object_or_404(Game, pk=game_id)
    if request.method == "DELETE":
        return _delete_game(request, game)
    if request.method == "PATCH":
        try:
            plays.clean_game_fields(json_body(request), game)
        except plays.PlayError as exc:
            raise _invalid(exc) from None
        game.save()
    data = game.to_dict()
    data["plays"] = [play.to_dict() for play in game.plays.all()]
    return JsonResponse(data)


def _delete_game(request, game) -> HttpResponse:
    """A game with plays goes only when the request says so (``?with_plays=1``): the
    refusal says what would go, so the page can ask first."""
    used_by = sorted({clip.project.name for clip in game.clips.select_related("project")})
    if used_by:
        raise ApiError(
            f"Clips of this game are in {len(used_by)} project(s): {', '.join(used_by)}. "
            "Remove those clips (or the projects) first.",
            "game_in_use",
            409,
            projects=used_by,
        )
    count = game.plays.count()
    if count and request.GET.get("with_plays") != "1":
        raise ApiError(
            f"This game has {count} marked plays. Deleting it deletes them too.",
            "game_has_plays",
            409,
            plays=count,
        )
    alias = current_binding().alias
    with transaction.atomic(using=alias):
        names = game.media_files
        game.delete()
        media.delete_after_commit(names, using=alias)
    return HttpResponse(status=204)


# --- Plays --------------------------------------------------------------------------------


def _ready_game(game_id) -> Game:
    game = get_object_or_404(Game, pk=game_id)
    if game.status != Game.Status.READY:
        raise ApiError("This game is not ready yet: its video is still being prepared.",
                       "game_not_ready", 409)  # fmt: skip
    return game


@api_view("GET", "POST")
def game_plays(request, game_id):
    if request.method == "GET":
        game = get_object_or_404(Game, pk=game_id)
        return JsonResponse({"plays": [play.to_dict() for play in game.plays.all()]})
    game = _ready_game(game_id)
    if game.plays.count() >= settings.MAX_PLAYS_PER_GAME:
        raise ApiError(
            f"A game holds at most {settings.MAX_PLAYS_PER_GAME} plays.", "too_many_plays"
        )
    play = Play(game=game)
    try:
        plays.apply(play, game, json_body(request))
    except plays.PlayError as exc:
        raise _invalid(exc) from None
    play.save()
    return JsonResponse(play.to_dict(), status=201)


@api_view("PATCH", "DELETE")
def game_play(request, game_id, play_id):
    game = _ready_game(game_id)
    play = get_object_or_404(game.plays, pk=play_id)
    if request.method == "DELETE":
        play.delete()
        return HttpResponse(status=204)
    try:
        plays.apply(play, game, json_body(request))
    except plays.PlayError as exc:
        raise _invalid(exc) from None
    play.save()
    return JsonResponse(play.to_dict())


@api_view("GET")
def all_plays(request):
    """``?tag=&min_rating=&game=&sort=rating|newest|game``: plays across every game."""
    try:
        min_rating = _optional_int(request.GET.get("min_rating"), "min_rating")
        game_id = _optional_int(request.GET.get("game"), "game")
    except plays.PlayError as exc:
        raise _invalid(exc) from None
    found = plays.search(
        tag=request.GET.get("tag", "").strip(),
        min_rating=min_rating,
        game_id=game_id,
        sort=request.GET.get("sort", "game"),
    )
    return JsonResponse({"plays": [{**p.to_dict(), "game_name": p.game.name} for p in found]})


def _optional_int(value, field):
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise plays.PlayError(f"{field} must be a whole number.", field) from None
