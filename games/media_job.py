"""The background job that makes an uploaded game usable: probe, poster, filmstrip.

It runs as an ``exports.ExportJob`` of kind ``game_media`` (the same queue, claim,
attempts, heartbeats, progress over the WebSocket and lost-job sweep as an export), on
a Celery worker or the in-process pool, never in the upload's request: probing a game
on S3 means downloading it, and a filmstrip decodes a hundred frames.

The results are written to the game's row durably, like an export's video: the JPEGs
are stored in media storage first, then the row is updated under the user's lease and
committed, and only then does the job say "complete".
"""

import logging
import time
from pathlib import Path

from django.conf import settings
from django.core.files import File

from exports import jobs
from exports.errors import RenderCancelled, RenderError
from exports.finalize import FinalizeError, push_until_committed
from exports.models import ExportJob
from projects import media
from projects.probe import InvalidVideo, probe_video
from syncstore import sync

from . import filmstrip
from .models import Game

logger = logging.getLogger(__name__)


def prepare_game(job, attempt, tmp: Path, reporter, should_cancel, local_copy) -> dict:
    """Probe the job's game, make its poster and filmstrip, record them; the job's result."""
    game = _wait_for_game(job)
    reporter.update(2, "probing", "Reading the game's video")
    with attempt.heartbeat(), local_copy(game.file, tmp) as source:
        try:
            info = probe_video(source)
        except InvalidVideo as exc:
            _record(job, status=Game.Status.FAILED, status_message=str(exc))
            raise RenderError(str(exc), "invalid_video") from None
        strip = _make_filmstrip(job, source, info, tmp, reporter, should_cancel)
    reporter.update(92, "saving", "Saving the filmstrip")
    names = _store_images(job, strip)
    with attempt.heartbeat():
        version = _record(
            job,
            status=Game.Status.READY,
            status_message="",
            duration=info.duration,
            fps=info.fps,
            width=info.width,
            height=info.height,
            frame_count=info.frame_count,
            has_audio=info.has_audio,
            poster=names["poster"],
            filmstrip={"file": names["sprite"], **strip.layout()},
        )
    return {"game_id": job.project_id, "committed_version": version}


def _wait_for_game(job) -> Game:
    """The game, once its row is committed: the upload's request creates the job just
    before its own commit, and this worker may be another machine that pulls first."""
    deadline = time.monotonic() + settings.GAME_MEDIA_WAIT_SECONDS
    while True:
        with sync.writing(job.user_id):  # brings the copy up to the committed version
            game = Game.objects.filter(pk=job.project_id).first()
        if game is not None:
            return game
        if time.monotonic() >= deadline:
            raise FinalizeError("The game was deleted before it was ready.", "game_gone", False)
        time.sleep(0.5)


def _make_filmstrip(job, source, info, tmp, reporter, should_cancel):
    def tile_done(done, total):
        reporter.update(5 + 85 * done // total, "filmstrip", f"Filmstrip {done}/{total}")

    try:
        return filmstrip.make_filmstrip(
            source,
            tmp,
            duration=info.duration,
            width=info.width,
            height=info.height,
            tiles=settings.GAME_FILMSTRIP_TILES,
            progress=tile_done,
            should_cancel=should_cancel,
        )
    except filmstrip.Cancelled:
        raise RenderCancelled from None


def _store_images(job, strip) -> dict:
    names = {}
    for key, path in (("poster", strip.poster), ("sprite", strip.sprite)):
        name = media.new_name(job.user_id, "thumbs", "jpg")
        with open(path, "rb") as handle:
            media.save(name, File(handle, name=path.name))
        names[key] = name
    return names


def _record(job, **fields) -> int:
    """Update the game's row and commit it; the committed version that holds it."""
    with sync.writing(job.user_id) as outcome:
        game = Game.objects.filter(pk=job.project_id).first()
        if game is None:
            raise FinalizeError("The game was deleted before it was ready.", "game_gone", False)
        replaced = [name for name in (game.poster, game.filmstrip.get("file")) if name]
        for name, value in fields.items():
            setattr(game, name, value)
        game.save()
        # A retried job's earlier images are no longer referenced once this commits.
        new = {fields.get("poster"), fields.get("filmstrip", {}).get("file")}
        media.delete_after_commit([n for n in replaced if n not in new], using=game._state.db)
    if outcome.ok:
        return outcome.results[job.user_id].version
    return push_until_committed(job.user_id)


def start(user, game: Game) -> ExportJob:
    """Queue the game's media job (or find the one already running for it)."""
    # One active job per game (its id in project_id).
    job, _ = jobs.create_unique(
        user, game.id, game.name, ExportJob.Kind.GAME_MEDIA, {"file": game.file}
    )
    return job
