"""Adding a source clip to a project: store the file, record what the prober found."""

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Max

from syncstore.binding import current_binding

from . import media
from .models import Clip, Project
from .probe import VideoInfo


class ClipLimitReached(Exception):
    """The project already holds MAX_CLIPS_PER_PROJECT clips."""


def display_name(original) -> str:
    """A client's filename, reduced to something safe to show (never used as a path)."""
    base = str(original or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:200] or "clip"


class ProjectGone(Exception):
    """The project was deleted while its clip was being stored."""


def add_clip(
    project: Project, content: File, original_name: str, info: VideoInfo, *, before_writing=None
) -> Clip:
    """Store ``content`` under the bound user's prefix and append it to ``project``.

    The file is stored first, with no lease held (a large upload to S3 must not block
    the user's other saves), then ``before_writing()`` takes the write lease and the row
    is written on the committed data. The file is removed again if the row cannot be
    written, so a failure leaves neither a row without a file nor an orphaned file. The
    clip limit is checked inside the transaction (which holds the database's write
    lock), so two uploads at once cannot both take the last place.
    """
    binding = current_binding()
    name = media.save(media.new_name(binding.user_id, "clips", info.extension), content)
    try:
        if before_writing is not None:
            before_writing()
            # The copy may have been brought up to a newer version meanwhile.
            project = Project.objects.filter(pk=project.pk).first()
            if project is None:
                raise ProjectGone
        with transaction.atomic(using=binding.alias):
            if project.clips.count() >= settings.MAX_CLIPS_PER_PROJECT:
                raise ClipLimitReached
            last = project.clips.aggregate(last=Max("position"))["last"]
            return Clip.objects.create(
                project=project,
                position=0 if last is None else last + 1,
                name=display_name(original_name),
                file=name,
                size_bytes=content.size,
                duration=info.duration,
                fps=info.fps,
                width=info.width,
                height=info.height,
                frame_count=info.frame_count,
                has_audio=info.has_audio,
            )
    except BaseException:
        media.delete(name)
        raise


class PlaysRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def clean_play_ids(value) -> list[int]:
    valid = (
        isinstance(value, list)
        and value
        and all(isinstance(i, int) and not isinstance(i, bool) for i in value)
        and len(set(value)) == len(value)
    )
    if not valid:
        raise PlaysRefused("play_ids must list the plays to add, each once.")
    return value


def add_play_clips(project: Project, play_ids: list[int]) -> list[Clip]:
    """Append one clip per play, in the order given: each names its game's file and the
    play's range (nothing is copied), trimmed to the whole play to start with.

    Call inside the unit of work that writes ``project`` (the lease is held).
    """
    from games.models import Game, Play  # games builds on projects' media and probe

    plays = Play.objects.select_related("game").in_bulk(play_ids)
    missing = [i for i in play_ids if i not in plays]
    if missing:
        raise PlaysRefused(f"No such play: {missing[0]}.")
    if any(plays[i].game.status != Game.Status.READY for i in play_ids):
        raise PlaysRefused("A play's game is still being prepared: try again when it is ready.")
    binding = current_binding()
    with transaction.atomic(using=binding.alias):
        count = project.clips.count()
        if count + len(play_ids) > settings.MAX_CLIPS_PER_PROJECT:
            raise ClipLimitReached
        last = project.clips.aggregate(last=Max("position"))["last"]
        first = 0 if last is None else last + 1
        return [
            Clip.objects.create(project=project, position=first + n, **_play_clip_fields(plays[i]))
            for n, i in enumerate(play_ids)
        ]


def _play_clip_fields(play) -> dict:
    game = play.game
    name = play.name or f"{game.name} {play.start // 60:.0f}:{play.start % 60:04.1f}"
    return {
        "name": display_name(name),
        "file": game.file,
        "game": game,
        "range_start": play.start,
        "range_end": play.end,
        "trim_start": play.start,
        "trim_end": play.end,
        "size_bytes": game.size_bytes,
        "duration": game.duration,
        "fps": game.fps,
        "width": game.width,
        "height": game.height,
        "frame_count": game.frame_count,
        "has_audio": game.has_audio,
    }
