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
